//! Quotas, cohorts and reclaim, fair share, power budgets and backfill, as a user sees them in
//! a plan; and the properties that must hold on any snapshot.

use super::plan;
use super::tests::{check, job, node};
use crate::engine::Policy;
use crate::snapshot::{
    NodePower, NodeState, QueuedWorkload, RunningWorkload, Snapshot, TaskPlacement, TenantShare,
};
use lutece_core::Resources;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn of(tenant: &str, w: QueuedWorkload) -> QueuedWorkload {
    QueuedWorkload {
        tenant: tenant.to_owned(),
        ..w
    }
}

fn share(guaranteed: u64, borrow: Option<u64>, cohort: Option<&str>) -> TenantShare {
    TenantShare {
        guaranteed_gpus: Some(guaranteed),
        borrow_limit_gpus: borrow,
        cohort: cohort.map(str::to_owned),
        weight: 1,
    }
}

/// `node` with its first `busy` GPUs held by running work `id` of `tenant`.
fn running(state: &mut NodeState, id: &str, tenant: &str, busy: u32) -> RunningWorkload {
    let per_task = Resources {
        cpus_milli: 1000,
        memory_bytes: 1 << 30,
        gpus: busy,
    };
    state.allocated = state.allocated.saturating_add(&per_task);
    state.free_gpus.retain(|&g| g >= busy);
    RunningWorkload {
        id: id.to_owned(),
        tenant: tenant.to_owned(),
        tasks: vec![TaskPlacement {
            node: state.id.clone(),
            gpus: (0..busy).collect(),
            share_milli: None,
        }],
        per_task,
        preemptible: true,
        ..Default::default()
    }
}

fn tenants(entries: &[(&str, TenantShare)]) -> BTreeMap<String, TenantShare> {
    entries
        .iter()
        .map(|(name, s)| ((*name).to_owned(), s.clone()))
        .collect()
}

#[test]
fn a_tenant_borrows_idle_guarantees_of_its_cohort_within_its_limit() {
    let snapshot = |borrow| Snapshot {
        nodes: vec![node("n1", 8, 4), node("n2", 8, 4), node("n3", 8, 4)],
        queue: vec![
            of("a", job("a1", 1, 1, 4)),
            of(
                "a",
                QueuedWorkload {
                    submitted_at_ms: 1,
                    ..of("a", job("a2", 1, 1, 4))
                },
            ),
        ],
        tenants: tenants(&[
            ("a", share(4, borrow, Some("lab"))),
            ("b", share(4, None, Some("lab"))),
        ]),
        ..Default::default()
    };
    check(snapshot(None), "a1: n1[0, 1, 2, 3]\na2: n2[0, 1, 2, 3]");
    check(
        snapshot(Some(2)),
        "a1: n1[0, 1, 2, 3]\na2: waits (tenant a holds 4 GPUs, has 4 guaranteed and may borrow \
         up to 2 more from its cohort; this needs 4 more)",
    );
    // Alone in its cohort, a tenant has nothing to borrow: the third node stays idle.
    let mut alone = snapshot(None);
    alone.tenants = tenants(&[("a", share(4, None, None))]);
    check(
        alone,
        "a1: n1[0, 1, 2, 3]\na2: waits (tenant a holds 4 GPUs, has 4 guaranteed and may borrow \
         only what its cohort leaves idle; this needs 4 more)",
    );
}

#[test]
fn a_tenant_within_its_guarantee_reclaims_what_a_peer_borrowed() {
    let (mut n1, mut n2) = (node("n1", 8, 4), node("n2", 8, 4));
    let mine = running(&mut n1, "a-own", "a", 4);
    let borrowed = RunningWorkload {
        submitted_at_ms: 5,
        ..running(&mut n2, "a-borrowed", "a", 4)
    };
    let snapshot = Snapshot {
        nodes: vec![n1, n2],
        queue: vec![of("b", job("b1", 1, 1, 4))],
        running: vec![mine, borrowed],
        tenants: tenants(&[
            ("a", share(4, None, Some("lab"))),
            ("b", share(4, None, Some("lab"))),
        ]),
        ..Default::default()
    };
    check(
        snapshot,
        "b1: n2[0, 1, 2, 3]\n\
         a-borrowed: preempted (preempted to give back GPUs its tenant borrowed beyond its \
         guarantee to a tenant of its cohort within its own)",
    );
}

