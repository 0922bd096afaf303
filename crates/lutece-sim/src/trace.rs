//! Readers of the real traces in `../shared/traces/`: Philly jobs and VC pools, Alibaba openb
//! nodes and pods. They parse from any [`BufRead`]; opening files is the caller's business.

use crate::csv::{self, Row, TraceError};
use std::io::BufRead;

/// One Philly training job: a gang of `gpus` GPUs submitted by virtual cluster `vc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhillyJob {
    pub id: u64,
    pub submit_s: i64,
    pub duration_s: i64,
    pub gpus: u32,
    pub vc: String,
}

/// One VC's own pool of 8-GPU nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcPool {
    pub vc: String,
    pub nodes: u32,
    pub gpus: u32,
}

/// One openb node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenbNode {
    pub name: String,
    pub cpu_milli: u64,
    pub memory_mib: u64,
    pub gpus: u32,
    /// The GPU model; `None` when the node has no GPU or the column is empty.
    pub model: Option<String>,
}

/// One openb pod: `num_gpu` whole GPUs, or `gpu_milli` < 1000 of one GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenbPod {
    pub name: String,
    pub cpu_milli: u64,
    pub memory_mib: u64,
    pub num_gpu: u32,
    pub gpu_milli: u32,
    /// Acceptable GPU models (`gpu_spec`, `|`-separated); empty means any.
    pub gpu_spec: Vec<String>,
}

/// Reads `job_id,submit_s,duration_s,num_gpus,vc`.
pub fn read_philly(reader: impl BufRead) -> Result<Vec<PhillyJob>, TraceError> {
    csv::read(
        reader,
        &["job_id", "submit_s", "duration_s", "num_gpus", "vc"],
        &[],
        |row| {
            let job = PhillyJob {
                id: row.parse("job_id")?,
                submit_s: row.parse("submit_s")?,
                duration_s: row.parse("duration_s")?,
                gpus: row.parse("num_gpus")?,
                vc: non_empty(row, "vc")?,
            };
            if job.duration_s < 0 {
                return Err(row.error("duration_s", "a duration cannot be negative".to_owned()));
            }
            if job.gpus == 0 {
                return Err(row.error("num_gpus", "a job needs at least one GPU".to_owned()));
            }
            Ok(job)
        },
    )
}

/// Reads `vc,nodes,gpus`.
pub fn read_vc_pools(reader: impl BufRead) -> Result<Vec<VcPool>, TraceError> {
    csv::read(reader, &["vc", "nodes", "gpus"], &[], |row| {
        let pool = VcPool {
            vc: non_empty(row, "vc")?,
            nodes: row.parse("nodes")?,
            gpus: row.parse("gpus")?,
        };
        if pool.nodes == 0 || pool.gpus % pool.nodes != 0 {
            return Err(row.error(
                "gpus",
                format!(
                    "{} GPUs do not split evenly over {} nodes",
                    pool.gpus, pool.nodes
                ),
            ));
        }
        Ok(pool)
    })
}

/// Reads `sn,cpu_milli,memory_mib,gpu,model`.
pub fn read_openb_nodes(reader: impl BufRead) -> Result<Vec<OpenbNode>, TraceError> {
    csv::read(
        reader,
        &["sn", "cpu_milli", "memory_mib", "gpu"],
        &["model"],
        |row| {
            let model = row.text("model");
            Ok(OpenbNode {
                name: non_empty(row, "sn")?,
                cpu_milli: row.parse("cpu_milli")?,
                memory_mib: row.parse("memory_mib")?,
                gpus: row.parse("gpu")?,
                model: (!model.is_empty()).then(|| model.to_owned()),
            })
        },
    )
}

/// Reads `name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,…]`.
pub fn read_openb_pods(reader: impl BufRead) -> Result<Vec<OpenbPod>, TraceError> {
    csv::read(
        reader,
        &["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"],
        &["gpu_spec"],
        |row| {
            let pod = OpenbPod {
                name: non_empty(row, "name")?,
                cpu_milli: row.parse("cpu_milli")?,
                memory_mib: row.parse("memory_mib")?,
                num_gpu: row.parse("num_gpu")?,
                gpu_milli: row.parse("gpu_milli")?,
                gpu_spec: row
                    .text("gpu_spec")
                    .split('|')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            };
            if pod.gpu_milli > 1000 {
                return Err(row.error(
                    "gpu_milli",
                    format!("{} milli-GPUs is more than one GPU", pod.gpu_milli),
                ));
            }
            if pod.num_gpu > 1 && pod.gpu_milli != 1000 && pod.gpu_milli != 0 {
                return Err(row.error(
                    "gpu_milli",
                    "a share of a GPU is only for one-GPU pods".to_owned(),
                ));
            }
            Ok(pod)
        },
    )
}

fn non_empty(row: &Row<'_>, column: &str) -> Result<String, TraceError> {
    let text = row.text(column);
    if text.is_empty() {
        return Err(row.error(column, "is empty".to_owned()));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests;
