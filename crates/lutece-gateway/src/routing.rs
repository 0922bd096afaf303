//! Which replicas serve which model for which tenant, and which replica gets the next request:
//! the one with the fewest requests in flight.
//!
//! A model is either private to one tenant or shared with all (the platform's own models).
//! A tenant's own model of a name hides a shared one of the same name, for that tenant only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use lutece_api::ModelKind;

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
    in_flight: AtomicU64,
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
}

/// One deployed model as the control plane describes it to [`Routes::sync`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub kind: ModelKind,
    /// The base URLs of its healthy replicas.
    pub replicas: Vec<String>,
}

/// What happened when asking for a replica.
#[derive(Debug, PartialEq, Eq)]
pub enum Pick {
    /// No such model for this caller.
    Unknown,
    /// The model is deployed but no replica is healthy now.
    NoReplica,
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
            },
        ) in desired
        {
            let old = models.remove(&key).map(|e| e.replicas).unwrap_or_default();
            let mut replicas: Vec<Arc<Upstream>> = Vec::with_capacity(urls.len());
            for url in urls {
                if replicas.iter().any(|u| u.base_url == url) {
                    continue;
                }
                let kept = old.iter().find(|u| u.base_url == url).cloned();
                replicas.push(kept.unwrap_or_else(|| {
                    Arc::new(Upstream {
                        base_url: url,
                        in_flight: AtomicU64::new(0),
                    })
                }));
            }
            next.insert(key, Entry { kind, replicas });
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

    /// The models `tenant` may call that have at least one healthy replica, with their kinds
    /// (a tenant's own model hides a shared one of the same name).
    pub fn models(&self, tenant: &str) -> Vec<(String, ModelKind)> {
        let models = self.models.read().unwrap_or_else(|p| p.into_inner());
        let mut found: BTreeMap<&str, (bool, ModelKind)> = BTreeMap::new();
        for ((scope, name), entry) in models.iter() {
            if !visible(scope, tenant) || entry.replicas.is_empty() {
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

    /// The replica of `model`, as `tenant` sees it, with the fewest requests in flight.
    pub fn pick(&self, tenant: &str, model: &str) -> Result<InFlight, Pick> {
        let models = self.models.read().unwrap_or_else(|p| p.into_inner());
        let replicas = models
            .get(&(Scope::Tenant(tenant.to_owned()), model.to_owned()))
            .or_else(|| models.get(&(Scope::Shared, model.to_owned())))
            .ok_or(Pick::Unknown)?;
        let best = replicas
            .replicas
            .iter()
            .min_by_key(|u| u.in_flight.load(Ordering::Relaxed))
            .ok_or(Pick::NoReplica)?;
        best.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(InFlight(Arc::clone(best)))
    }
}

/// Asks replicas whether they are healthy: `GET {base_url}/health` answers 2xx in time.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    http: reqwest::Client,
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

    pub async fn healthy(&self, base_url: &str) -> bool {
        self.http
            .get(format!("{base_url}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
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
        assert_eq!(routes.pick("t", "m").unwrap_err(), Pick::Unknown);
        routes.sync(table(&[(
            Scope::Shared,
            "m",
            &["http://a", "http://b", "http://a"],
        )]));
        let first = routes.pick("t", "m").unwrap();
        let second = routes.pick("t", "m").unwrap();
        assert_ne!(first.upstream().base_url, second.upstream().base_url);
        drop(first);
        let third = routes.pick("t", "m").unwrap();
        assert_eq!(third.upstream().base_url, "http://a");
        // A sync that keeps a replica keeps its count: b still has one request in flight.
        routes.sync(table(&[(Scope::Shared, "m", &["http://b", "http://c"])]));
        assert_eq!(
            routes.pick("t", "m").unwrap().upstream().base_url,
            "http://c"
        );
        drop((second, third));
        routes.sync(table(&[(Scope::Shared, "m", &[])]));
        assert_eq!(routes.pick("t", "m").unwrap_err(), Pick::NoReplica);
        assert!(routes.models("t").is_empty());
        routes.sync(BTreeMap::new());
        assert_eq!(routes.pick("t", "m").unwrap_err(), Pick::Unknown);
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
        // Kinds come with the names; a tenant's own model of a name is the one it sees.
        let kind_of = |tenant: &str| {
            routes
                .models(tenant)
                .into_iter()
                .find(|(name, _)| name == "embed")
                .map(|(_, kind)| kind)
        };
        assert_eq!(kind_of("beta"), Some(ModelKind::Embedding));
        assert_eq!(kind_of("alpha"), Some(ModelKind::Generative));
        assert_eq!(names(routes.models("alpha")), ["base", "embed", "secret"]);
        assert_eq!(names(routes.models("beta")), ["base", "embed"]);
        assert_eq!(routes.pick("beta", "secret").unwrap_err(), Pick::Unknown);
        let url = |tenant| {
            routes
                .pick(tenant, "base")
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
}
