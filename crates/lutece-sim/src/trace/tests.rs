//! Parser cases, and a property: any input gives rows or an error, never a panic.

use super::*;
use proptest::prelude::*;

#[test]
fn philly_rows_parse() {
    let text =
        "job_id,submit_s,duration_s,num_gpus,vc\n31395,45,30,1,6214e9\n\n31394,115,61,16,11cb48\n";
    let jobs = read_philly(text.as_bytes()).expect("valid");
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        jobs[1],
        PhillyJob {
            id: 31394,
            submit_s: 115,
            duration_s: 61,
            gpus: 16,
            vc: "11cb48".into()
        }
    );
}

#[test]
fn errors_name_the_line_and_the_column() {
    let text = "job_id,submit_s,duration_s,num_gpus,vc\n1,2,3,4,a\n2,x,3,4,a\n";
    let error = read_philly(text.as_bytes())
        .expect_err("bad submit")
        .to_string();
    assert_eq!(
        error,
        "line 3, column `submit_s`: `x` is not valid: invalid digit found in string"
    );
    let error = read_philly("job_id,submit_s,duration_s,vc\n".as_bytes())
        .expect_err("no gpus")
        .to_string();
    assert_eq!(error, "line 1: no column `num_gpus` in the header");
    let error = read_philly("job_id,submit_s,duration_s,num_gpus,vc\n1,2,3\n".as_bytes())
        .expect_err("short");
    assert_eq!(error.to_string(), "line 2: 3 fields where the header has 5");
    let error = read_vc_pools("vc,nodes,gpus\na,3,10\n".as_bytes()).expect_err("uneven");
    assert_eq!(
        error.to_string(),
        "line 2, column `gpus`: 10 GPUs do not split evenly over 3 nodes"
    );
}

#[test]
fn openb_rows_parse_with_and_without_optional_columns() {
    let nodes = read_openb_nodes(
        "sn,cpu_milli,memory_mib,gpu,model\nn0,32000,262144,0,\nn1,64000,1,2,P100\n".as_bytes(),
    )
    .expect("valid");
    assert_eq!(nodes[0].model, None);
    assert_eq!(nodes[1].model.as_deref(), Some("P100"));
    let pods =
        read_openb_pods("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,2,1,460\n".as_bytes())
            .expect("valid");
    assert_eq!(
        (pods[0].num_gpu, pods[0].gpu_milli, pods[0].gpu_spec.len()),
        (1, 460, 0)
    );
    let header = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n";
    let pods = read_openb_pods(format!("{header}p,1,2,1,1000,V100M16|V100M32\n").as_bytes())
        .expect("valid");
    assert_eq!(pods[0].gpu_spec, ["V100M16", "V100M32"]);
    let error =
        read_openb_pods(format!("{header}p,1,2,1,1500,\n").as_bytes()).expect_err("too much");
    assert_eq!(
        error.to_string(),
        "line 2, column `gpu_milli`: 1500 milli-GPUs is more than one GPU"
    );
}

proptest! {
    #[test]
    fn readers_never_panic(text in "[0-9a-z_,\\n\\-|. ]{0,200}") {
        let _ = read_philly(text.as_bytes());
        let _ = read_vc_pools(text.as_bytes());
        let _ = read_openb_nodes(text.as_bytes());
        let _ = read_openb_pods(text.as_bytes());
    }

    #[test]
    fn valid_philly_rows_round_trip(rows in prop::collection::vec((0u64..1_000_000, 0i64..10_000_000, 0i64..1_000_000, 1u32..129, "[a-f0-9]{6}"), 0..20)) {
        let mut text = String::from("job_id,submit_s,duration_s,num_gpus,vc\n");
        for (id, submit, duration, gpus, vc) in &rows {
            text.push_str(&format!("{id},{submit},{duration},{gpus},{vc}\n"));
        }
        let jobs = read_philly(text.as_bytes()).expect("valid rows parse");
        prop_assert_eq!(jobs.len(), rows.len());
        for (job, row) in jobs.iter().zip(&rows) {
            prop_assert_eq!((job.id, job.submit_s, job.duration_s, job.gpus), (row.0, row.1, row.2, row.3));
        }
    }
}
