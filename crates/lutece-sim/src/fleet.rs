//! Fleets to simulate: the trace's own pools (`philly-vcs:PATH`, `openb:PATH`), a generated one
//! (`nvl72x250`: 250 racks of 18 nodes × 4 GPUs, each rack one 72-GPU NVLink domain), or one
//! described in a file (`fleet:PATH`, see [`crate::fleet_file`]).

use crate::trace::{OpenbNode, VcPool};

/// A fleet as written on the command line, before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetSpec {
    /// Each Philly VC alone on its own pool of 8-GPU nodes (the reference replay's fleet).
    PhillyVcs { path: String },
    /// The openb node list, one pool.
    Openb { path: String },
    /// `racks` NVL72 racks in one pool.
    Nvl72 { racks: u32 },
    /// Racks listed in a fleet file, one pool.
    File { path: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{spec}` is not a fleet: expected philly-vcs:PATH, openb:PATH, fleet:PATH or nvl72xRACKS")]
pub struct FleetSpecError {
    spec: String,
}

/// One node of a simulated fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub gpus: u32,
    pub cpus_milli: u64,
    pub memory_bytes: u64,
    /// NVLink domain (rack) number within the pool.
    pub domain: u32,
    pub model: Option<String>,
}

/// A set of nodes that jobs share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub nodes: Vec<NodeSpec>,
}

/// A whole fleet: one or more pools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    pub pools: Vec<Pool>,
    /// Whether each tenant (Philly VC) runs alone in the pool of its own name.
    pub pool_per_tenant: bool,
}

impl std::str::FromStr for FleetSpec {
    type Err = FleetSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let error = || FleetSpecError {
            spec: spec.to_owned(),
        };
        if let Some(path) = spec.strip_prefix("philly-vcs:") {
            return Ok(FleetSpec::PhillyVcs {
                path: path.to_owned(),
            });
        }
        if let Some(path) = spec.strip_prefix("openb:") {
            return Ok(FleetSpec::Openb {
                path: path.to_owned(),
            });
        }
        if let Some(path) = spec.strip_prefix("fleet:") {
            return Ok(FleetSpec::File {
                path: path.to_owned(),
            });
        }
        let compact: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
        let racks = compact.strip_prefix("nvl72x").ok_or_else(error)?;
        match racks.parse::<u32>() {
            Ok(racks) if racks > 0 => Ok(FleetSpec::Nvl72 { racks }),
            _ => Err(error()),
        }
    }
}

const GIB: u64 = 1 << 30;

impl Fleet {
    /// Each VC's pool of nodes, numbered 0..n-1, in one domain.
    pub fn from_vc_pools(pools: &[VcPool]) -> Self {
        let pools = pools
            .iter()
            .map(|p| Pool {
                name: p.vc.clone(),
                nodes: (0..p.nodes)
                    .map(|_| NodeSpec {
                        gpus: p.gpus / p.nodes.max(1),
                        cpus_milli: 64_000,
                        memory_bytes: 512 * GIB,
                        domain: 0,
                        model: None,
                    })
                    .collect(),
            })
            .collect();
        Fleet {
            pools,
            pool_per_tenant: true,
        }
    }

    /// `racks` NVL72 racks: 18 nodes of 4 GPUs each, a rack one NVLink domain.
    pub fn nvl72(racks: u32) -> Self {
        let nodes = (0..racks)
            .flat_map(|rack| {
                (0..18).map(move |_| NodeSpec {
                    gpus: 4,
                    cpus_milli: 144_000,
                    memory_bytes: 480 * GIB,
                    domain: rack,
                    model: Some("GB200".to_owned()),
                })
            })
            .collect();
        Fleet {
            pools: vec![Pool {
                name: format!("nvl72x{racks}"),
                nodes,
            }],
            pool_per_tenant: false,
        }
    }

    /// The openb node list as one pool; each node its own domain (the trace gives no topology).
    pub fn from_openb(nodes: &[OpenbNode]) -> Self {
        let nodes = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| NodeSpec {
                gpus: n.gpus,
                cpus_milli: n.cpu_milli,
                memory_bytes: n.memory_mib << 20,
                domain: i as u32,
                model: n.model.clone(),
            })
            .collect();
        Fleet {
            pools: vec![Pool {
                name: "openb".to_owned(),
                nodes,
            }],
            pool_per_tenant: false,
        }
    }

    pub fn gpus(&self) -> u64 {
        self.pools
            .iter()
            .flat_map(|p| &p.nodes)
            .map(|n| u64::from(n.gpus))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!("nvl72x250".parse(), Ok(FleetSpec::Nvl72 { racks: 250 }));
        assert_eq!("nvl72 x 250".parse(), Ok(FleetSpec::Nvl72 { racks: 250 }));
        assert_eq!(
            "philly-vcs:a.csv".parse(),
            Ok(FleetSpec::PhillyVcs {
                path: "a.csv".into()
            })
        );
        assert!("nvl72x0".parse::<FleetSpec>().is_err());
        assert!("dgx".parse::<FleetSpec>().is_err());
        assert_eq!(Fleet::nvl72(250).gpus(), 18_000);
    }
}