#[test]
fn a_guarantee_holds_against_better_classed_work_of_a_borrower() {
    // b runs its whole guarantee at a low LAS level; a, guaranteed nothing, could borrow c's
    // idle guarantee, but not by preempting b: it waits.
    let mut n1 = node("n1", 8, 8);
    let b_work = RunningWorkload {
        attained_gpu_ms: 8 * 200 * 3_600_000,
        ..running(&mut n1, "b-run", "b", 8)
    };
    let snapshot = Snapshot {
        nodes: vec![n1],
        queue: vec![of("a", job("a1", 1, 1, 8))],
        running: vec![b_work],
        policy: Some(Policy::las()),
        tenants: tenants(&[
            ("a", share(0, None, Some("lab"))),
            ("b", share(8, None, Some("lab"))),
            ("c", share(8, None, Some("lab"))),
        ]),
        ..Default::default()
    };
    check(
        snapshot,
        "a1: waits (needs 8 GPUs; the largest node has 0 free (8 in all))",
    );
}

#[test]
fn fair_share_serves_the_tenant_that_uses_least_first() {
    let queue: Vec<QueuedWorkload> = (0..3)
        .flat_map(|k| {
            [
                of(
                    "a",
                    QueuedWorkload {
                        submitted_at_ms: k,
                        ..job(&format!("a{k}"), 1, 1, 1)
                    },
                ),
                of(
                    "b",
                    QueuedWorkload {
                        submitted_at_ms: 10 + k,
                        ..job(&format!("b{k}"), 1, 1, 1)
                    },
                ),
            ]
        })
        .collect();
    let snapshot = |fair_share| Snapshot {
        nodes: vec![node("n1", 8, 4)],
        queue: queue.clone(),
        policy: Some(Policy {
            fair_share,
            ..Policy::default()
        }),
        ..Default::default()
    };
    let started = |s: Snapshot| -> Vec<String> {
        plan(&s)
            .placements
            .into_iter()
            .map(|p| p.workload)
            .collect()
    };
    assert_eq!(started(snapshot(false)), ["a0", "a1", "a2", "b0"]);
    assert_eq!(started(snapshot(true)), ["a0", "b0", "a1", "b1"]);
    // A weight of 3 serves b as if it used a third.
    let mut weighted = snapshot(true);
    weighted.tenants = BTreeMap::from([(
        "b".to_owned(),
        TenantShare {
            weight: 3,
            ..TenantShare::default()
        },
    )]);
    assert_eq!(started(weighted), ["a0", "b0", "b1", "b2"]);
}

#[test]
fn a_site_power_budget_sends_work_elsewhere_or_keeps_it_waiting() {
    let power = NodePower {
        idle_w: 100,
        per_gpu_w: 700,
    };
    let mut snapshot = Snapshot {
        nodes: vec![node("p1", 8, 4), node("p2", 8, 4)],
        queue: vec![job("big", 1, 1, 4)],
        // Two idle nodes draw 200 W: 1,500 W leaves room for two busy GPUs, not four.
        site_power_budget_w: BTreeMap::from([("paris".to_owned(), 1_700)]),
        sites: BTreeMap::from([
            ("p1".to_owned(), "paris".to_owned()),
            ("p2".to_owned(), "lyon".to_owned()),
        ]),
        node_power: BTreeMap::from([("p1".to_owned(), power), ("p2".to_owned(), power)]),
        ..Default::default()
    };
    // p1 comes first by id, but its site cannot power it: the job goes to p2 in Lyon.
    check(snapshot.clone(), "big: p2[0, 1, 2, 3]");
    snapshot.sites.insert("p2".to_owned(), "paris".to_owned());
    check(
        snapshot,
        "big: waits (fits only where a site's power budget has no room for it (paris has 1500 W \
         left))",
    );
}

