//! Carries out the agent's actions: starts each task under a shim, adopts tasks found after a
//! restart, stops them, ships their output, and reports how they ended, retrying each report
//! until the control plane has it.

use crate::reconcile::Action;
use crate::shim::kept_env;
use crate::task_dir::{ShimStatus, TaskDir, TaskSpec};
use lutece_api::{Assignment, ControlApi, ControlError, LogChunk, TaskEvent, TaskRef, TaskReport};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::oneshot;

/// How long a stopped task has between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often output is shipped and an adopted process is checked.
const TICK: Duration = Duration::from_millis(200);
const LOG_CHUNK: u64 = 1 << 20;

pub(crate) struct Supervisor<C> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    control: Arc<C>,
    node_id: String,
    tasks_dir: PathBuf,
    shim_program: PathBuf,
    local: Mutex<HashMap<TaskRef, Local>>,
}

/// A task this agent supervises now.
struct Local {
    stop: Option<oneshot::Sender<()>>,
    stopping: bool,
}

impl<C: ControlApi> Supervisor<C> {
    pub(crate) fn new(
        control: Arc<C>,
        node_id: String,
        tasks_dir: PathBuf,
        shim_program: PathBuf,
    ) -> Supervisor<C> {
        let local = Mutex::new(HashMap::new());
        Supervisor {
            inner: Arc::new(Inner {
                control,
                node_id,
                tasks_dir,
                shim_program,
                local,
            }),
        }
    }

    /// The tasks supervised now, and those of them being stopped.
    pub(crate) fn snapshot(&self) -> (BTreeSet<TaskRef>, BTreeSet<TaskRef>) {
        let local = self.inner.lock();
        let running = local.keys().cloned().collect();
        let stopping = local
            .iter()
            .filter(|(_, l)| l.stopping)
            .map(|(t, _)| t.clone())
            .collect();
        (running, stopping)
    }

    pub(crate) fn execute(&self, action: Action) {
        let inner = self.inner.clone();
        match action {
            Action::Start(assignment) => {
                let stop = inner.track(&assignment.task);
                tokio::spawn(async move { inner.start(assignment, stop).await });
            }
            Action::Adopt(assignment) => {
                let stop = inner.track(&assignment.task);
                tokio::spawn(async move { inner.adopt(assignment, stop).await });
            }
            Action::Lost(task) => {
                let reason =
                    "the node has no trace of this task; its agent lost its state".to_owned();
                tokio::spawn(
                    async move { inner.report(&task, TaskEvent::Failed { reason }).await },
                );
            }
            Action::Skip(task) => {
                let event = TaskEvent::Exited {
                    exit_code: None,
                    signal: None,
                    cpu_seconds_used: 0.0,
                    cancelled: true,
                };
                tokio::spawn(async move { inner.report(&task, event).await });
            }
            Action::Stop(task) => {
                let mut local = inner.lock();
                if let Some(entry) = local.get_mut(&task) {
                    entry.stopping = true;
                    if let Some(stop) = entry.stop.take() {
                        let _ = stop.send(());
                    }
                }
            }
        }
    }
}

impl<C: ControlApi> Inner<C> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TaskRef, Local>> {
        self.local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn track(&self, task: &TaskRef) -> oneshot::Receiver<()> {
        let (stop, stopped) = oneshot::channel();
        self.lock().insert(
            task.clone(),
            Local {
                stop: Some(stop),
                stopping: false,
            },
        );
        stopped
    }

