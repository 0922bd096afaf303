//! What a pass must respect beyond free resources: tenants' quotas (a guaranteed share, and
//! borrowing of the idle guarantees of their cohort), fair share between tenants, and sites'
//! power budgets. [`Ledger`] keeps the running totals in step as a pass starts and stops work.

use super::{Node, Work};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Default)]
struct Cohort {
    used: u64,
    guaranteed: u64,
}

/// A tenant's quota.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quota {
    /// GPUs the tenant is guaranteed: its work within them always may start, and reclaims them
    /// by preemption from cohort peers that borrowed them.
    pub guaranteed_gpus: u64,
    /// The most GPUs it may hold beyond its guarantee, borrowed from idle guarantees of its
    /// cohort; `None`: as many as the cohort has idle.
    pub borrow_limit_gpus: Option<u64>,
    /// Tenants of one cohort lend one another their idle guarantees; a tenant alone in its
    /// cohort cannot borrow.
    pub cohort: u32,
}

/// A site's power budget.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Site {
    /// Watts the site's nodes may still draw on top of what they draw now; negative when they
    /// already draw more than the budget.
    pub headroom_w: i64,
}

/// Everything a pass checks that is not a node's own resources. Tenants and sites are indices:
/// [`Work::tenant`] into `quotas` and `weights`, [`Node::site`] into `sites`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// The quota of each tenant; a tenant past the end, or `None`, has no quota.
    pub quotas: Vec<Option<Quota>>,
    /// Fair-share weight of each tenant (absent or 0 counts as 1); used when the policy shares
    /// fairly.
    pub weights: Vec<u32>,
    pub sites: Vec<Site>,
}

/// Quota and power use during one pass.
#[derive(Debug, Clone)]
pub(super) struct Ledger<'a> {
    limits: &'a Limits,
    /// GPUs each tenant's running work holds.
    used: Vec<u64>,
    /// GPUs in use and guaranteed per cohort (of tenants with a quota), by cohort number.
    cohorts: BTreeMap<u32, Cohort>,
    headroom_w: Vec<i64>,
}

impl<'a> Ledger<'a> {
    /// The ledger at the start of a pass; what running work holds is counted only when
    /// `count_use` (quotas or fair share need it).
    pub(super) fn new(limits: &'a Limits, works: &[Work], count_use: bool) -> Self {
        let tenants = works
            .iter()
            .filter(|_| count_use)
            .map(|w| w.tenant as usize + 1)
            .chain([limits.quotas.len(), limits.weights.len()])
            .max()
            .unwrap_or(0);
        let mut ledger = Ledger {
            limits,
            used: vec![0; tenants],
            cohorts: BTreeMap::new(),
            headroom_w: limits.sites.iter().map(|s| s.headroom_w).collect(),
        };
        for q in limits.quotas.iter().flatten() {
            let cohort = ledger.cohorts.entry(q.cohort).or_default();
            cohort.guaranteed = cohort.guaranteed.saturating_add(q.guaranteed_gpus);
        }
        if count_use {
            for w in works.iter().filter(|w| w.is_running()) {
                ledger.start(w.tenant, u64::from(w.gpus()));
            }
        }
        ledger
    }

    pub(super) fn has_quotas(&self) -> bool {
        !self.cohorts.is_empty()
    }

