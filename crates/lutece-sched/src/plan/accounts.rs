//! Tenants and sites of a snapshot as the indices the core uses, with their quotas, weights
//! and the power their sites have left.

use crate::engine::{Limits, Quota, Site};
use crate::snapshot::{NodeState, Snapshot};

pub(super) struct Accounts {
    /// Every tenant named anywhere in the snapshot, sorted: a tenant's index is its place here.
    tenants: Vec<String>,
    /// Sites with a power budget, sorted.
    sites: Vec<String>,
    pub(super) limits: Limits,
}

impl Accounts {
    pub(super) fn new(snapshot: &Snapshot, states: &[NodeState]) -> Self {
        let mut tenants: Vec<String> = snapshot
            .queue
            .iter()
            .map(|w| w.tenant.clone())
            .chain(snapshot.running.iter().map(|w| w.tenant.clone()))
            .chain(snapshot.tenants.keys().cloned())
            .collect();
        tenants.sort_unstable();
        tenants.dedup();
        let mut cohorts: Vec<&str> = snapshot
            .tenants
            .values()
            .filter_map(|t| t.cohort.as_deref())
            .collect();
        cohorts.sort_unstable();
        cohorts.dedup();
        let quotas = tenants
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let share = snapshot.tenants.get(name)?;
                let cohort = match share.cohort.as_deref() {
                    Some(c) => cohorts.binary_search(&c).unwrap_or(0),
                    // A cohort of its own, numbered after the named ones.
                    None => cohorts.len() + i,
                };
                Some(Quota {
                    guaranteed_gpus: share.guaranteed_gpus?,
                    borrow_limit_gpus: share.borrow_limit_gpus,
                    cohort: cohort as u32,
                })
            })
            .collect();
        let weights = tenants
            .iter()
            .map(|name| snapshot.tenants.get(name).map_or(1, |t| t.weight))
            .collect();
        let sites: Vec<String> = snapshot.site_power_budget_w.keys().cloned().collect();
        let limits = Limits {
            quotas,
            weights,
            sites: sites
                .iter()
                .map(|site| Site {
                    headroom_w: headroom(snapshot, states, site),
                })
                .collect(),
        };
        Accounts {
            tenants,
            sites,
            limits,
        }
    }

    pub(super) fn tenant(&self, name: &str) -> u32 {
        self.tenants
            .binary_search_by(|t| t.as_str().cmp(name))
            .map_or(u32::MAX, |i| i as u32)
    }

    /// The budgeted site of node `id`, as an index.
    pub(super) fn site_of(&self, snapshot: &Snapshot, id: &str) -> Option<u32> {
        let site = snapshot.sites.get(id)?;
        self.sites.binary_search(site).ok().map(|i| i as u32)
    }
}

/// What `site`'s budget leaves once its nodes in `states` draw what they draw now (idle draw
/// plus that of their allocated GPUs); negative when they already draw more.
pub(super) fn headroom(snapshot: &Snapshot, states: &[NodeState], site: &str) -> i64 {
    let budget = snapshot.site_power_budget_w.get(site).copied().unwrap_or(0);
    let draw: u64 = states
        .iter()
        .filter(|n| snapshot.sites.get(&n.id).is_some_and(|s| s == site))
        .filter_map(|n| {
            let power = snapshot.node_power.get(&n.id)?;
            Some(u64::from(power.idle_w) + u64::from(n.allocated.gpus) * u64::from(power.per_gpu_w))
        })
        .sum();
    i64::try_from(budget).unwrap_or(i64::MAX) - i64::try_from(draw).unwrap_or(i64::MAX)
}