    async fn start(&self, assignment: Assignment, stop: oneshot::Receiver<()>) {
        let task = assignment.task.clone();
        let spec = TaskSpec {
            command: assignment.command,
            env: assignment.env,
        };
        let spawned = TaskDir::for_task(&self.tasks_dir, &task).and_then(|dir| {
            dir.create(&spec)?;
            let shim_log = std::fs::File::create(dir.path().join("shim.log"))?;
            let child = tokio::process::Command::new(&self.shim_program)
                .arg("shim")
                .arg(dir.path())
                .env_clear()
                .envs(kept_env(std::env::vars_os()))
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(shim_log))
                .kill_on_drop(false)
                .spawn()?;
            Ok((dir, child))
        });
        match spawned {
            Ok((dir, child)) => {
                let Some(pid) = child.id() else {
                    return self
                        .finish(
                            &task,
                            TaskEvent::Failed {
                                reason: "the supervisor exited at once".into(),
                            },
                        )
                        .await;
                };
                // Recorded before the shim starts the command (it waits for this file), so a
                // restarted agent always finds the process it must adopt.
                if let Err(error) = dir.write_shim_pid(pid) {
                    let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                    let reason = format!("failed to record the task's supervisor: {error}");
                    return self.finish(&task, TaskEvent::Failed { reason }).await;
                }
                tracing::info!(job_id = %task.job_id, rank = task.rank, pid, "task started");
                self.report(&task, TaskEvent::Started { pid }).await;
                self.watch(task, dir, pid, Some(child), stop).await;
            }
            Err(error) => {
                let reason = format!("failed to start the task's supervisor: {error}");
                self.finish(&task, TaskEvent::Failed { reason }).await;
            }
        }
    }

    /// A task directory from before a restart: watch its shim if it runs, else report what it
    /// recorded.
    async fn adopt(&self, assignment: Assignment, stop: oneshot::Receiver<()>) {
        let task = assignment.task;
        let dir = match TaskDir::for_task(&self.tasks_dir, &task) {
            Ok(dir) => dir,
            Err(error) => {
                return self
                    .finish(
                        &task,
                        TaskEvent::Failed {
                            reason: error.to_string(),
                        },
                    )
                    .await;
            }
        };
        match dir.shim_pid() {
            Some(pid) if pid > 0 => {
                tracing::info!(job_id = %task.job_id, rank = task.rank, pid, "task adopted after a restart");
                self.report(&task, TaskEvent::Started { pid }).await;
                self.watch(task, dir, pid, None, stop).await;
            }
            _ => {
                let event = match dir.status() {
                    Some(status) => outcome(status, false),
                    None => TaskEvent::Failed { reason: "the agent restarted before the task's supervisor began; not started again".into() },
                };
                self.finish(&task, event).await;
            }
        }
    }

    async fn watch(
        &self,
        task: TaskRef,
        dir: TaskDir,
        pid: u32,
        mut child: Option<tokio::process::Child>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut shipped = 0u64;
        let mut stopped_at: Option<tokio::time::Instant> = None;
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stop, if stopped_at.is_none() => {
                    tracing::info!(job_id = %task.job_id, rank = task.rank, "stopping task");
                    let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGTERM);
                    stopped_at = Some(tokio::time::Instant::now());
                }
            }
            shipped = match self.ship(&task, &dir, shipped).await {
                Ok(size) => size,
                Err(error) => {
                    tracing::warn!(%error, job_id = %task.job_id, "failed to ship output; will retry");
                    shipped
                }
            };
            if stopped_at.is_some_and(|at| at.elapsed() >= STOP_GRACE) {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            let ended = match &mut child {
                Some(child) => !matches!(child.try_wait(), Ok(None)),
                None => !shim_alive(pid, &dir),
            };
            if ended {
                break;
            }
        }
        // Everything the task wrote goes to the control plane before its end is reported.
        self.drain(&task, &dir, shipped).await;
        let cancelled = stopped_at.is_some();
        let event = match dir.status() {
            Some(status) => outcome(status, cancelled),
            None if cancelled => TaskEvent::Exited {
                exit_code: None,
                signal: Some(9),
                cpu_seconds_used: 0.0,
                cancelled,
            },
            None => TaskEvent::Failed {
                reason: "the task's supervisor ended without recording an outcome".into(),
            },
        };
        self.finish(&task, event).await;
    }

    /// Sends the output written since `shipped` (one chunk at most); returns the new shipped
    /// size. An error leaves `shipped` where it was.
    async fn ship(&self, task: &TaskRef, dir: &TaskDir, shipped: u64) -> Result<u64, ControlError> {
        let data = match read_from(&dir.output_path(), shipped).await {
            Ok(data) if !data.is_empty() => data,
            _ => return Ok(shipped),
        };
        let chunk = LogChunk {
            node_id: self.node_id.clone(),
            task: task.clone(),
            offset: shipped,
            data,
        };
        match self.control.append_log(chunk).await {
            Ok(ack) => Ok(ack.size.max(shipped)),
            // The control plane holds less than we thought: send from the start, it skips overlaps.
            Err(ControlError::Rejected { status: 409, .. }) => Ok(0),
            Err(error) => Err(error),
        }
    }

    /// Ships the rest of a finished task's output: until the control plane holds all of
    /// `output.log`, retrying with backoff while it is unavailable. Gives up only when it
    /// refuses the output for good. Returns the shipped size.
    async fn drain(&self, task: &TaskRef, dir: &TaskDir, mut shipped: u64) -> u64 {
        let mut delay = Duration::from_millis(100);
        loop {
            let size = match tokio::fs::metadata(dir.output_path()).await {
                Ok(meta) => meta.len(),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
                Err(error) => {
                    tracing::warn!(%error, job_id = %task.job_id, "cannot read the task's output; its tail is not shipped");
                    return shipped;
                }
            };
            if shipped >= size {
                return shipped;
            }
            match self.ship(task, dir, shipped).await {
                Ok(size) => {
                    shipped = size;
                    delay = Duration::from_millis(100);
                }
                Err(ControlError::Unavailable(message)) => {
                    tracing::warn!(%message, job_id = %task.job_id, "failed to ship output; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(refused) => {
                    tracing::warn!(error = %refused, job_id = %task.job_id, "output refused; its tail is not shipped");
                    return shipped;
                }
            }
        }
    }

    async fn finish(&self, task: &TaskRef, event: TaskEvent) {
        self.report(task, event).await;
        self.lock().remove(task);
    }

    /// Reports until the control plane has it, or refuses it.
    async fn report(&self, task: &TaskRef, event: TaskEvent) {
        let report = TaskReport {
            node_id: self.node_id.clone(),
            task: task.clone(),
            event,
        };
        let mut delay = Duration::from_millis(100);
        loop {
            match self.control.report(report.clone()).await {
                Ok(()) => return,
                Err(ControlError::Unavailable(message)) => {
                    tracing::warn!(%message, job_id = %task.job_id, "report failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(refused) => {
                    tracing::warn!(error = %refused, job_id = %task.job_id, "report refused");
                    return;
                }
            }
        }
    }
}

fn outcome(status: ShimStatus, cancelled: bool) -> TaskEvent {
    match status.error {
        Some(reason) => TaskEvent::Failed { reason },
        None => TaskEvent::Exited {
            exit_code: status.exit_code,
            signal: status.signal,
            cpu_seconds_used: status.cpu_seconds_used,
            cancelled,
        },
    }
}

/// Whether `pid` is still the shim of this task (and not a later process that reused the pid).
fn shim_alive(pid: u32, dir: &TaskDir) -> bool {
    if kill(Pid::from_raw(pid as i32), None).is_err() {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let wanted = dir.path().as_os_str().as_encoded_bytes();
    cmdline.windows(wanted.len()).any(|w| w == wanted)
}

async fn read_from(path: &std::path::Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut data = Vec::new();
    file.take(LOG_CHUNK).read_to_end(&mut data).await?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lutece_api::{Heartbeat, HeartbeatReply, LogAck, RegisterNode, Registered};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A control plane whose log endpoint fails `failures` times, then stores like the server
    /// (explicit offsets, overlaps skipped), or refuses every chunk with `refuse`.
    struct FlakyLogs {
        failures: AtomicU32,
        refuse: Option<u16>,
        stored: Mutex<Vec<u8>>,
    }

    fn rejected() -> ControlError {
        ControlError::Rejected {
            status: 400,
            message: "not in this test".into(),
        }
    }

    impl ControlApi for FlakyLogs {
        async fn register(&self, _: RegisterNode) -> Result<Registered, ControlError> {
            Err(rejected())
        }

        async fn heartbeat(&self, _: Heartbeat) -> Result<HeartbeatReply, ControlError> {
            Err(rejected())
        }

        async fn report(&self, _: TaskReport) -> Result<(), ControlError> {
            Err(rejected())
        }

        async fn append_log(&self, chunk: LogChunk) -> Result<LogAck, ControlError> {
            if let Some(status) = self.refuse {
                return Err(ControlError::Rejected {
                    status,
                    message: "no such task on this node".into(),
                });
            }
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(ControlError::Unavailable("connection refused".into()));
            }
            let mut stored = self.stored.lock().unwrap();
            let size = stored.len() as u64;
            if chunk.offset > size {
                return Err(ControlError::Rejected {
                    status: 409,
                    message: "gap".into(),
                });
            }
            let skip = (size - chunk.offset) as usize;
            if skip < chunk.data.len() {
                stored.extend_from_slice(&chunk.data[skip..]);
            }
            Ok(LogAck {
                size: stored.len() as u64,
            })
        }
    }

    fn supervisor(name: &str, control: FlakyLogs) -> (Inner<FlakyLogs>, TaskDir, Vec<u8>) {
        let tasks_dir =
            std::env::temp_dir().join(format!("lutece-agent-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tasks_dir);
        std::fs::create_dir_all(&tasks_dir).unwrap();
        let task = TaskRef {
            job_id: "job_1".into(),
            rank: 0,
        };
        let dir = TaskDir::for_task(&tasks_dir, &task).unwrap();
        dir.create(&TaskSpec {
            command: vec!["true".into()],
            env: Default::default(),
        })
        .unwrap();
        // More than two chunks, so the drain needs several calls.
        let output: Vec<u8> = (0..(2 * LOG_CHUNK + 1234))
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        std::fs::write(dir.output_path(), &output).unwrap();
        let inner = Inner {
            control: Arc::new(control),
            node_id: "node_a".into(),
            tasks_dir,
            shim_program: PathBuf::from("/nonexistent"),
            local: Mutex::new(HashMap::new()),
        };
        (inner, dir, output)
    }

    #[tokio::test]
    async fn the_final_drain_outlasts_transport_errors() {
        let control = FlakyLogs {
            failures: AtomicU32::new(3),
            refuse: None,
            stored: Mutex::new(Vec::new()),
        };
        let (inner, dir, output) = supervisor("drain", control);
        let task = TaskRef {
            job_id: "job_1".into(),
            rank: 0,
        };
        // The control plane is unreachable as the task ends.
        assert!(inner.ship(&task, &dir, 0).await.is_err());
        let shipped = inner.drain(&task, &dir, 0).await;
        assert_eq!(shipped, output.len() as u64);
        assert!(
            *inner.control.stored.lock().unwrap() == output,
            "the whole output reached the control plane"
        );
    }

    #[tokio::test]
    async fn the_final_drain_gives_up_on_a_refusal() {
        let control = FlakyLogs {
            failures: AtomicU32::new(0),
            refuse: Some(404),
            stored: Mutex::new(Vec::new()),
        };
        let (inner, dir, _) = supervisor("refused", control);
        let task = TaskRef {
            job_id: "job_1".into(),
            rank: 0,
        };
        assert_eq!(inner.drain(&task, &dir, 0).await, 0);
    }
}
