//! The task supervisor. The agent starts one `lutece shim TASK_DIR` per task, as the leader of
//! a new process group; the shim starts the task's command in that group with its output in
//! `output.log`, waits for it, and writes `status.json`. Because the shim outlives the agent, a
//! task keeps running and its outcome is kept while the agent (or the whole `lutece up`) is
//! restarted; the new agent adopts it.

use crate::task_dir::{ShimStatus, TaskDir, TaskSpec};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{SigSet, Signal};
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The variables of the supervisor's own environment a task keeps. Everything else is withheld:
/// the environment descends from the server's, which may hold `LUTECE_ADMIN_KEY` and other
/// secrets. The task gets these, then its job's `env` and the variables lutece sets (`RANK`…).
pub(crate) const KEPT_ENV: [&str; 7] = ["PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "USER"];

/// How long the shim waits for the agent to record its pid before it gives up on the task.
const RECORD_WAIT: Duration = Duration::from_secs(30);

/// The variables of `from` that a task (or a shim) inherits: only those in [`KEPT_ENV`].
pub(crate) fn kept_env(
    from: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    from.into_iter()
        .filter(|(name, _)| KEPT_ENV.iter().any(|kept| name == kept))
        .collect()
}

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
    wait_until_recorded(dir)?;
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
    // `lutece` is this very binary (model replicas run `lutece worker`), wherever it is.
    let resolved = match program.as_str() {
        "lutece" => {
            std::env::current_exe().map_err(|e| format!("cannot find lutece itself: {e}"))?
        }
        _ => std::path::PathBuf::from(program),
    };
    let mut child = Command::new(&resolved)
        .args(args)
        .env_clear()
        .envs(kept_env(std::env::vars_os()))
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

/// Waits until the agent has written this shim's pid to `shim.pid`. Until then the task is not
/// started: an agent that dies between starting the shim and recording it must not leave a
/// task running that its successor cannot find.
fn wait_until_recorded(dir: &TaskDir) -> Result<(), String> {
    let own = std::process::id();
    let deadline = Instant::now() + RECORD_WAIT;
    loop {
        if dir.shim_pid() == Some(own) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err("the agent did not record this task's supervisor; not started".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_keeps_only_the_allowed_variables() {
        let pairs = [
            ("PATH", "/usr/bin"),
            ("HOME", "/home/a"),
            ("LUTECE_ADMIN_KEY", "lut_secret"),
            ("LUTECE_API_KEY", "lut_other"),
            ("LUTECE_TEST_SECRET", "s"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("USER", "a"),
            ("PATHX", "no"),
        ];
        let kept = kept_env(
            pairs
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        );
        let names: Vec<&str> = kept.iter().filter_map(|(k, _)| k.to_str()).collect();
        assert_eq!(names, ["PATH", "HOME", "USER"]);
    }
}
