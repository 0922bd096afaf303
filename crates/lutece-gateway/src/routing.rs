//! Which replicas serve which model for which tenant, and which replica gets the next request:
//! the one with the fewest requests in flight, unless the request begins with a long prefix
//! that another replica served recently and that replica is not much busier (see
//! [`crate::prefix`]): it likely still holds that prefix in its cache.
//!
//! A model is either private to one tenant or shared with all (the platform's own models).
//! A tenant's own model of a name hides a shared one of the same name, for that tenant only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use lutece_api::ModelKind;
use lutece_core::residency::{Jurisdiction, ResidencyPolicy};

use crate::prefix::{Affinity, PrefixHashes};

/// How many more requests in flight than the least busy replica a replica may have and still
/// get a request for a prefix it holds.
pub const AFFINITY_SLACK: u64 = 4;

/// Who may call a model: one tenant (its id), or everyone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Tenant(String),
    Shared,
}

/// A model as the routing table names it.
pub type ModelKey = (Scope, String);

/// One replica of a model: an OpenAI-compatible server at `base_url` (`http://host:port`).
#[derive(Debug)]
pub struct Upstream {
    pub base_url: String,
    /// The country of the node it runs on, if the node declared a known one.
    pub jurisdiction: Option<Jurisdiction>,
    in_flight: AtomicU64,
    running_usage: AtomicBool,
}

impl Upstream {
    /// It reports the usage so far in every chunk of a stream when asked (the built-in engine).
    pub fn reports_running_usage(&self) -> bool {
        self.running_usage.load(Ordering::Relaxed)
    }
}

/// Counts a request against its upstream until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Upstream>);

