//! Printing results as a table for people or as JSON for scripts.

use crate::cli::args::OutputFormat;
use anyhow::Result;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use lutece_api::{
    ApiKey, DataPlacement, Deployment, EncryptionKey, FileObject, Job, ModelKind, Node,
    PlatformModel, StorageLocation, Tenant, TokenUsage, UsageRow, WorkloadPlacement,
};
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// Prints `value` as JSON, or as the table `table` builds.
pub(crate) fn print<T: Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce(&T) -> Table,
) -> Result<()> {
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(value)?),
        OutputFormat::Table => println!("{}", table(value)),
    }
    Ok(())
}

fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    table
}

fn or_dash(value: Option<impl ToString>) -> String {
    value
        .map(|v| v.to_string())
        .unwrap_or_else(|| "-".to_owned())
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

/// A time given in milliseconds since the Unix epoch, as RFC 3339 (UTC).
/// 9999-12-31T23:59:59Z: what RFC 3339 can write (humantime panics beyond; a time that far
/// comes only from a broken or hostile server).
const LAST_RFC3339_SECOND: u64 = 253_402_300_799;

pub(crate) fn unix_ms(ms: i64) -> String {
    match u64::try_from(ms) {
        Ok(ms) if ms <= LAST_RFC3339_SECOND * 1000 => {
            humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
                .to_string()
        }
        Ok(_) => format!("{ms} ms after 1970"),
        Err(_) => format!("{ms} ms before 1970"),
    }
}

/// A time given in seconds since the Unix epoch, as RFC 3339 (UTC).
pub(crate) fn unix_seconds(seconds: i64) -> String {
    match u64::try_from(seconds) {
        Ok(s) if s <= LAST_RFC3339_SECOND => {
            humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(s))
                .to_string()
        }
        Ok(_) => format!("{seconds} s after 1970"),
        Err(_) => format!("{seconds} s before 1970"),
    }
}

