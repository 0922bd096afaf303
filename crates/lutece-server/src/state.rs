//! The state every handler and loop shares.

use crate::logs::LogStore;
use lutece_gateway::Routes;
use lutece_store::Store;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// How long a node may stay silent before it counts as down.
pub(crate) const NODE_TIMEOUT_MS: i64 = 30_000;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Store,
    pub(crate) logs: LogStore,
    /// Wakes the reconciler: something was queued or freed.
    pub(crate) reconcile: Arc<Notify>,
    pub(crate) nodes: Arc<NodeSignals>,
    /// Whether submitted programs are checked against this machine's PATH (the embedded mode,
    /// where the only agent runs here).
    pub(crate) check_programs: bool,
    /// The deployed models and their healthy replicas, as the gateway routes to them.
    pub(crate) routes: Arc<Routes>,
    /// Where the platform's model files are: `NAME.gguf`, or a directory `NAME/`.
    pub(crate) models_dir: PathBuf,
    /// Held while a model appears or disappears, and while a deployment of a model is
    /// created: a model a deployment serves is never removed under it.
    pub(crate) models_lock: Arc<tokio::sync::Mutex<()>>,
    /// The keys the gateway looked up lately; emptied by every change to keys or limits.
    pub(crate) gateway_keys: Arc<crate::gateway::KeyCache>,
    /// The audit log: what cannot be recorded in it does not happen.
    pub(crate) audit: Arc<crate::audit::Auditor>,
    /// Tenant keys, sealed under the operator's root key.
    pub(crate) keyring: Arc<crate::keyring::Keyring>,
    /// Where tenant data is stored, encrypted.
    pub(crate) blobs: Arc<lutece_blob::Blobs>,
}

/// One `Notify` per node, to end an agent's long-poll when its work changes; and when each
/// node was last recorded as seen, to write that at most every few seconds.
#[derive(Default)]
pub(crate) struct NodeSignals {
    notifies: Mutex<HashMap<String, Arc<Notify>>>,
    last_touch: Mutex<HashMap<String, i64>>,
}

impl NodeSignals {
    pub(crate) fn notify_for(&self, node_id: &str) -> Arc<Notify> {
        let mut map = self
            .notifies
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(node_id.to_owned()).or_default().clone()
    }

    pub(crate) fn wake(&self, node_id: &str) {
        self.notify_for(node_id).notify_waiters();
    }

    /// Whether `node_id`'s last-seen time is due to be written again.
    pub(crate) fn due_for_touch(&self, node_id: &str, now: i64) -> bool {
        let mut map = self
            .last_touch
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let last = map.entry(node_id.to_owned()).or_insert(i64::MIN);
        if now.saturating_sub(*last) >= 5_000 {
            *last = now;
            true
        } else {
            false
        }
    }
}

/// Milliseconds since the Unix epoch: the one place the server reads the clock.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