#[test]
fn backfill_runs_what_ends_before_the_reservation_and_nothing_that_would_delay_it() {
    let mut n1 = node("n1", 8, 8);
    let r = RunningWorkload {
        ends_at_ms: Some(100_000),
        ..running(&mut n1, "r", "t", 4)
    };
    let snapshot = Snapshot {
        nodes: vec![n1],
        queue: vec![
            job("head", 1, 1, 8),
            QueuedWorkload {
                submitted_at_ms: 1,
                time_limit_ms: Some(60_000),
                ..job("short", 1, 1, 2)
            },
            QueuedWorkload {
                submitted_at_ms: 2,
                ..job("long", 1, 1, 2)
            },
        ],
        running: vec![r],
        now_ms: 10_000,
        ..Default::default()
    };
    check(
        snapshot,
        "short: n1[4, 5]\n\
         head: waits (needs 8 GPUs; the largest node has 2 free (8 in all))\n\
         long: waits (fits now, but would delay head, which is reserved to start in 90 s; a \
         time limit that ends before then would let it run now)\n\
         head: reserved at 100000 on n1",
    );
}

const TENANTS: [&str; 3] = ["a", "b", "c"];
const SITES: [&str; 2] = ["paris", "lyon"];
const POWER: NodePower = NodePower {
    idle_w: 100,
    per_gpu_w: 700,
};

/// A busy fleet over two sites, three tenants with quotas (two share a cohort), and a queue
/// with time limits; running work may have an end time.
fn arbitrary_limited_snapshot() -> impl Strategy<Value = Snapshot> {
    let nodes = prop::collection::vec(
        (
            1u32..9,
            0u32..9,
            0usize..3,
            0usize..2,
            prop::option::of(1i64..200),
            1u64..16,
        ),
        1..6,
    );
    let queue = prop::collection::vec(
        (
            0usize..3,
            1u32..3,
            1u32..9,
            1u64..8,
            prop::option::of(1i64..200),
            -1i32..2,
        ),
        0..10,
    );
    let quotas = prop::collection::vec((0u64..16, prop::option::of(0u64..8)), 3);
    let budgets = prop::collection::vec(0u64..8_000, 2);
    let policy = (any::<bool>(), any::<bool>());
    (nodes, queue, quotas, budgets, policy).prop_map(|(nodes, queue, quotas, budgets, policy)| {
        let mut snapshot = Snapshot {
            now_ms: 1_000,
            policy: Some(Policy {
                fair_share: policy.1,
                ..if policy.0 {
                    Policy::las()
                } else {
                    Policy::default()
                }
            }),
            ..Default::default()
        };
        for (i, (gpus, busy, tenant, site, ends_s, cpus)) in nodes.into_iter().enumerate() {
            let mut state = node(&format!("n{i}"), cpus, gpus);
            let busy = busy.min(gpus);
            if busy > 0 {
                snapshot.running.push(RunningWorkload {
                    ends_at_ms: ends_s.map(|s| 1_000 + s * 1_000),
                    ..running(&mut state, &format!("r{i}"), TENANTS[tenant], busy)
                });
            }
            snapshot
                .sites
                .insert(state.id.clone(), SITES[site].to_owned());
            snapshot.node_power.insert(state.id.clone(), POWER);
            snapshot.nodes.push(state);
        }
        for (i, (tenant, tasks, gpus, cpus, limit_s, priority)) in queue.into_iter().enumerate() {
            snapshot.queue.push(QueuedWorkload {
                priority,
                submitted_at_ms: i as i64,
                time_limit_ms: limit_s.map(|s| s * 1_000),
                ..of(TENANTS[tenant], job(&format!("j{i}"), tasks, cpus, gpus))
            });
        }
        for (k, (guaranteed, borrow)) in quotas.into_iter().enumerate() {
            // a and b lend to each other; c is alone.
            let cohort = (k < 2).then_some("lab");
            snapshot
                .tenants
                .insert(TENANTS[k].to_owned(), share(guaranteed, borrow, cohort));
        }
        for (site, budget) in SITES.iter().zip(budgets) {
            snapshot
                .site_power_budget_w
                .insert((*site).to_owned(), budget);
        }
        snapshot
    })
}