impl InFlight {
    pub fn upstream(&self) -> &Upstream {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The deployed models and their healthy replicas. A model is known (so its callers get 503
/// rather than 404) while it is deployed, even with no replica ready.
#[derive(Debug, Default)]
pub struct Routes {
    models: RwLock<BTreeMap<ModelKey, Entry>>,
}

#[derive(Debug)]
struct Entry {
    kind: ModelKind,
    replicas: Vec<Arc<Upstream>>,
    affinity: Mutex<Affinity>,
}

/// One deployed model as the control plane describes it to [`Routes::sync`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub kind: ModelKind,
    /// The base URLs of its healthy replicas.
    pub replicas: Vec<String>,
    /// Its replicas are the built-in engine, which reports usage so far in every chunk.
    pub running_usage: bool,
    /// The jurisdiction of each replica (by base URL) whose node declared one.
    pub jurisdictions: BTreeMap<String, String>,
}

/// What happened when asking for a replica.
#[derive(Debug, PartialEq, Eq)]
pub enum Pick {
    /// No such model for this caller.
    Unknown,
    /// The model is deployed but no replica is healthy now.
    NoReplica,
    /// Replicas are healthy, but none runs where the caller's requests may be served.
    Residency,
}

impl Routes {
    /// Replaces the whole table: every deployed model with the base URLs of its healthy
    /// replicas. Replicas that stay keep their in-flight counts.
    pub fn sync(&self, desired: BTreeMap<ModelKey, Route>) {
        let mut models = self.models.write().unwrap_or_else(|p| p.into_inner());
        let mut next = BTreeMap::new();
        for (
            key,
            Route {
                kind,
                replicas: urls,
                running_usage,
                jurisdictions,
            },
        ) in desired
        {
            let (old, affinity) = models
                .remove(&key)
                .map(|e| (e.replicas, e.affinity))
                .unwrap_or_default();
            let mut replicas: Vec<Arc<Upstream>> = Vec::with_capacity(urls.len());
            for url in urls {
                if replicas.iter().any(|u| u.base_url == url) {
                    continue;
                }
                let jurisdiction = jurisdictions
                    .get(&url)
                    .and_then(|code| Jurisdiction::parse(code).ok());
                // A replica keeps its in-flight count while its URL and its node's country do.
                let kept = old
                    .iter()
                    .find(|u| u.base_url == url && u.jurisdiction == jurisdiction)
                    .cloned();
                let upstream = kept.unwrap_or_else(|| {
                    Arc::new(Upstream {
                        base_url: url,
                        jurisdiction,
                        in_flight: AtomicU64::new(0),
                        running_usage: AtomicBool::new(running_usage),
                    })
                });
                upstream
                    .running_usage
                    .store(running_usage, Ordering::Relaxed);
                replicas.push(upstream);
            }
            next.insert(
                key,
                Entry {
                    kind,
                    replicas,
                    affinity,
                },
            );
        }
        *models = next;
    }

    /// The healthy replicas of one model.
    pub fn replicas(&self, key: &ModelKey) -> Vec<String> {
        let models = self.models.read().unwrap_or_else(|p| p.into_inner());
        models
            .get(key)
            .map(|e| e.replicas.iter().map(|u| u.base_url.clone()).collect())
            .unwrap_or_default()
    }

    /// The models `tenant` may call that have at least one healthy replica where `residency`
    /// allows, with their kinds (a tenant's own model hides a shared one of the same name).
    pub fn models(&self, tenant: &str, residency: &ResidencyPolicy) -> Vec<(String, ModelKind)> {
        let models = self.models.read().unwrap_or_else(|p| p.into_inner());
        let mut found: BTreeMap<&str, (bool, ModelKind)> = BTreeMap::new();
        for ((scope, name), entry) in models.iter() {
            let servable = entry.replicas.iter().any(|u| serves(u, residency));
            if !visible(scope, tenant) || !servable {
                continue;
            }
            let own = matches!(scope, Scope::Tenant(_));
            let slot = found.entry(name).or_insert((own, entry.kind));
            if own {
                *slot = (own, entry.kind);
            }
        }
        found
            .into_iter()
            .map(|(name, (_, kind))| (name.to_owned(), kind))
            .collect()
    }

    /// The replica of `model`, as `tenant` sees it, for a request that begins with `prefix`,
    /// among those where `residency` allows: the one that served the
    /// longest part of that prefix last, if it has at most [`AFFINITY_SLACK`] more requests in
    /// flight than the least busy; else the least busy. A replica on a node of no declared
    /// jurisdiction serves no caller with a residency policy.
    pub fn pick(
        &self,
        tenant: &str,
        model: &str,
        prefix: &PrefixHashes,
        residency: &ResidencyPolicy,
    ) -> Result<InFlight, Pick> {
        let models = self.models.read().unwrap_or_else(|p| p.into_inner());
        let entry = models
            .get(&(Scope::Tenant(tenant.to_owned()), model.to_owned()))
            .or_else(|| models.get(&(Scope::Shared, model.to_owned())))
            .ok_or(Pick::Unknown)?;
        if entry.replicas.is_empty() {
            return Err(Pick::NoReplica);
        }
        let candidates: Vec<&Arc<Upstream>> = entry
            .replicas
            .iter()
            .filter(|u| serves(u, residency))
            .collect();
        let load = |u: &Upstream| u.in_flight.load(Ordering::Relaxed);
        let least = *candidates
            .iter()
            .min_by_key(|u| load(u))
            .ok_or(Pick::Residency)?;
        let chosen = if prefix.0.is_empty() || candidates.len() == 1 {
            least
        } else {
            let mut affinity = entry.affinity.lock().unwrap_or_else(|p| p.into_inner());
            let replica_at = |url: &str| candidates.iter().copied().find(|u| u.base_url == url);
            let holder = affinity
                .best(prefix, |url| replica_at(url).is_some())
                .and_then(|(url, _)| replica_at(&url))
                .filter(|u| load(u) <= load(least) + AFFINITY_SLACK);
            let chosen = holder.unwrap_or(least);
            affinity.remember(prefix, &chosen.base_url);
            chosen
        };
        chosen.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(InFlight(Arc::clone(chosen)))
    }
}

/// Asks replicas whether they are healthy: `GET {base_url}/health` answers 2xx in time.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    http: reqwest::Client,
}

/// A healthy replica's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Healthy {
    /// It reports usage so far in every chunk when asked (`continuous_usage_stats` in its
    /// health answer: the built-in worker).
    pub running_usage: bool,
}

impl HealthCheck {
    pub fn new(timeout: std::time::Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default();
        Self { http }
    }

