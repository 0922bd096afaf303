//! A fleet described in a file, one group of identical racks per line:
//!
//! ```text
//! # 18,000 GPUs for training, 512 for inference
//! nvl72 x 250
//! hgx8 x 64
//! ```
//!
//! `nvl72`: a GB200 NVL72 rack, 18 nodes of 4 GPUs in one 72-GPU NVLink domain. `hgx8`: an
//! HGX H100 server, 8 GPUs in one NVLink domain of its own. Blank lines and `#` comments are
//! skipped. The fleet is one pool; racks are numbered in the order the file lists them.

use crate::fleet::{Fleet, NodeSpec, Pool};

/// Why a fleet file could not be read, with the line (from 1) it is about.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {problem}")]
pub struct FleetFileError {
    pub line: usize,
    pub problem: String,
}

const GIB: u64 = 1 << 30;
/// The most racks one line may ask for: a million GPUs is past any fleet this simulates.
const MAX_RACKS: u32 = 1_000_000 / 8;

/// Reads a fleet description.
pub fn parse(text: &str) -> Result<Fleet, FleetFileError> {
    let mut nodes = Vec::new();
    let mut domain = 0u32;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let problem = |problem: String| FleetFileError {
            line: i + 1,
            problem,
        };
        let spaced = line.replace('×', " x ");
        let (kind, count) = match spaced.split_whitespace().collect::<Vec<_>>()[..] {
            [kind, "x", count] => (kind, count),
            _ => {
                return Err(problem(format!(
                    "`{line}` is not `KIND x COUNT` (for example `nvl72 x 250`)"
                )));
            }
        };
        let racks = match count.parse::<u32>() {
            Ok(n) if (1..=MAX_RACKS).contains(&n) => n,
            _ => {
                return Err(problem(format!(
                    "`{count}` is not a count from 1 to {MAX_RACKS}"
                )));
            }
        };
        let (per_rack, node) = match kind {
            "nvl72" => (
                18,
                NodeSpec {
                    gpus: 4,
                    cpus_milli: 144_000,
                    memory_bytes: 480 * GIB,
                    domain: 0,
                    model: Some("GB200".to_owned()),
                },
            ),
            "hgx8" => (
                1,
                NodeSpec {
                    gpus: 8,
                    cpus_milli: 224_000,
                    memory_bytes: 2048 * GIB,
                    domain: 0,
                    model: Some("H100".to_owned()),
                },
            ),
            other => {
                return Err(problem(format!(
                    "unknown rack kind `{other}`: expected nvl72 or hgx8"
                )));
            }
        };
        for _ in 0..racks {
            for _ in 0..per_rack {
                nodes.push(NodeSpec {
                    domain,
                    ..node.clone()
                });
            }
            domain += 1;
        }
    }
    if nodes.is_empty() {
        return Err(FleetFileError {
            line: text.lines().count().max(1),
            problem: "the file describes no racks".to_owned(),
        });
    }
    Ok(Fleet {
        pools: vec![Pool {
            name: "fleet".to_owned(),
            nodes,
        }],
        pool_per_tenant: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn racks_of_each_kind_add_up() {
        let fleet = parse("# training\nnvl72 x 250\n\nhgx8 × 2 # inference\n").unwrap();
        assert_eq!(fleet.gpus(), 18_000 + 16);
        let nodes = &fleet.pools[0].nodes;
        assert_eq!(nodes.len(), 250 * 18 + 2);
        assert_eq!(
            (nodes[0].domain, nodes[17].domain, nodes[18].domain),
            (0, 0, 1)
        );
        assert_eq!(nodes.last().map(|n| (n.gpus, n.domain)), Some((8, 251)));
        assert_eq!(
            parse("nvl72 x 250").unwrap().pools[0].nodes,
            Fleet::nvl72(250).pools[0].nodes
        );
    }

    #[test]
    fn errors_name_the_line() {
        let error = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(
            error("nvl72 x 2\nnvl36 x 1"),
            "line 2: unknown rack kind `nvl36`: expected nvl72 or hgx8"
        );
        assert_eq!(
            error("nvl72 x 0"),
            "line 1: `0` is not a count from 1 to 125000"
        );
        assert_eq!(
            error("nvl72 x -1"),
            "line 1: `-1` is not a count from 1 to 125000"
        );
        assert_eq!(
            error("nvl72"),
            "line 1: `nvl72` is not `KIND x COUNT` (for example `nvl72 x 250`)"
        );
        assert_eq!(error("# nothing\n"), "line 1: the file describes no racks");
        assert_eq!(error(""), "line 1: the file describes no racks");
    }
}
