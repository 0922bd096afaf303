//! Checks a submitted [`JobSpec`] and turns it into a job to store; every refusal names the
//! field at fault.

use crate::error::ApiError;
use lutece_api::{JobSpec, ResourceRequest};
use lutece_core::{Resources, limits, parse_cpus, parse_memory, validate_name};
use std::collections::BTreeMap;
use std::path::Path;

/// Variables lutece sets for every task; a job may not set them itself.
const RESERVED_ENV: [&str; 12] = [
    "RANK",
    "NODE_RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "LUTECE_JOB_ID",
    "LUTECE_TENANT",
    "LUTECE_NODE_ADDRESS",
];

/// A spec that passed every check.
pub(crate) struct ValidSpec {
    pub(crate) name: String,
    pub(crate) project: String,
    pub(crate) command: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) per_task: Resources,
    pub(crate) nodes: u32,
    pub(crate) priority: i32,
}

/// `check_program`: also refuse a program that cannot be found on this machine's `PATH`.
pub(crate) fn validate(spec: JobSpec, check_program: bool) -> Result<ValidSpec, ApiError> {
    let JobSpec {
        name,
        project,
        command,
        env,
        resources,
        nodes,
        priority,
    } = spec;
    let program = command.first().ok_or_else(|| {
        ApiError::invalid(
            "command",
            "is empty; give the program to run and its arguments",
        )
    })?;
    if command.len() > limits::MAX_COMMAND_ARGS {
        return Err(ApiError::invalid(
            "command",
            format!(
                "has {} arguments; the limit is {}",
                command.len(),
                limits::MAX_COMMAND_ARGS
            ),
        ));
    }
    for (i, arg) in command.iter().enumerate() {
        check_text(&format!("command[{i}]"), arg)?;
    }
    if program.is_empty() {
        return Err(ApiError::invalid("command[0]", "the program name is empty"));
    }
    if check_program && !program_exists(program) {
        return Err(ApiError::invalid(
            "command[0]",
            format!("no program {program:?} on this machine's PATH"),
        ));
    }
    if env.len() > limits::MAX_ENV_VARS {
        return Err(ApiError::invalid(
            "env",
            format!(
                "sets {} variables; the limit is {}",
                env.len(),
                limits::MAX_ENV_VARS
            ),
        ));
    }
    for (key, value) in &env {
        let field = format!("env.{key}");
        if !is_env_name(key) {
            return Err(ApiError::invalid(
                field,
                "is not a valid variable name (letters, digits and '_', not starting with a digit)",
            ));
        }
        if RESERVED_ENV.contains(&key.as_str()) {
            return Err(ApiError::invalid(field, "is set by lutece for each task"));
        }
        check_text(&field, value)?;
    }
    let name = match name {
        Some(name) => {
            validate_name(&name).map_err(|e| ApiError::invalid("name", e.to_string()))?;
            name
        }
        None => name_from_program(program),
    };
    let project = project.unwrap_or_else(|| "default".to_owned());
    validate_name(&project).map_err(|e| ApiError::invalid("project", e.to_string()))?;

    let per_task = resources_of(&resources, 512 << 20)?;
    let nodes = nodes.unwrap_or(1);
    if nodes == 0 || nodes > limits::MAX_NODES_PER_JOB {
        return Err(ApiError::invalid(
            "nodes",
            format!("must be from 1 to {}", limits::MAX_NODES_PER_JOB),
        ));
    }
    let priority = priority.unwrap_or(0);
    if !(-1000..=1000).contains(&priority) {
        return Err(ApiError::invalid("priority", "must be from -1000 to 1000"));
    }
    Ok(ValidSpec {
        name,
        project,
        command,
        env,
        per_task,
        nodes,
        priority,
    })
}

