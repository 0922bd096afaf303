//! The reference replay against the reference results in `../shared/traces/philly/`, read from
//! the real files (never copied into the repository).

use super::{RefOrder, replay};
use crate::report::{JobRecord, Summary};
use crate::testdata;
use crate::trace::{PhillyJob, VcPool};

fn load() -> (Vec<PhillyJob>, Vec<VcPool>) {
    testdata::philly()
}

fn summary(records: &[JobRecord], tenant: Option<usize>) -> Summary {
    let chosen: Vec<JobRecord> = records
        .iter()
        .filter(|r| tenant.is_none_or(|t| r.tenant == t))
        .copied()
        .collect();
    Summary::from_records(&chosen, &[])
}

fn rows(name: &str) -> Vec<Vec<String>> {
    testdata::rows(&format!("philly/{name}"))
}

fn int(text: &str) -> i64 {
    text.parse()
        .unwrap_or_else(|e| panic!("`{text}` in a reference file: {e}"))
}

#[test]
fn reproduces_the_per_vc_reference_to_the_second() {
    let (jobs, pools) = load();
    let fifo = replay(&jobs, &pools, RefOrder::Fifo, 1).expect("every VC has a pool");
    let sjf = replay(&jobs, &pools, RefOrder::Sjf, 1).expect("every VC has a pool");
    for row in rows("replay_fifo_sjf_octnov.csv") {
        let tenant = pools.iter().position(|p| p.vc == row[0]);
        let (f, s) = (summary(&fifo, tenant), summary(&sjf, tenant));
        assert_eq!(
            f.unfinished + s.unfinished,
            0,
            "{}: every job finishes",
            row[0]
        );
        let got = [
            f.jobs as i64,
            f.avg_jct_s.round() as i64,
            f.avg_queue_s.round() as i64,
            s.avg_jct_s.round() as i64,
            s.avg_queue_s.round() as i64,
        ];
        let want: Vec<i64> = row[1..].iter().map(|t| int(t)).collect();
        assert_eq!(got.as_slice(), want.as_slice(), "VC {}", row[0]);
    }
}

#[test]
fn reproduces_the_compressed_reference_to_the_second() {
    let (jobs, pools) = load();
    for row in rows("replay_fifo_sjf_compressed.csv") {
        let order = if row[1] == "fifo" {
            RefOrder::Fifo
        } else {
            RefOrder::Sjf
        };
        let s = summary(
            &replay(&jobs, &pools, order, int(&row[0])).expect("every VC has a pool"),
            None,
        );
        let got = [
            s.jobs as i64,
            s.avg_jct_s.round() as i64,
            s.avg_queue_s.round() as i64,
            s.p99_queue_s.round() as i64,
        ];
        let want: Vec<i64> = row[2..].iter().map(|t| int(t)).collect();
        assert_eq!(
            got.as_slice(),
            want.as_slice(),
            "compress {} {}",
            row[0],
            row[1]
        );
    }
}