    fn quota(&self, tenant: u32) -> Option<&'a Quota> {
        self.limits.quotas.get(tenant as usize)?.as_ref()
    }

    fn used(&self, tenant: u32) -> u64 {
        self.used.get(tenant as usize).copied().unwrap_or(0)
    }

    /// Whether the tenant's quota lets it start `gpus` more.
    pub(super) fn admits(&self, tenant: u32, gpus: u64) -> bool {
        let Some(q) = self.quota(tenant) else {
            return true;
        };
        let after = self.used(tenant).saturating_add(gpus);
        if after <= q.guaranteed_gpus {
            return true;
        }
        let cohort = self.cohorts.get(&q.cohort).copied().unwrap_or_default();
        after - q.guaranteed_gpus <= q.borrow_limit_gpus.unwrap_or(u64::MAX)
            && cohort.used.saturating_add(gpus) <= cohort.guaranteed
    }

    /// Whether `gpus` more stay within the tenant's guarantee (so it may reclaim them).
    pub(super) fn within_guarantee(&self, tenant: u32, gpus: u64) -> bool {
        self.quota(tenant)
            .is_some_and(|q| self.used(tenant).saturating_add(gpus) <= q.guaranteed_gpus)
    }

    /// Whether `tenant` has a quota and holds no more than its guarantee: its work is then
    /// safe from other tenants' preemption.
    pub(super) fn guaranteed(&self, tenant: u32) -> bool {
        self.quota(tenant)
            .is_some_and(|q| self.used(tenant) <= q.guaranteed_gpus)
    }

    /// Whether `tenant` holds more than its guarantee, borrowed from `cohort`.
    pub(super) fn borrows_from(&self, tenant: u32, cohort: u32) -> bool {
        self.quota(tenant)
            .is_some_and(|q| q.cohort == cohort && self.used(tenant) > q.guaranteed_gpus)
    }

    pub(super) fn cohort_of(&self, tenant: u32) -> Option<u32> {
        self.quota(tenant).map(|q| q.cohort)
    }

    pub(super) fn start(&mut self, tenant: u32, gpus: u64) {
        if let Some(used) = self.used.get_mut(tenant as usize) {
            *used = used.saturating_add(gpus);
        }
        if let Some(q) = self.quota(tenant) {
            let cohort = self.cohorts.entry(q.cohort).or_default();
            cohort.used = cohort.used.saturating_add(gpus);
        }
    }

    pub(super) fn stop(&mut self, tenant: u32, gpus: u64) {
        if let Some(used) = self.used.get_mut(tenant as usize) {
            *used = used.saturating_sub(gpus);
        }
        if let Some(q) = self.quota(tenant) {
            let cohort = self.cohorts.entry(q.cohort).or_default();
            cohort.used = cohort.used.saturating_sub(gpus);
        }
    }

    /// The tenant's use over its weight, for fair share: lower goes first.
    pub(super) fn share(&self, tenant: u32) -> u64 {
        let weight = self
            .limits
            .weights
            .get(tenant as usize)
            .copied()
            .unwrap_or(1)
            .max(1);
        self.used(tenant) * 1_000_000 / u64::from(weight)
    }

    /// The first site whose budget tasks of `task_gpus` on `chosen` would break, if any.
    pub(super) fn over_budget(
        &self,
        nodes: &[Node],
        chosen: &[u32],
        task_gpus: &[u32],
    ) -> Option<u32> {
        let mut draw: Vec<(u32, i64)> = Vec::new();
        for (&n, &gpus) in chosen.iter().zip(task_gpus) {
            let node = &nodes[n as usize];
            let Some(site) = node.site.filter(|&s| (s as usize) < self.headroom_w.len()) else {
                continue;
            };
            let watts = i64::from(gpus) * i64::from(node.watts_per_gpu);
            match draw.iter_mut().find(|(s, _)| *s == site) {
                Some((_, w)) => *w += watts,
                None => draw.push((site, watts)),
            }
        }
        draw.into_iter()
            .find(|&(site, watts)| watts > 0 && watts > self.headroom_w[site as usize])
            .map(|(site, _)| site)
    }

    /// Charges (or, with `give`, refunds) the power of tasks on `chosen`.
    pub(super) fn power(&mut self, nodes: &[Node], chosen: &[u32], task_gpus: &[u32], give: bool) {
        for (&n, &gpus) in chosen.iter().zip(task_gpus) {
            let node = &nodes[n as usize];
            let Some(site) = node.site else { continue };
            if let Some(headroom) = self.headroom_w.get_mut(site as usize) {
                let watts = i64::from(gpus) * i64::from(node.watts_per_gpu);
                *headroom += if give { watts } else { -watts };
            }
        }
    }
}
