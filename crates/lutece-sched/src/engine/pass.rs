//! One pass of the core: rank, preempt, place (the module docs of [`super`] say what each
//! phase does and why).

use super::backfill::Reservation;
use super::limits::Ledger;
use super::{FreeIndex, Limits, Node, Outcome, Placed, Policy, Wait, Work};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

type Class = (Reverse<i32>, u32);
/// A tenant's turn: its next work's class, the tenant's share, that work's submission and tie,
/// and the tenant's queue.
type Turn = (Class, u64, i64, u64, usize);

/// What the phases share: the work, its classes, and the policy.
struct Ranking<'a> {
    works: &'a [Work],
    levels: Vec<u32>,
    policy: &'a Policy,
    now_ms: i64,
}

impl Ranking<'_> {
    fn class(&self, i: usize) -> Class {
        (Reverse(self.works[i].priority), self.levels[i])
    }

    /// The indices that `keep` selects, best first: class, then submission, then tie.
    fn ranked(&self, keep: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut keyed: Vec<_> = (0..self.works.len())
            .filter(|&i| keep(i))
            .map(|i| {
                let w = &self.works[i];
                (self.class(i), w.submitted_at_ms, w.tie, i)
            })
            .collect();
        keyed.sort_unstable();
        keyed.into_iter().map(|k| k.3).collect()
    }

    /// A gang that still waits for one NVLink domain on a fleet of several.
    fn holds_out(&self, i: usize, several_domains: bool) -> bool {
        let w = &self.works[i];
        several_domains
            && w.task_gpus.len() > 1
            && self.now_ms.saturating_sub(w.waiting_since_ms) < self.policy.topology_wait_ms
    }
}

pub(super) fn run(
    nodes: &mut [Node],
    index: &mut Option<FreeIndex>,
    works: &[Work],
    policy: &Policy,
    limits: &Limits,
    now_ms: i64,
) -> Outcome {
    let mut outcome = Outcome::default();
    let ranking = Ranking {
        works,
        levels: works.iter().map(|w| policy.level(w, now_ms)).collect(),
        policy,
        now_ms,
    };
    let count_use = policy.fair_share || limits.quotas.iter().any(Option::is_some);
    let mut ledger = Ledger::new(limits, works, count_use);
    preempt(nodes, index, &ranking, &mut ledger, &mut outcome);
    place(nodes, index, &ranking, &mut ledger, &mut outcome);
    debug_assert!(
        nodes.iter().all(|n| n.free_gpus <= n.gpus),
        "a node gives more GPUs than it has"
    );
    outcome
}

fn total_free(nodes: &[Node], index: &Option<FreeIndex>) -> u64 {
    match index {
        Some(index) => index.total_free(),
        None => nodes
            .iter()
            .filter(|n| n.schedulable)
            .map(|n| u64::from(n.free_gpus))
            .sum(),
    }
}