/// Resources per task (or replica): 1 CPU and `default_memory` unless asked otherwise.
pub(crate) fn resources_of(
    resources: &ResourceRequest,
    default_memory: u64,
) -> Result<Resources, ApiError> {
    let cpus_milli = match &resources.cpus {
        Some(q) => {
            parse_cpus(&q.0).map_err(|e| ApiError::invalid("resources.cpus", e.to_string()))?
        }
        None => 1000,
    };
    if cpus_milli == 0 {
        return Err(ApiError::invalid("resources.cpus", "must be more than 0"));
    }
    let memory_bytes = match &resources.memory {
        Some(q) => {
            parse_memory(&q.0).map_err(|e| ApiError::invalid("resources.memory", e.to_string()))?
        }
        None => default_memory,
    };
    if memory_bytes < 1 << 20 {
        return Err(ApiError::invalid(
            "resources.memory",
            "must be at least 1Mi",
        ));
    }
    let gpus = resources.gpus_per_node.unwrap_or(0);
    if gpus > limits::MAX_GPUS_PER_TASK {
        return Err(ApiError::invalid(
            "resources.gpus_per_node",
            format!(
                "{gpus} is more than the limit of {}",
                limits::MAX_GPUS_PER_TASK
            ),
        ));
    }
    Ok(Resources {
        cpus_milli,
        memory_bytes,
        gpus,
    })
}

fn check_text(field: &str, text: &str) -> Result<(), ApiError> {
    if text.contains('\0') {
        return Err(ApiError::invalid(field, "contains a NUL byte"));
    }
    if text.len() > limits::MAX_ARG_BYTES {
        return Err(ApiError::invalid(
            field,
            format!(
                "is {} bytes; the limit is {}",
                text.len(),
                limits::MAX_ARG_BYTES
            ),
        ));
    }
    Ok(())
}

fn is_env_name(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.len() <= 256
}

/// A job name from its program: `/usr/bin/python3.11` → `python3-11`.
fn name_from_program(program: &str) -> String {
    let base = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program);
    let mapped: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(lutece_core::MAX_NAME_LEN)
        .collect();
    let trimmed = mapped.trim_matches('-');
    if trimmed.is_empty() {
        "job".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Whether `program` names an executable file, directly or through `PATH`.
fn program_exists(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &Path| {
        path.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        return executable(Path::new(program));
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| executable(&dir.join(program))))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lutece_api::{Quantity, ResourceRequest};

    fn spec(command: &[&str]) -> JobSpec {
        JobSpec {
            command: command.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn field_of(result: Result<ValidSpec, ApiError>) -> String {
        match result {
            Err(ApiError::Invalid { field, .. }) => field.unwrap_or_default(),
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(_) => "accepted".to_owned(),
        }
    }

    #[test]
    fn defaults() {
        let valid = validate(spec(&["/usr/bin/python3.11", "-c", "1"]), false)
            .ok()
            .unwrap();
        assert_eq!(
            (valid.name.as_str(), valid.project.as_str(), valid.nodes),
            ("python3-11", "default", 1)
        );
        assert_eq!(
            valid.per_task,
            Resources {
                cpus_milli: 1000,
                memory_bytes: 512 << 20,
                gpus: 0
            }
        );
    }

    #[test]
    fn each_refusal_names_its_field() {
        assert_eq!(field_of(validate(spec(&[]), false)), "command");
        assert_eq!(
            field_of(validate(spec(&["definitely-not-a-program-xyz"]), true)),
            "command[0]"
        );
        assert_eq!(
            field_of(validate(spec(&["sh", "a\0b"]), false)),
            "command[1]"
        );
        let mut bad = spec(&["sh"]);
        bad.resources = ResourceRequest {
            memory: Some(Quantity("lots".into())),
            ..Default::default()
        };
        assert_eq!(field_of(validate(bad, false)), "resources.memory");
        let mut bad = spec(&["sh"]);
        bad.resources = ResourceRequest {
            cpus: Some(Quantity("-1".into())),
            ..Default::default()
        };
        assert_eq!(field_of(validate(bad, false)), "resources.cpus");
        let mut bad = spec(&["sh"]);
        bad.env.insert("RANK".into(), "3".into());
        assert_eq!(field_of(validate(bad, false)), "env.RANK");
        let mut bad = spec(&["sh"]);
        bad.nodes = Some(0);
        assert_eq!(field_of(validate(bad, false)), "nodes");
        let mut bad = spec(&["sh"]);
        bad.name = Some("x".repeat(200));
        assert_eq!(field_of(validate(bad, false)), "name");
        assert_eq!(field_of(validate(spec(&["sh"]), true)), "accepted");
    }
}