/// The snapshot once `plan` is carried out: preempted work stopped, placed work running (until
/// its time limit, if it has one), only `queue` left queued.
fn carried_out(snapshot: &Snapshot, plan: &crate::Plan, queue: Vec<QueuedWorkload>) -> Snapshot {
    let mut next = snapshot.clone();
    let stopped: Vec<&str> = plan
        .preemptions
        .iter()
        .map(|p| p.workload.as_str())
        .collect();
    next.running.retain(|r| !stopped.contains(&r.id.as_str()));
    for r in snapshot
        .running
        .iter()
        .filter(|r| stopped.contains(&r.id.as_str()))
    {
        for t in &r.tasks {
            let state = next.nodes.iter_mut().find(|n| n.id == t.node).unwrap();
            state.allocated = state.allocated.saturating_sub(&r.per_task);
            state.free_gpus.extend(&t.gpus);
            state.free_gpus.sort_unstable();
        }
    }
    for p in &plan.placements {
        let w = snapshot.queue.iter().find(|w| w.id == p.workload).unwrap();
        for t in &p.tasks {
            let state = next.nodes.iter_mut().find(|n| n.id == t.node).unwrap();
            state.allocated = state.allocated.saturating_add(&w.per_task);
            state.free_gpus.retain(|g| !t.gpus.contains(g));
        }
        next.running.push(RunningWorkload {
            id: w.id.clone(),
            tenant: w.tenant.clone(),
            priority: w.priority,
            submitted_at_ms: w.submitted_at_ms,
            tasks: p.tasks.clone(),
            per_task: w.per_task,
            ends_at_ms: w.time_limit_ms.map(|l| snapshot.now_ms + l),
            ..Default::default()
        });
    }
    next.queue = queue;
    next
}

fn held(snapshot: &Snapshot, tenant: &str) -> u64 {
    snapshot
        .running
        .iter()
        .filter(|r| r.tenant == tenant)
        .flat_map(|r| &r.tasks)
        .map(|t| t.gpus.len() as u64)
        .sum()
}

fn draw(snapshot: &Snapshot, site: &str) -> u64 {
    snapshot
        .nodes
        .iter()
        .filter(|n| snapshot.sites.get(&n.id).is_some_and(|s| s == site))
        .map(|n| u64::from(POWER.idle_w) + u64::from(n.allocated.gpus) * u64::from(POWER.per_gpu_w))
        .sum()
}