/// Phase 2, by GPU count. Queued work, best first, takes free GPUs; when there are too few, it
/// may claim running preemptible work of a strictly worse class (with a preempting policy),
/// worst first, and work of cohort peers that borrowed beyond their guarantee (when the
/// claimant is within its own), only as much as it needs. Peers of one class never displace
/// one another.
fn preempt(
    nodes: &mut [Node],
    index: &mut Option<FreeIndex>,
    ranking: &Ranking<'_>,
    ledger: &mut Ledger<'_>,
    outcome: &mut Outcome,
) {
    let works = ranking.works;
    let preemptible = |i: usize| works[i].is_running() && works[i].preemptible;
    let worst = (0..works.len())
        .filter(|&i| ranking.policy.preemption && preemptible(i))
        .map(|i| ranking.class(i))
        .max();
    let lent = ledger.has_quotas()
        && (0..works.len()).any(|i| {
            preemptible(i)
                && ledger
                    .cohort_of(works[i].tenant)
                    .is_some_and(|c| ledger.borrows_from(works[i].tenant, c))
        });
    if worst.is_none() && !lent {
        return;
    }
    let several_domains = nodes
        .first()
        .is_some_and(|first| nodes.iter().any(|n| n.domain != first.domain));
    // What the queue would hold if it all started: quota checks of later claimants see it.
    let mut would = ledger.clone();
    // What running work holds as victims are claimed: who is within its guarantee, and who
    // borrows, is judged on this, not on queued work that might not start.
    let mut holds = ledger.clone();
    let mut free = total_free(nodes, index);
    let contenders = ranking.ranked(|i| {
        !works[i].is_running()
            && (lent || worst.is_some_and(|w| ranking.class(i) < w))
            && !ranking.holds_out(i, several_domains)
    });
    // Running preemptible work, worst first: ranked only once some claimant needs victims.
    let mut by_class: Option<Vec<usize>> = None;
    let mut gone = vec![false; works.len()];
    for &q in &contenders {
        let need = u64::from(works[q].gpus());
        let tenant = works[q].tenant;
        if !would.admits(tenant, need) {
            continue;
        }
        if need <= free {
            free -= need;
            would.start(tenant, need);
            continue;
        }
        let by_class =
            by_class.get_or_insert_with(|| ranking.ranked(preemptible).into_iter().rev().collect());
        let mut trial = would.clone();
        let mut lenders = holds.clone();
        let mut claimed = Vec::new();
        let mut gained = 0;
        if ranking.policy.preemption {
            for &v in by_class.iter().filter(|&&v| !gone[v]) {
                if free + gained >= need || ranking.class(v) <= ranking.class(q) {
                    break;
                }
                // Another tenant's work within its guarantee is never taken for better-classed
                // work: the guarantee holds whatever the class.
                let peer = works[v].tenant;
                if peer != tenant && lenders.guaranteed(peer) {
                    continue;
                }
                gained += u64::from(works[v].gpus());
                trial.stop(peer, u64::from(works[v].gpus()));
                lenders.stop(peer, u64::from(works[v].gpus()));
                claimed.push(v);
            }
        }
        let by_rank = claimed.len();
        if free + gained < need && trial.within_guarantee(tenant, need) {
            let cohort = trial.cohort_of(tenant);
            for &v in by_class.iter() {
                if free + gained >= need {
                    break;
                }
                let peer = works[v].tenant;
                if gone[v] || claimed.contains(&v) || peer == tenant {
                    continue;
                }
                if cohort.is_some_and(|c| lenders.borrows_from(peer, c)) {
                    gained += u64::from(works[v].gpus());
                    trial.stop(peer, u64::from(works[v].gpus()));
                    lenders.stop(peer, u64::from(works[v].gpus()));
                    claimed.push(v);
                }
            }
        }
        if free + gained >= need {
            for &v in &claimed {
                gone[v] = true;
            }
            holds = lenders;
            outcome.preempted.extend_from_slice(&claimed);
            outcome.reclaimed.extend_from_slice(&claimed[by_rank..]);
            free = free + gained - need;
            trial.start(tenant, need);
            would = trial;
        }
    }
    for &i in &outcome.preempted {
        let w = &works[i];
        ledger.stop(w.tenant, u64::from(w.gpus()));
        ledger.power(nodes, &w.running_on, &w.task_gpus, true);
        match index.as_mut() {
            Some(index) => index.release(nodes, w),
            None => {
                for (&node, &gpus) in w.running_on.iter().zip(&w.task_gpus) {
                    if let Some(n) = nodes.get_mut(node as usize) {
                        n.give(gpus, w);
                    }
                }
            }
        }
    }
}

/// Queued work in the order phase 3 takes it: rank order, or with fair share, among work of
/// one class, the tenant using least for its weight next (its share grows as its work starts).
struct Turns {
    queues: Vec<VecDeque<usize>>,
    heap: BinaryHeap<Reverse<Turn>>,
    fair: bool,
    /// The queue whose work was handed out last: it gets its next turn once that work's start
    /// is in the ledger.
    pending: Option<usize>,
}

impl Turns {
    fn new(ranking: &Ranking<'_>, ranked: Vec<usize>, ledger: &Ledger<'_>) -> Self {
        let fair = ranking.policy.fair_share;
        let mut turns = Turns {
            queues: Vec::new(),
            heap: BinaryHeap::new(),
            fair,
            pending: None,
        };
        if !fair {
            turns.queues.push(ranked.into());
            return turns;
        }
        let mut tenants: Vec<u32> = ranked.iter().map(|&i| ranking.works[i].tenant).collect();
        tenants.sort_unstable();
        tenants.dedup();
        turns.queues = vec![VecDeque::new(); tenants.len()];
        for i in ranked {
            if let Ok(t) = tenants.binary_search(&ranking.works[i].tenant) {
                turns.queues[t].push_back(i);
            }
        }
        for q in 0..turns.queues.len() {
            turns.push(ranking, ledger, q);
        }
        turns
    }

    fn push(&mut self, ranking: &Ranking<'_>, ledger: &Ledger<'_>, queue: usize) {
        if let Some(&i) = self.queues[queue].front() {
            let w = &ranking.works[i];
            let key = (
                ranking.class(i),
                ledger.share(w.tenant),
                w.submitted_at_ms,
                w.tie,
                queue,
            );
            self.heap.push(Reverse(key));
        }
    }

    fn next(&mut self, ranking: &Ranking<'_>, ledger: &Ledger<'_>) -> Option<usize> {
        if !self.fair {
            return self.queues.first_mut()?.pop_front();
        }
        if let Some(queue) = self.pending.take() {
            self.push(ranking, ledger, queue);
        }
        let Reverse((.., queue)) = self.heap.pop()?;
        self.pending = Some(queue);
        self.queues[queue].pop_front()
    }
}