pub(crate) fn cpus(milli: u64) -> String {
    if milli % 1000 == 0 {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    match UNITS.iter().find(|(_, size)| n >= *size) {
        Some((unit, size)) if n % size == 0 => format!("{}{unit}", n / size),
        Some((unit, size)) => format!("{:.1}{unit}", n as f64 / *size as f64),
        None => format!("{n}B"),
    }
}

pub(crate) fn jobs(jobs: &Vec<Job>) -> Table {
    let mut table = new_table(&[
        "ID",
        "NAME",
        "TENANT",
        "STATE",
        "EXIT",
        "NODES",
        "CPUS",
        "MEMORY",
        "GPUS/NODE",
        "CREATED",
        "REASON",
    ]);
    for job in jobs {
        table.add_row(vec![
            job.id.clone(),
            job.name.clone(),
            job.tenant.clone(),
            job.state.clone(),
            or_dash(job.exit_code),
            job.nodes.to_string(),
            cpus(job.resources.cpus_milli),
            bytes(job.resources.memory_bytes),
            job.resources.gpus_per_node.to_string(),
            job.created_at.clone(),
            or_dash(job.reason.as_ref()),
        ]);
    }
    table
}

pub(crate) fn job(job: &Job) -> Table {
    let mut table = new_table(&["FIELD", "VALUE"]);
    let rows: Vec<(&str, String)> = vec![
        ("id", job.id.clone()),
        ("name", job.name.clone()),
        (
            "tenant / project",
            format!("{} / {}", job.tenant, job.project),
        ),
        ("command", job.command.join(" ")),
        ("state", job.state.clone()),
        ("exit code", or_dash(job.exit_code)),
        ("reason", or_dash(job.reason.as_ref())),
        (
            "resources",
            format!(
                "{} nodes × ({} CPUs, {}, {} GPUs)",
                job.nodes,
                cpus(job.resources.cpus_milli),
                bytes(job.resources.memory_bytes),
                job.resources.gpus_per_node
            ),
        ),
        ("created", job.created_at.clone()),
        ("scheduled", or_dash(job.scheduled_at.as_ref())),
        ("started", or_dash(job.started_at.as_ref())),
        ("finished", or_dash(job.finished_at.as_ref())),
    ];
    for (field, value) in rows {
        table.add_row(vec![field.to_owned(), value]);
    }
    for task in &job.tasks {
        let gpus: Vec<String> = task.gpus.iter().map(u32::to_string).collect();
        table.add_row(vec![
            format!("rank {}", task.rank),
            format!(
                "{} on {} (GPUs [{}]) exit {}",
                task.state,
                task.node,
                gpus.join(","),
                or_dash(task.exit_code)
            ),
        ]);
    }
    table
}

pub(crate) fn tenants(tenants: &Vec<Tenant>) -> Table {
    let mut table = new_table(&["ID", "NAME", "CREATED"]);
    for tenant in tenants {
        table.add_row(vec![
            tenant.id.clone(),
            tenant.name.clone(),
            tenant.created_at.clone(),
        ]);
    }
    table
}

pub(crate) fn keys(keys: &Vec<ApiKey>) -> Table {
    let mut table = new_table(&["ID", "TENANT", "NAME", "ROLE", "CREATED", "REVOKED"]);
    for key in keys {
        table.add_row(vec![
            key.id.clone(),
            key.tenant.clone(),
            key.name.clone(),
            key.role.as_str().to_owned(),
            key.created_at.clone(),
            or_dash(key.revoked_at.as_ref()),
        ]);
    }
    table
}

pub(crate) fn nodes(nodes: &Vec<Node>) -> Table {
    let mut table = new_table(&[
        "ID",
        "NAME",
        "STATE",
        "RACK",
        "CPUS (USED)",
        "MEMORY (USED)",
        "GPUS (USED)",
        "GPU MODEL",
        "LAST SEEN",
    ]);
    for node in nodes {
        let models: std::collections::BTreeSet<&str> =
            node.gpus.iter().map(|g| g.model.as_str()).collect();
        let fake = if node.fake_gpus { " FAKE" } else { "" };
        table.add_row(vec![
            node.id.clone(),
            node.name.clone(),
            node.state.clone(),
            or_dash(node.rack.as_ref()),
            format!(
                "{} ({})",
                cpus(node.cpus_milli),
                cpus(node.allocated_cpus_milli)
            ),
            format!(
                "{} ({})",
                bytes(node.memory_bytes),
                bytes(node.allocated_memory_bytes)
            ),
            format!("{} ({}){fake}", node.gpus.len(), node.allocated_gpus),
            models.into_iter().collect::<Vec<_>>().join(", "),
            node.last_seen_at.clone(),
        ]);
    }
    table
}

pub(crate) fn usage(rows: &Vec<UsageRow>) -> Table {
    let mut table = new_table(&[
        "TENANT",
        "PROJECT",
        "JOBS",
        "GPU-SECONDS",
        "CPU-SECONDS (RESERVED)",
        "CPU-SECONDS (USED)",
    ]);
    for row in rows {
        table.add_row(vec![
            row.tenant.clone(),
            row.project.clone(),
            row.jobs.to_string(),
            format!("{:.1}", row.gpu_seconds),
            format!("{:.1}", row.cpu_seconds),
            format!("{:.1}", row.cpu_seconds_used),
        ]);
    }
    table
}

pub(crate) fn token_usage(rows: &Vec<TokenUsage>) -> Table {
    let mut table = new_table(&[
        "TENANT",
        "PROJECT",
        "KEY",
        "MODEL",
        "REQUESTS",
        "PROMPT TOKENS",
        "COMPLETION TOKENS",
    ]);
    for row in rows {
        table.add_row(vec![
            row.tenant.clone(),
            row.project.clone(),
            row.key_id.clone(),
            row.model.clone(),
            row.requests.to_string(),
            row.prompt_tokens.to_string(),
            row.completion_tokens.to_string(),
        ]);
    }
    table
}

pub(crate) fn deployments(deployments: &Vec<Deployment>) -> Table {
    let mut table = new_table(&[
        "NAME", "TENANT", "MODEL", "READY", "CPUS", "MEMORY", "GPUS", "SHARED",
    ]);
    for d in deployments {
        table.add_row(vec![
            d.name.clone(),
            d.tenant.clone(),
            d.model.clone().unwrap_or_else(|| "(command)".to_owned()),
            format!("{}/{}", d.ready, d.replicas),
            cpus(d.resources.cpus_milli),
            bytes(d.resources.memory_bytes),
            d.resources.gpus_per_node.to_string(),
            if d.shared { "yes" } else { "no" }.to_owned(),
        ]);
    }
    table
}

pub(crate) fn models(models: &Vec<PlatformModel>) -> Table {
    let mut table = new_table(&["NAME", "KIND", "SIZE", "SHA-256"]);
    for m in models {
        table.add_row(vec![
            m.name.clone(),
            match m.kind {
                ModelKind::Generative => "generative",
                ModelKind::Embedding => "embedding",
            }
            .to_owned(),
            bytes(m.bytes),
            or_dash(m.sha256.as_ref()),
        ]);
    }
    table
}

pub(crate) fn deployment(d: &Deployment) -> Table {
    let mut table = deployments(&vec![d.clone()]);
    for replica in &d.replica_jobs {
        table.add_row(vec![
            format!("  replica {}", replica.job_id),
            String::new(),
            or_dash(replica.endpoint.as_ref()),
            if replica.ready {
                "ready".to_owned()
            } else {
                replica.state.clone()
            },
        ]);
    }
    table
}

pub(crate) fn files(files: &Vec<FileObject>) -> Table {
    let mut table = new_table(&["ID", "FILENAME", "PURPOSE", "SIZE", "LOCATION", "CREATED"]);
    for f in files {
        table.add_row(vec![
            f.id.clone(),
            f.filename.clone(),
            f.purpose.clone(),
            bytes(f.bytes),
            format!("{} ({})", f.location, f.jurisdiction),
            unix_seconds(f.created_at),
        ]);
    }
    table
}

pub(crate) fn file(f: &FileObject) -> Table {
    let mut table = new_table(&["FIELD", "VALUE"]);
    let rows: Vec<(&str, String)> = vec![
        ("id", f.id.clone()),
        ("filename", f.filename.clone()),
        ("purpose", f.purpose.clone()),
        ("size", format!("{} ({} bytes)", bytes(f.bytes), f.bytes)),
        ("status", f.status.clone()),
        ("location", format!("{} ({})", f.location, f.jurisdiction)),
        ("sha-256", f.sha256.clone()),
        ("created", unix_seconds(f.created_at)),
    ];
    for (field, value) in rows {
        table.add_row(vec![field.to_owned(), value]);
    }
    table
}

pub(crate) fn storage_locations(locations: &Vec<StorageLocation>) -> Table {
    let mut table = new_table(&["NAME", "JURISDICTION", "DEFAULT"]);
    for l in locations {
        table.add_row(vec![
            l.name.clone(),
            l.jurisdiction.clone(),
            yes_no(l.default),
        ]);
    }
    table
}

/// Encryption keys: never their material, which the API does not return.
pub(crate) fn encryption_keys(keys: &Vec<EncryptionKey>) -> Table {
    let mut table = new_table(&[
        "ID",
        "KIND",
        "STATE",
        "OBJECTS",
        "FINGERPRINT",
        "CREATED",
        "DESTROYED",
    ]);
    for k in keys {
        table.add_row(vec![
            k.id.clone(),
            k.kind.clone(),
            k.state.clone(),
            k.objects.to_string(),
            or_dash(k.fingerprint.as_ref()),
            k.created_at.clone(),
            or_dash(k.destroyed_at.as_ref()),
        ]);
    }
    table
}

pub(crate) fn data_placements(data: &[DataPlacement]) -> Table {
    let mut table = new_table(&[
        "DATA CLASS",
        "LOCATION",
        "JURISDICTION",
        "OBJECTS",
        "SIZE",
        "ALLOWED",
    ]);
    for d in data {
        table.add_row(vec![
            d.class.clone(),
            d.location.clone(),
            d.jurisdiction.clone(),
            d.objects.to_string(),
            bytes(d.bytes),
            yes_no(d.allowed),
        ]);
    }
    table
}

pub(crate) fn workload_placements(workloads: &[WorkloadPlacement]) -> Table {
    let mut table = new_table(&[
        "KIND",
        "ID",
        "NAME",
        "STATE",
        "NODES",
        "JURISDICTIONS",
        "ALLOWED",
    ]);
    for w in workloads {
        let or_waiting = |list: &[String]| {
            if list.is_empty() {
                "-".to_owned()
            } else {
                list.join(", ")
            }
        };
        table.add_row(vec![
            w.kind.clone(),
            w.id.clone(),
            w.name.clone(),
            w.state.clone(),
            or_waiting(&w.nodes),
            or_waiting(&w.jurisdictions),
            yes_no(w.allowed),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_read_as_rfc3339() {
        assert_eq!(unix_seconds(1_764_000_000), "2025-11-24T16:00:00Z");
        assert_eq!(unix_ms(1_764_000_000_123), "2025-11-24T16:00:00.123Z");
        assert_eq!(unix_seconds(-1), "-1 s before 1970");
        // Past what RFC 3339 writes, from a broken server: said, not a panic.
        assert_eq!(unix_seconds(i64::MAX), format!("{} s after 1970", i64::MAX));
        assert_eq!(unix_ms(i64::MAX), format!("{} ms after 1970", i64::MAX));
        assert_eq!(unix_seconds(253_402_300_799), "9999-12-31T23:59:59Z");
    }
}
