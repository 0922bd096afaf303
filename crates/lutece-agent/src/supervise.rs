//! Carries out the agent's actions: starts each task under a shim, adopts tasks found after a
//! restart, stops them, ships their output, and reports how they ended, retrying each report
//! until the control plane has it.

use crate::reconcile::Action;
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
            shipped = self.ship(&task, &dir, shipped).await;
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
        loop {
            let before = shipped;
            shipped = self.ship(&task, &dir, shipped).await;
            if shipped == before {
                break;
            }
        }
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

    /// Sends the output written since `shipped`; returns the new shipped size.
    async fn ship(&self, task: &TaskRef, dir: &TaskDir, shipped: u64) -> u64 {
        let data = match read_from(&dir.output_path(), shipped).await {
            Ok(data) if !data.is_empty() => data,
            _ => return shipped,
        };
        let chunk = LogChunk {
            node_id: self.node_id.clone(),
            task: task.clone(),
            offset: shipped,
            data,
        };
        match self.control.append_log(chunk).await {
            Ok(ack) => ack.size.max(shipped),
            // The control plane holds less than we thought: send from the start, it skips overlaps.
            Err(ControlError::Rejected { status: 409, .. }) => 0,
            Err(error) => {
                tracing::warn!(%error, job_id = %task.job_id, "failed to ship output; will retry");
                shipped
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
