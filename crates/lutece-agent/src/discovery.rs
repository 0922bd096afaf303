//! What this machine has: CPUs, memory, hostname, and GPUs through NVML when an NVIDIA driver
//! is present (no driver: no GPUs, not an error).

use lutece_api::Gpu;

/// CPUs this process may use (respects affinity masks and cgroup quotas), in millicores.
pub fn cpus_milli() -> u64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u64 * 1000)
        .unwrap_or(1000)
}

/// Total memory from `/proc/meminfo`, in bytes; 0 when it cannot be read.
pub fn memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| parse_meminfo_total(&text))
        .unwrap_or(0)
}

fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The NVIDIA GPUs NVML reports, in NVML (PCI bus) order.
pub fn nvml_gpus() -> Vec<Gpu> {
    let nvml = match nvml_wrapper::Nvml::init() {
        Ok(nvml) => nvml,
        Err(error) => {
            tracing::info!(%error, "no NVIDIA driver found; this node has no GPUs");
            return Vec::new();
        }
    };
    let count = nvml.device_count().unwrap_or(0);
    let mut gpus = Vec::new();
    for index in 0..count {
        match nvml.device_by_index(index) {
            Ok(device) => gpus.push(Gpu {
                index,
                uuid: device.uuid().unwrap_or_default(),
                model: device.name().unwrap_or_else(|_| "unknown".to_owned()),
                memory_bytes: device.memory_info().map(|m| m.total).unwrap_or(0),
                fake: false,
            }),
            Err(error) => tracing::warn!(index, %error, "could not read a GPU"),
        }
    }
    gpus
}

/// `count` GPUs that do not exist, for tests of multi-GPU scheduling on machines without them.
pub fn fake_gpus(count: u32, node_name: &str) -> Vec<Gpu> {
    (0..count)
        .map(|index| Gpu {
            index,
            uuid: format!("FAKE-{node_name}-{index}"),
            model: "fake".to_owned(),
            memory_bytes: 80 << 30,
            fake: true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo() {
        assert_eq!(
            parse_meminfo_total("MemTotal:       16384 kB\nMemFree: 1 kB\n"),
            Some(16 << 20)
        );
        assert_eq!(parse_meminfo_total("garbage"), None);
    }

    #[test]
    fn this_machine_has_cpus_and_memory() {
        assert!(cpus_milli() >= 1000);
        assert!(memory_bytes() > 0);
    }
}
