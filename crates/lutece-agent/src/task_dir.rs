//! The agent's record of one task on disk: `<state>/tasks/<job>.<rank>/` holding `spec.json`
//! (what to run), `shim.pid`, `output.log` and, once it ended, `status.json`.

use lutece_api::TaskRef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskSpec {
    pub(crate) command: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
}

/// How the task ended, as the shim saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ShimStatus {
    pub(crate) exit_code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) cpu_seconds_used: f64,
    /// The command could not be started.
    pub(crate) error: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct TaskDir {
    path: PathBuf,
}

impl TaskDir {
    pub(crate) fn at(path: PathBuf) -> TaskDir {
        TaskDir { path }
    }

    /// `<tasks>/<job>.<rank>`; job ids come from the server and are checked to be plain.
    pub(crate) fn for_task(tasks_dir: &Path, task: &TaskRef) -> io::Result<TaskDir> {
        if task.job_id.is_empty()
            || !task
                .job_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unexpected job id {:?}", task.job_id),
            ));
        }
        Ok(TaskDir {
            path: tasks_dir.join(format!("{}.{}", task.job_id, task.rank)),
        })
    }

    /// The task a directory name stands for, if it is one.
    pub(crate) fn parse_name(name: &str) -> Option<TaskRef> {
        let (job_id, rank) = name.rsplit_once('.')?;
        Some(TaskRef {
            job_id: job_id.to_owned(),
            rank: rank.parse().ok()?,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the directory (readable by its owner only) with the spec. Fails if it exists:
    /// a task is started once.
    pub(crate) fn create(&self, spec: &TaskSpec) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new().mode(0o700).create(&self.path)?;
        write_atomically(&self.path.join("spec.json"), &serde_json::to_vec(spec)?)
    }

    pub(crate) fn read_spec(&self) -> io::Result<TaskSpec> {
        Ok(serde_json::from_slice(&fs::read(
            self.path.join("spec.json"),
        )?)?)
    }

    /// Records the shim's pid; the agent does it as soon as the shim is spawned, and the shim
    /// waits for it before starting the task.
    pub(crate) fn write_shim_pid(&self, pid: u32) -> io::Result<()> {
        write_atomically(&self.path.join("shim.pid"), pid.to_string().as_bytes())
    }

    pub(crate) fn shim_pid(&self) -> Option<u32> {
        fs::read_to_string(self.path.join("shim.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub(crate) fn open_output(&self) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.output_path())
    }

    pub(crate) fn output_path(&self) -> PathBuf {
        self.path.join("output.log")
    }

    pub(crate) fn write_status(&self, status: &ShimStatus) -> io::Result<()> {
        write_atomically(&self.path.join("status.json"), &serde_json::to_vec(status)?)
    }

    /// The recorded outcome; None while the task runs (or if the shim died without one).
    pub(crate) fn status(&self) -> Option<ShimStatus> {
        serde_json::from_slice(&fs::read(self.path.join("status.json")).ok()?).ok()
    }
}

/// Writes `data` to a temporary file and renames it over `path`, so readers see all or nothing.
fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, data)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_refuse_paths() {
        let task = TaskRef {
            job_id: "job_ab12".into(),
            rank: 3,
        };
        let dir = TaskDir::for_task(Path::new("/t"), &task).unwrap();
        assert_eq!(dir.path(), Path::new("/t/job_ab12.3"));
        assert_eq!(TaskDir::parse_name("job_ab12.3"), Some(task));
        assert!(
            TaskDir::for_task(
                Path::new("/t"),
                &TaskRef {
                    job_id: "../etc".into(),
                    rank: 0
                }
            )
            .is_err()
        );
        assert_eq!(TaskDir::parse_name("junk"), None);
    }

    #[test]
    fn a_task_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let tasks = std::env::temp_dir().join(format!("lutece-taskdir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tasks);
        fs::create_dir_all(&tasks).unwrap();
        let task = TaskRef {
            job_id: "job_1".into(),
            rank: 0,
        };
        let dir = TaskDir::for_task(&tasks, &task).unwrap();
        let spec = TaskSpec {
            command: vec!["true".into()],
            env: BTreeMap::new(),
        };
        dir.create(&spec).unwrap();
        let mode = fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(dir.create(&spec).is_err(), "a task is created once");
        let _ = fs::remove_dir_all(&tasks);
    }
}