proptest! {
    #[test]
    fn quotas_and_power_budgets_hold(snapshot in arbitrary_limited_snapshot()) {
        let result = plan(&snapshot);
        let after = carried_out(&snapshot, &result, Vec::new());
        for tenant in TENANTS {
            let share = &snapshot.tenants[tenant];
            let placed = result.placements.iter().any(|p| {
                snapshot.queue.iter().any(|w| w.id == p.workload && w.tenant == tenant)
            });
            if !placed {
                continue;
            }
            let guaranteed = share.guaranteed_gpus.unwrap_or(0);
            let bound = match (&share.cohort, share.borrow_limit_gpus) {
                (None, _) => guaranteed,
                (Some(_), Some(limit)) => guaranteed + limit,
                (Some(_), None) => u64::MAX,
            };
            prop_assert!(held(&after, tenant) <= bound, "tenant {} holds {} > {}", tenant, held(&after, tenant), bound);
        }
        // Work of a tenant within its guarantee is stopped only for its own tenant's work.
        for stopped in &result.preemptions {
            let victim = snapshot.running.iter().find(|r| r.id == stopped.workload).unwrap();
            let guarantee = snapshot.tenants[&victim.tenant].guaranteed_gpus.unwrap_or(0);
            let own_queued = snapshot.queue.iter().any(|w| w.tenant == victim.tenant);
            prop_assert!(
                held(&snapshot, &victim.tenant) > guarantee || own_queued,
                "{} stopped while {} held {} of {} guaranteed",
                stopped.workload, victim.tenant, held(&snapshot, &victim.tenant), guarantee
            );
        }
        for site in SITES {
            let placed_here = result.placements.iter().flat_map(|p| &p.tasks).any(|t| {
                snapshot.sites.get(&t.node).is_some_and(|s| s == site)
            });
            if placed_here {
                prop_assert!(draw(&after, site) <= snapshot.site_power_budget_w[site]);
            }
        }
        prop_assert_eq!(plan(&snapshot), result);
    }

    #[test]
    fn backfill_never_delays_the_reservation(snapshot in arbitrary_limited_snapshot()) {
        let result = plan(&snapshot);
        let Some(reserved) = result.reservations.first() else { return Ok(()) };
        let head = snapshot.queue.iter().find(|w| w.id == reserved.workload).unwrap().clone();
        // The plan carried out, then time run on to the reserved instant: work that has ended
        // by then gives back what it held. The head must fit on its reserved nodes then, within
        // its quota and its sites' power budgets.
        let mut then = carried_out(&snapshot, &result, Vec::new());
        let ended: Vec<RunningWorkload> = then
            .running
            .iter()
            .filter(|r| r.ends_at_ms.is_some_and(|t| t <= reserved.at_ms))
            .cloned()
            .collect();
        then.running.retain(|r| !ended.contains(r));
        for r in &ended {
            for t in &r.tasks {
                let state = then.nodes.iter_mut().find(|n| n.id == t.node).unwrap();
                state.allocated = state.allocated.saturating_sub(&r.per_task);
                state.free_gpus.extend(&t.gpus);
            }
        }
        for id in &reserved.nodes {
            let state = then.nodes.iter().find(|n| &n.id == id).unwrap();
            prop_assert!(
                head.per_task.fits_in(&state.free()) && state.free_gpus.len() as u32 >= head.per_task.gpus,
                "{} has {:?} free at {}: {:?}", id, state.free(), reserved.at_ms, result
            );
        }
        for site in SITES {
            let here = reserved.nodes.iter().filter(|n| then.sites[*n] == site).count() as u64;
            let watts = here * u64::from(head.per_task.gpus) * u64::from(POWER.per_gpu_w);
            if watts > 0 {
                prop_assert!(draw(&then, site) + watts <= snapshot.site_power_budget_w[site]);
            }
        }
        let need = u64::from(head.tasks) * u64::from(head.per_task.gpus);
        let share = &snapshot.tenants[&head.tenant];
        let guaranteed = share.guaranteed_gpus.unwrap_or(0);
        let after = held(&then, &head.tenant) + need;
        if after > guaranteed {
            let cohort = share.cohort.clone();
            prop_assert!(cohort.is_some(), "{} over its guarantee alone", head.tenant);
            prop_assert!(after - guaranteed <= share.borrow_limit_gpus.unwrap_or(u64::MAX));
            let members: Vec<&str> = TENANTS
                .into_iter()
                .filter(|t| snapshot.tenants[*t].cohort == cohort)
                .collect();
            let used: u64 = members.iter().map(|t| held(&then, t)).sum();
            let pool: u64 = members
                .iter()
                .map(|t| snapshot.tenants[*t].guaranteed_gpus.unwrap_or(0))
                .sum();
            prop_assert!(used + need <= pool, "cohort holds {} + {} of {}", used, need, pool);
        }
    }
}