    /// Some when the replica is healthy; what it says it can do.
    pub async fn check(&self, base_url: &str) -> Option<Healthy> {
        let response = self
            .http
            .get(format!("{base_url}/health"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())?;
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        Some(Healthy {
            running_usage: body["continuous_usage_stats"] == serde_json::Value::Bool(true),
        })
    }
}

/// Whether `upstream` may serve a caller with the policy `residency`; a replica on a node of no
/// declared jurisdiction serves no caller with a policy.
fn serves(upstream: &Upstream, residency: &ResidencyPolicy) -> bool {
    residency.is_anywhere() || upstream.jurisdiction.is_some_and(|j| residency.allows(&j))
}

fn visible(scope: &Scope, tenant: &str) -> bool {
    match scope {
        Scope::Shared => true,
        Scope::Tenant(owner) => owner == tenant,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anywhere() -> ResidencyPolicy {
        ResidencyPolicy::anywhere()
    }

    fn table(entries: &[(Scope, &str, &[&str])]) -> BTreeMap<ModelKey, Route> {
        entries
            .iter()
            .map(|(scope, name, urls)| {
                let kind = if name.starts_with("embed") {
                    ModelKind::Embedding
                } else {
                    ModelKind::Generative
                };
                let route = Route {
                    kind,
                    replicas: urls.iter().map(|u| (*u).to_owned()).collect(),
                    running_usage: false,
                    jurisdictions: BTreeMap::new(),
                };
                ((scope.clone(), (*name).to_owned()), route)
            })
            .collect()
    }

    fn names(models: Vec<(String, ModelKind)>) -> Vec<String> {
        models.into_iter().map(|(name, _)| name).collect()
    }

    #[test]
    fn the_least_busy_replica_is_picked() {
        let routes = Routes::default();
        let none = PrefixHashes::default();
        assert_eq!(
            routes.pick("t", "m", &none, &anywhere()).unwrap_err(),
            Pick::Unknown
        );
        routes.sync(table(&[(
            Scope::Shared,
            "m",
            &["http://a", "http://b", "http://a"],
        )]));
        let first = routes.pick("t", "m", &none, &anywhere()).unwrap();
        let second = routes.pick("t", "m", &none, &anywhere()).unwrap();
        assert_ne!(first.upstream().base_url, second.upstream().base_url);
        drop(first);
        let third = routes.pick("t", "m", &none, &anywhere()).unwrap();
        assert_eq!(third.upstream().base_url, "http://a");
        // A sync that keeps a replica keeps its count: b still has one request in flight.
        routes.sync(table(&[(Scope::Shared, "m", &["http://b", "http://c"])]));
        assert_eq!(
            routes
                .pick("t", "m", &none, &anywhere())
                .unwrap()
                .upstream()
                .base_url,
            "http://c"
        );
        drop((second, third));
        routes.sync(table(&[(Scope::Shared, "m", &[])]));
        assert_eq!(
            routes.pick("t", "m", &none, &anywhere()).unwrap_err(),
            Pick::NoReplica
        );
        assert!(routes.models("t", &anywhere()).is_empty());
        routes.sync(BTreeMap::new());
        assert_eq!(
            routes.pick("t", "m", &none, &anywhere()).unwrap_err(),
            Pick::Unknown
        );
    }

    #[test]
    fn a_long_prefix_goes_back_where_it_was_served_unless_that_replica_is_too_busy() {
        let routes = Routes::default();
        let replicas: &[&str] = &["http://a", "http://b", "http://c"];
        routes.sync(table(&[(Scope::Shared, "m", replicas)]));
        let shared = PrefixHashes(vec![1, 2, 3]);
        let url = |f: &InFlight| f.upstream().base_url.clone();
        let home = url(&routes.pick("t", "m", &shared, &anywhere()).unwrap());
        // The others are idle, yet the prefix stays home up to AFFINITY_SLACK more requests in
        // flight, whoever asks and however the request goes on after the prefix.
        let longer = PrefixHashes(vec![1, 2, 3, 4]);
        let mut held: Vec<InFlight> = Vec::new();
        for i in 0..=AFFINITY_SLACK {
            let prefix = if i % 2 == 0 { &shared } else { &longer };
            held.push(
                routes
                    .pick(&format!("t{i}"), "m", prefix, &anywhere())
                    .unwrap(),
            );
        }
        assert!(held.iter().all(|f| url(f) == home));
        // One more would be too many: it goes to an idle replica, which now holds the prefix.
        let moved = url(&routes.pick("t", "m", &shared, &anywhere()).unwrap());
        assert_ne!(moved, home);
        held.push(routes.pick("t", "m", &shared, &anywhere()).unwrap());
        assert_eq!(url(held.last().unwrap()), moved);
        // Requests without a long prefix, or with another one, go to the least busy.
        let idle = replicas
            .iter()
            .find(|u| **u != home && **u != moved)
            .unwrap();
        let none = PrefixHashes::default();
        assert_eq!(
            &url(&routes.pick("t", "m", &none, &anywhere()).unwrap()),
            idle
        );
        let other = PrefixHashes(vec![7, 8]);
        assert_eq!(
            &url(&routes.pick("t", "m", &other, &anywhere()).unwrap()),
            idle
        );
        // A replica that left is never picked for what it held.
        routes.sync(table(&[(Scope::Shared, "m", &[idle])]));
        assert_eq!(
            &url(&routes.pick("t", "m", &shared, &anywhere()).unwrap()),
            idle
        );
    }

    #[test]
    fn tenants_see_their_own_and_shared_models_only() {
        let routes = Routes::default();
        let mut desired = table(&[
            (Scope::Shared, "base", &["http://shared"]),
            (
                Scope::Tenant("alpha".into()),
                "base",
                &["http://alpha-base"],
            ),
            (Scope::Tenant("alpha".into()), "secret", &["http://alpha"]),
            (Scope::Shared, "embed", &["http://e"]),
            (Scope::Tenant("alpha".into()), "embed", &["http://alpha-e"]),
        ]);
        // alpha's own "embed" generates text; the shared one embeds.
        if let Some(own) = desired.get_mut(&(Scope::Tenant("alpha".into()), "embed".into())) {
            own.kind = ModelKind::Generative;
        }
        routes.sync(desired);
        let none = PrefixHashes::default();
        // Kinds come with the names; a tenant's own model of a name is the one it sees.
        let kind_of = |tenant: &str| {
            routes
                .models(tenant, &anywhere())
                .into_iter()
                .find(|(name, _)| name == "embed")
                .map(|(_, kind)| kind)
        };
        assert_eq!(kind_of("beta"), Some(ModelKind::Embedding));
        assert_eq!(kind_of("alpha"), Some(ModelKind::Generative));
        assert_eq!(
            names(routes.models("alpha", &anywhere())),
            ["base", "embed", "secret"]
        );
        assert_eq!(names(routes.models("beta", &anywhere())), ["base", "embed"]);
        assert_eq!(
            routes
                .pick("beta", "secret", &none, &anywhere())
                .unwrap_err(),
            Pick::Unknown
        );
        let url = |tenant| {
            routes
                .pick(tenant, "base", &PrefixHashes::default(), &anywhere())
                .unwrap()
                .upstream()
                .base_url
                .clone()
        };
        assert_eq!(
            (url("alpha"), url("beta")),
            ("http://alpha-base".into(), "http://shared".into())
        );
    }

    #[tokio::test]
    async fn health_tells_which_replicas_report_usage_so_far() {
        use axum::routing::get;
        let serve = |body: &'static str| async move {
            let app = axum::Router::new().route("/health", get(move || async move { body }));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            url
        };
        let check = HealthCheck::new(std::time::Duration::from_secs(5));
        let ours = serve(r#"{"status":"ok","continuous_usage_stats":true}"#).await;
        let older = serve(r#"{"status":"ok"}"#).await;
        let external = serve("OK").await;
        assert_eq!(
            check.check(&ours).await,
            Some(Healthy {
                running_usage: true
            })
        );
        for url in [older, external] {
            assert_eq!(
                check.check(&url).await,
                Some(Healthy {
                    running_usage: false
                })
            );
        }
        assert_eq!(check.check("http://127.0.0.1:9").await, None);
    }

    #[test]
    fn a_caller_with_a_residency_policy_is_served_only_where_it_allows() {
        let routes = Routes::default();
        let mut desired = table(&[(
            Scope::Shared,
            "m",
            &["http://paris", "http://virginia", "http://nowhere"],
        )]);
        if let Some(route) = desired.values_mut().next() {
            route.jurisdictions = [("http://paris", "FR"), ("http://virginia", "US")]
                .into_iter()
                .map(|(u, j)| (u.to_owned(), j.to_owned()))
                .collect();
        }
        routes.sync(desired);
        let none = PrefixHashes::default();
        let fr = ResidencyPolicy::parse(["FR", "DE"]).unwrap();
        let mut held = Vec::new();
        for _ in 0..5 {
            let replica = routes.pick("t", "m", &none, &fr).unwrap();
            assert_eq!(replica.upstream().base_url, "http://paris");
            held.push(replica);
        }
        assert_eq!(
            routes
                .pick("t", "m", &none, &ResidencyPolicy::parse(["JP"]).unwrap())
                .unwrap_err(),
            Pick::Residency
        );
        // Nor is the model listed where it cannot be served.
        assert_eq!(routes.models("t", &fr).len(), 1);
        assert!(
            routes
                .models("t", &ResidencyPolicy::parse(["JP"]).unwrap())
                .is_empty()
        );
        // No policy: any replica, the least busy first.
        assert_ne!(
            routes
                .pick("t", "m", &none, &anywhere())
                .unwrap()
                .upstream()
                .base_url,
            "http://paris"
        );
    }
}
