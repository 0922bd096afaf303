//! What a replay measured: one record per job, and the summary figures printed as a table or
//! as JSON.

use serde::Serialize;

/// One job's fate in a replay; times in simulated milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobRecord {
    /// Index of the job's tenant (its VC).
    pub tenant: usize,
    pub gpus: u32,
    pub submit_ms: i64,
    pub duration_ms: i64,
    /// First start; `None` if it never started.
    pub start_ms: Option<i64>,
    /// End; `None` if it never finished.
    pub end_ms: Option<i64>,
    /// Nodes and NVLink domains its first placement spanned (0 before it starts).
    pub nodes: u32,
    pub domains: u32,
}

/// Statistics over the finished jobs of a replay.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub jobs: usize,
    pub unfinished: usize,
    pub avg_jct_s: f64,
    pub median_jct_s: f64,
    pub p99_jct_s: f64,
    pub avg_queue_s: f64,
    pub median_queue_s: f64,
    pub p99_queue_s: f64,
    /// Busy GPU-time over all GPU-time from the first submission to the last end.
    pub utilization: f64,
    /// GPU-time left idle while work waited, over all GPU-time (fragmentation and blocking).
    pub idle_while_waiting: f64,
    /// Share of multi-node gangs placed inside one NVLink domain.
    pub gangs_in_one_domain: f64,
    /// The tenant with the worst mean slowdown (JCT over duration), and that slowdown.
    pub worst_tenant: String,
    pub worst_tenant_slowdown: f64,
    pub preemptions: u64,
    /// Full scheduling passes, and passes cut short because nothing could start or be
    /// preempted (their time is not in the decision figures).
    pub passes: u64,
    pub passes_skipped: u64,
    pub decision_p50_us: f64,
    pub decision_p99_us: f64,
    /// Device energy under the power model (GPU busy 700 W, idle 100 W), and its peak.
    pub energy_kwh: f64,
    pub peak_power_kw: f64,
    pub makespan_s: f64,
    /// Each tenant's own figures, in the order of the tenant list.
    pub tenants: Vec<TenantFigures>,
}

/// What one tenant saw: its finished jobs, their mean JCT and queueing delay, its mean
/// slowdown (JCT over duration) and the GPU-hours its finished jobs ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TenantFigures {
    pub tenant: String,
    pub jobs: usize,
    pub avg_jct_s: f64,
    pub avg_queue_s: f64,
    pub slowdown: f64,
    pub gpu_hours: f64,
}

/// The value at quantile `q` (0..=1) of ascending `sorted` by the nearest-rank method (the
/// `⌈q·n⌉`-th value, the definition the reference replay's p99 figures match); 0 for no values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Summary {
    /// Job statistics from `records`; the caller fills in the fleet-level fields.
    pub fn from_records(records: &[JobRecord], tenants: &[String]) -> Self {
        let finished: Vec<&JobRecord> = records.iter().filter(|r| r.end_ms.is_some()).collect();
        let mut jct: Vec<f64> = Vec::with_capacity(finished.len());
        let mut queue: Vec<f64> = Vec::with_capacity(finished.len());
        let mut slowdown = vec![(0.0f64, 0usize); tenants.len().max(1)];
        // Per tenant: JCT, queueing delay and GPU-hours summed.
        let mut sums = vec![(0.0f64, 0.0f64, 0.0f64); tenants.len().max(1)];
        let (mut gangs, mut whole) = (0usize, 0usize);
        for r in &finished {
            let end = r.end_ms.unwrap_or(r.submit_ms);
            let j = (end - r.submit_ms) as f64 / 1000.0;
            let waited = ((end - r.submit_ms - r.duration_ms) as f64 / 1000.0).max(0.0);
            jct.push(j);
            queue.push(waited);
            if let Some(sum) = sums.get_mut(r.tenant) {
                sum.0 += j;
                sum.1 += waited;
                sum.2 += f64::from(r.gpus) * r.duration_ms as f64 / 3.6e6;
            }
            if let Some(s) = slowdown.get_mut(r.tenant) {
                s.0 += j / (r.duration_ms as f64 / 1000.0).max(1.0);
                s.1 += 1;
            }
            if r.nodes > 1 {
                gangs += 1;
                whole += usize::from(r.domains == 1);
            }
        }
        let mean = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let (avg_jct_s, avg_queue_s) = (mean(&jct), mean(&queue));
        jct.sort_by(f64::total_cmp);
        queue.sort_by(f64::total_cmp);
        let (worst, worst_slowdown) = slowdown
            .iter()
            .enumerate()
            .filter(|(_, s)| s.1 > 0)
            .map(|(t, s)| (t, s.0 / s.1 as f64))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        Summary {
            jobs: records.len(),
            unfinished: records.len() - finished.len(),
            avg_jct_s,
            median_jct_s: quantile(&jct, 0.5),
            p99_jct_s: quantile(&jct, 0.99),
            avg_queue_s,
            median_queue_s: quantile(&queue, 0.5),
            p99_queue_s: quantile(&queue, 0.99),
            gangs_in_one_domain: if gangs == 0 {
                1.0
            } else {
                whole as f64 / gangs as f64
            },
            worst_tenant: tenants.get(worst).cloned().unwrap_or_default(),
            worst_tenant_slowdown: worst_slowdown,
            tenants: tenants
                .iter()
                .zip(slowdown.iter().zip(&sums))
                .map(|(name, (&(slow, n), &(jct, waited, gpu_hours)))| {
                    let per = |x: f64| if n == 0 { 0.0 } else { x / n as f64 };
                    TenantFigures {
                        tenant: name.clone(),
                        jobs: n,
                        avg_jct_s: per(jct),
                        avg_queue_s: per(waited),
                        slowdown: per(slow),
                        gpu_hours,
                    }
                })
                .collect(),
            ..Summary::default()
        }
    }
}