/// Phase 3: place queued work in turn, each gang whole or not at all, within its tenant's
/// quota and its sites' power budgets; the first that cannot start gets a reservation when
/// end times allow one, and later work must leave it whole.
fn place(
    nodes: &mut [Node],
    index: &mut Option<FreeIndex>,
    ranking: &Ranking<'_>,
    ledger: &mut Ledger<'_>,
    outcome: &mut Outcome,
) {
    let works = ranking.works;
    let now_ms = ranking.now_ms;
    let mut free = total_free(nodes, index);
    // Work that needs more GPUs than are free cannot start: it is ranked only when it could
    // get a reservation, which needs end times.
    let reserving = works
        .iter()
        .any(|w| w.is_running() && w.ends_at_ms.is_some());
    let ranked = ranking
        .ranked(|i| !works[i].is_running() && (reserving || u64::from(works[i].gpus()) <= free));
    let mut turns = Turns::new(ranking, ranked, ledger);
    let mut waits: Vec<Option<Wait>> = vec![None; works.len()];
    let mut started = vec![false; works.len()];
    let mut head_seen = false;
    // The ledger as it will stand when the reserved work starts.
    let mut then: Option<Ledger<'_>> = None;
    while let Some(i) = turns.next(ranking, ledger) {
        let w = &works[i];
        let need = u64::from(w.gpus());
        let index = index.get_or_insert_with(|| FreeIndex::new(nodes));
        if !ledger.admits(w.tenant, need) {
            waits[i] = Some(Wait::Quota);
            if reserving && !head_seen {
                head_seen = true;
                (outcome.reservation, then) =
                    Reservation::find(nodes, works, i, &outcome.preempted, now_ms, ledger).unzip();
            }
            continue;
        }
        let spread = now_ms.saturating_sub(w.waiting_since_ms) >= ranking.policy.topology_wait_ms;
        let (placed, powerless) = if need <= free {
            place_within_power(nodes, index, ledger, w, spread)
        } else {
            (Placed::Nowhere, false)
        };
        match placed {
            Placed::On(chosen) => {
                if let (Some(reservation), Some(then)) =
                    (outcome.reservation.as_mut(), then.as_mut())
                {
                    if !reservation.admits(then, nodes, works, &chosen, i, now_ms) {
                        release(nodes, index, w, &chosen);
                        waits[i] = Some(Wait::Reserved);
                        continue;
                    }
                }
                ledger.start(w.tenant, need);
                ledger.power(nodes, &chosen, &w.task_gpus, false);
                started[i] = true;
                outcome.started.push((i, chosen));
            }
            Placed::NotInOneDomain => {
                waits[i] = Some(if powerless {
                    Wait::Power
                } else {
                    Wait::Topology
                });
            }
            Placed::Nowhere => {
                if powerless {
                    waits[i] = Some(Wait::Power);
                }
                if reserving && !head_seen {
                    head_seen = true;
                    (outcome.reservation, then) =
                        Reservation::find(nodes, works, i, &outcome.preempted, now_ms, ledger)
                            .unzip();
                }
            }
        }
        free = index.total_free();
    }
    // Everything else waits, listed in input order.
    for (i, w) in works.iter().enumerate() {
        if !w.is_running() && !started[i] {
            let wait = waits[i].unwrap_or(if u64::from(w.gpus()) > free {
                Wait::Capacity
            } else {
                Wait::Fragmented
            });
            outcome.waiting.push((i, wait));
        }
    }
}

/// Places `w` where no site's power budget breaks: a placement that would break one is undone
/// and tried again without that site's nodes. Also says whether power kept it out.
pub(super) fn place_within_power(
    nodes: &mut [Node],
    index: &mut FreeIndex,
    ledger: &Ledger<'_>,
    w: &Work,
    spread: bool,
) -> (Placed, bool) {
    let mut masked: Vec<usize> = Vec::new();
    let placed = loop {
        match index.place(nodes, w, spread) {
            Placed::On(chosen) => match ledger.over_budget(nodes, &chosen, &w.task_gpus) {
                None => break Placed::On(chosen),
                Some(site) => {
                    release(nodes, index, w, &chosen);
                    for (n, node) in nodes.iter_mut().enumerate() {
                        if node.site == Some(site) && node.schedulable {
                            node.schedulable = false;
                            masked.push(n);
                        }
                    }
                }
            },
            other => break other,
        }
    };
    for &n in &masked {
        nodes[n].schedulable = true;
    }
    let powerless = !masked.is_empty() && !matches!(placed, Placed::On(_));
    (placed, powerless)
}

/// Gives back what `w` just took on `chosen`.
fn release(nodes: &mut [Node], index: &mut FreeIndex, w: &Work, chosen: &[u32]) {
    let taken = Work {
        running_on: chosen.to_vec(),
        ..w.clone()
    };
    index.release(nodes, &taken);
}
