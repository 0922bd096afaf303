//! Backfill with a reservation for the head of the queue (EASY backfill): the best-ranked
//! workload that cannot start now gets the earliest time and the nodes at which it will fit,
//! from the end times of running work; later work may start now only if it leaves the head
//! able to start then. Work whose end nobody knows never frees its GPUs in this reckoning, so
//! the head's time is never optimistic; when no time can be found there is no reservation.

use super::limits::Ledger;
use super::pass::place_within_power;
use super::{FreeIndex, Node, Placed, Work};
use std::collections::BTreeMap;

/// The head's reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The index of the head in the pass's `works`.
    pub work: usize,
    pub at_ms: i64,
    /// The node of each of the head's tasks, in rank order.
    pub nodes: Vec<u32>,
    /// What each reserved node will still have free at `at_ms` once the head has its share
    /// (GPUs, CPUs, memory): what work that runs past `at_ms` may take there.
    spare: BTreeMap<u32, (u32, u64, u64)>,
}

impl Reservation {
    /// Finds when and where `works[head]` will fit, given `nodes` as they are now, the end
    /// times of the running work in `works` (but `stopped`, already given back), and the
    /// quotas and power budgets in `ledger`.
    /// Also returns the ledger as it will stand then, before the head starts: work that runs
    /// past that time must leave the head admitted and powered in it.
    pub(super) fn find<'a>(
        nodes: &[Node],
        works: &[Work],
        head: usize,
        stopped: &[usize],
        now_ms: i64,
        ledger: &Ledger<'a>,
    ) -> Option<(Self, Ledger<'a>)> {
        let mut ends: Vec<(i64, usize)> = works
            .iter()
            .enumerate()
            .filter(|(i, w)| w.is_running() && !stopped.contains(i))
            .filter_map(|(i, w)| Some((w.ends_at_ms?.max(now_ms), i)))
            .collect();
        if ends.is_empty() {
            return None;
        }
        ends.sort_unstable();
        let need = u64::from(works[head].gpus());
        let mut later: Vec<Node> = nodes.to_vec();
        let mut ledger = ledger.clone();
        let mut free: u64 = later
            .iter()
            .filter(|n| n.schedulable)
            .map(|n| u64::from(n.free_gpus))
            .sum();
        let mut k = 0;
        while k < ends.len() {
            let at = ends[k].0;
            while k < ends.len() && ends[k].0 == at {
                let w = &works[ends[k].1];
                ledger.power(&later, &w.running_on, &w.task_gpus, true);
                ledger.stop(w.tenant, u64::from(w.gpus()));
                for (&n, &gpus) in w.running_on.iter().zip(&w.task_gpus) {
                    if let Some(node) = later.get_mut(n as usize) {
                        let before = node.free_gpus;
                        node.give(gpus, w);
                        if node.schedulable {
                            free += u64::from(node.free_gpus - before);
                        }
                    }
                }
                k += 1;
            }
            if free < need || !ledger.admits(works[head].tenant, need) {
                continue;
            }
            let mut trial = later.clone();
            let mut index = FreeIndex::new(&trial);
            let (placed, _) =
                place_within_power(&mut trial, &mut index, &ledger, &works[head], true);
            if let Placed::On(chosen) = placed {
                let later = trial;
                let spare = chosen
                    .iter()
                    .map(|&n| {
                        let node = &later[n as usize];
                        let free = (node.free_gpus, node.free_cpus_milli, node.free_memory_bytes);
                        (n, free)
                    })
                    .collect();
                let reservation = Reservation {
                    work: head,
                    at_ms: at,
                    nodes: chosen,
                    spare,
                };
                return Some((reservation, ledger));
            }
        }
        None
    }

    /// Whether `work`, placed now on `chosen`, leaves the reservation whole: it ends before
    /// the head starts, or leaves the head its nodes' resources and, in `then` (the ledger at
    /// that time), its quota and its sites' power. If so, what it takes is booked.
    pub(super) fn admits(
        &mut self,
        then: &mut Ledger<'_>,
        nodes: &[Node],
        works: &[Work],
        chosen: &[u32],
        i: usize,
        now_ms: i64,
    ) -> bool {
        let work = &works[i];
        if work
            .time_limit_ms
            .is_some_and(|limit| limit >= 0 && now_ms.saturating_add(limit) <= self.at_ms)
        {
            return true;
        }
        let head = &works[self.work];
        let mut trial = then.clone();
        trial.start(work.tenant, u64::from(work.gpus()));
        trial.power(nodes, chosen, &work.task_gpus, false);
        if !trial.admits(head.tenant, u64::from(head.gpus()))
            || trial
                .over_budget(nodes, &self.nodes, &head.task_gpus)
                .is_some()
        {
            return false;
        }
        let mut spare = self.spare.clone();
        for (n, &gpus) in chosen.iter().zip(&work.task_gpus) {
            if let Some((free_gpus, cpus, memory)) = spare.get_mut(n) {
                if *free_gpus < gpus
                    || *cpus < work.task_cpus_milli
                    || *memory < work.task_memory_bytes
                {
                    return false;
                }
                *free_gpus -= gpus;
                *cpus -= work.task_cpus_milli;
                *memory -= work.task_memory_bytes;
            }
        }
        self.spare = spare;
        *then = trial;
        true
    }
}
