//! The task supervisor. The agent starts one `lutece shim TASK_DIR` per task, as the leader of
//! a new process group; the shim starts the task's command in that group with its output in
//! `output.log`, waits for it, and writes `status.json`. Because the shim outlives the agent, a
//! task keeps running and its outcome is kept while the agent (or the whole `lutece up`) is
//! restarted; the new agent adopts it.

use crate::task_dir::{ShimStatus, TaskDir, TaskSpec};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{SigSet, Signal};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs the shim for `task_dir`; returns the shim's own exit code. Call before any thread is
/// started (it blocks termination signals for itself only).
pub fn run_shim(task_dir: &Path) -> i32 {
    let dir = TaskDir::at(task_dir.to_path_buf());
    match supervise(&dir) {
        Ok(status) => match dir.write_status(&status) {
            Ok(()) => 0,
            Err(error) => {
                eprintln!("lutece shim: failed to write the status: {error}");
                1
            }
        },
        Err(message) => {
            let _ = dir.write_status(&ShimStatus {
                error: Some(message),
                ..ShimStatus::default()
            });
            127
        }
    }
}

fn supervise(dir: &TaskDir) -> Result<ShimStatus, String> {
    dir.write_shim_pid(std::process::id())
        .map_err(|e| format!("failed to write the pid file: {e}"))?;
    let spec: TaskSpec = dir
        .read_spec()
        .map_err(|e| format!("failed to read the task spec: {e}"))?;
    let (program, args) = spec.command.split_first().ok_or("the command is empty")?;
    let log = dir
        .open_output()
        .map_err(|e| format!("failed to open the output file: {e}"))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("failed to open the output file: {e}"))?;
    let mut child = Command::new(program)
        .args(args)
        .envs(&spec.env)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("command not found: {program}"),
            std::io::ErrorKind::PermissionDenied => format!("permission denied: {program}"),
            _ => format!("failed to start {program}: {e}"),
        })?;
    // From here on the shim outlives a SIGTERM sent to the group, so it can record how the
    // task ended; the task itself (started before this) still receives it. SIGKILL ends both.
    let mut blocked = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        blocked.add(signal);
    }
    let _ = blocked.thread_block();
    let status = child
        .wait()
        .map_err(|e| format!("failed to wait for the task: {e}"))?;
    let cpu_seconds_used = getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|usage| {
            let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            seconds(usage.user_time()) + seconds(usage.system_time())
        })
        .unwrap_or(0.0);
    Ok(ShimStatus {
        exit_code: status.code(),
        signal: status.signal(),
        cpu_seconds_used,
        error: None,
    })
}
