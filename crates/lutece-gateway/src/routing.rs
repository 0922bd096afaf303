//! Which replicas serve which model, and which replica gets the next request: the one with
//! the fewest requests in flight.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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

/// The healthy replicas of every model. Replicas join when healthy and leave when they die.
#[derive(Debug, Default)]
pub struct Routes {
    models: RwLock<BTreeMap<String, Vec<Arc<Upstream>>>>,
}

/// What happened when asking for a replica.
#[derive(Debug, PartialEq, Eq)]
pub enum Pick {
    /// No such model.
    Unknown,
    /// The model is deployed but no replica is healthy now.
    NoReplica,
}

impl Routes {
    /// Adds a replica of `model` (again: no effect).
    pub fn add(&self, model: &str, base_url: &str) {
        let mut models = self.models.write().unwrap_or_else(|p| p.into_inner());
        let replicas = models.entry(model.to_owned()).or_default();
        if !replicas.iter().any(|u| u.base_url == base_url) {
            replicas.push(Arc::new(Upstream {
                base_url: base_url.to_owned(),
                in_flight: AtomicU64::new(0),
            }));
        }
    }

    /// Removes a replica; the model stays known (with no replica) so clients get 503, not 404.
    pub fn remove(&self, model: &str, base_url: &str) {
        let mut models = self.models.write().unwrap_or_else(|p| p.into_inner());
        if let Some(replicas) = models.get_mut(model) {
            replicas.retain(|u| u.base_url != base_url);
        }
    }

    /// Models that have at least one replica.
    pub fn models(&self) -> Vec<String> {
        let models = self.models.read().unwrap_or_else(|p| p.into_inner());
        models
            .iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// The replica of `model` with the fewest requests in flight (the first on ties).
    pub fn pick(&self, model: &str) -> Result<InFlight, Pick> {
        let models = self.models.read().unwrap_or_else(|p| p.into_inner());
        let replicas = models.get(model).ok_or(Pick::Unknown)?;
        let best = replicas
            .iter()
            .min_by_key(|u| u.in_flight.load(Ordering::Relaxed))
            .ok_or(Pick::NoReplica)?;
        best.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(InFlight(Arc::clone(best)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_busy_replica_is_picked() {
        let routes = Routes::default();
        assert_eq!(routes.pick("m").unwrap_err(), Pick::Unknown);
        routes.add("m", "http://a");
        routes.add("m", "http://b");
        routes.add("m", "http://a");
        let first = routes.pick("m").unwrap();
        let second = routes.pick("m").unwrap();
        assert_ne!(first.upstream().base_url, second.upstream().base_url);
        drop(first);
        let third = routes.pick("m").unwrap();
        assert_eq!(third.upstream().base_url, "http://a");
        routes.remove("m", "http://a");
        routes.remove("m", "http://b");
        assert_eq!(routes.pick("m").unwrap_err(), Pick::NoReplica);
        assert!(routes.models().is_empty());
    }
}
