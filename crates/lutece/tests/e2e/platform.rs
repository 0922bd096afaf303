//! A running `lutece up` in a fresh data directory, stopped (SIGKILL) when dropped.

use lutece_client::Client;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_lutece");

pub(crate) struct Platform {
    child: Option<Child>,
    pub(crate) url: String,
    pub(crate) admin_key: String,
    pub(crate) data_dir: PathBuf,
    extra: Vec<String>,
    env: Vec<(String, String)>,
}

/// A fresh, empty directory for one test.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lutece-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

impl Platform {
    /// `lutece up` on a new data directory, with a generated admin key.
    pub(crate) fn start(name: &str, extra: &[&str]) -> Platform {
        Self::start_with_env(name, extra, &[])
    }

    /// The same, with more environment variables for `lutece up`.
    pub(crate) fn start_with_env(name: &str, extra: &[&str], env: &[(&str, &str)]) -> Platform {
        let data_dir = scratch(name).join("data");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (child, url, key) = spawn_up(&data_dir, &extra, &env, None);
        let admin_key = key.expect("a first start prints the admin key");
        Platform {
            child: Some(child),
            url,
            admin_key,
            data_dir,
            extra,
            env,
        }
    }

    /// Starts `lutece up` again on the same data directory (after a stop or a kill).
    pub(crate) fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill it first");
        let (child, url, key) = spawn_up(&self.data_dir, &self.extra, &self.env, Some(&self.url));
        assert!(key.is_none(), "a restart must not make a new admin key");
        self.child = Some(child);
        self.url = url;
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }

    pub(crate) fn admin(&self) -> Client {
        Client::new(&self.url, Some(self.admin_key.clone())).expect("client")
    }

    pub(crate) fn client(&self, key: &str) -> Client {
        Client::new(&self.url, Some(key.to_owned())).expect("client")
    }

    /// Runs `lutece ARGS` as a client of this platform with `key`.
    pub(crate) fn cli_as(&self, key: &str, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("LUTECE_URL", &self.url)
            .env("LUTECE_API_KEY", key)
            .env("LUTECE_DATA_DIR", &self.data_dir)
            .output()
            .expect("run lutece")
    }

    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        self.cli_as(&self.admin_key, args)
    }

    /// The platform's own log, for failure messages.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_file_name("up.log")).unwrap_or_default()
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.kill9();
        // Tasks outlive the platform by design (they are adopted at the next start); a test
        // leaves none behind: model replicas would serve forever.
        kill_tasks(&self.data_dir.join("agent"));
    }
}

/// Kills the process group of every task an agent with this state directory started.
pub(crate) fn kill_tasks(agent_dir: &Path) {
    let Ok(tasks) = std::fs::read_dir(agent_dir.join("tasks")) else {
        return;
    };
    for task in tasks.filter_map(Result::ok) {
        let pid = std::fs::read_to_string(task.path().join("shim.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        if let Some(pid) = pid.filter(|p| *p > 1) {
            let group = nix::unistd::Pid::from_raw(-pid);
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Starts `lutece up`, waits for it to print its address, and returns it with the admin key if
/// it printed one. Reuses `previous_url`'s port on a restart.
fn spawn_up(
    data_dir: &Path,
    extra: &[String],
    env: &[(String, String)],
    previous_url: Option<&str>,
) -> (Child, String, Option<String>) {
    let listen = previous_url
        .map(|u| u.trim_start_matches("http://").to_owned())
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.with_file_name("up.log"))
        .expect("open log");
    let mut child = Command::new(BIN)
        .arg("up")
        .args(["--listen", &listen, "--data-dir"])
        .arg(data_dir)
        .args(extra.iter().filter(|a| *a != "--models"))
        .env_remove("LUTECE_ADMIN_KEY")
        // Only the inference tests serve models (they pass --models).
        .env(
            "LUTECE_NO_MODELS",
            if extra.iter().any(|a| a == "--models") {
                "false"
            } else {
                "true"
            },
        )
        .env("LUTECE_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start lutece up");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut url, mut key, mut expect_key) = (None, None, false);
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        if expect_key {
            key = Some(line.trim().to_owned());
            expect_key = false;
        } else if let Some(rest) = line.trim().strip_prefix("API:") {
            url = rest
                .split_whitespace()
                .next()
                .map(|u| u.trim_end_matches("/api/v1").to_owned());
        } else if line.contains("admin key") {
            expect_key = true;
        } else if line.starts_with("Try:") {
            break;
        }
    }
    (
        child,
        url.expect("lutece up printed its address in time"),
        key,
    )
}

/// Polls `check` every 50 ms until it returns Some, or panics after `timeout`.
pub(crate) async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until job `id` reaches a terminal state and returns it.
pub(crate) async fn finished(client: &Client, id: &str) -> lutece_api::Job {
    eventually(
        &format!("job {id} to end"),
        Duration::from_secs(60),
        || async {
            let job = client.job(id).await.ok()?;
            matches!(job.state.as_str(), "succeeded" | "failed" | "cancelled").then_some(job)
        },
    )
    .await
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Parses the JSON a `--output json` command printed.
pub(crate) fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "command failed: {}",
        stderr(output)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(output)))
}
