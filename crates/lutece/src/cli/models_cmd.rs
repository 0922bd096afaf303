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
            let models = client(&args)?.list_models().await?;
            output::print(args.output, &models, output::models)?;
        }
        ModelsCommand::Import {
            source,
            name,
            sha256,
            client: args,
        } => {
            let request = if source.contains("://") || source.starts_with("hf:") {
                eprintln!("importing {source} (downloaded and checked by the control plane) …");
                ImportModel {
                    url: Some(source),
                    name,
                    sha256,
                    ..ImportModel::default()
                }
            } else {
                let path = local_path(PathBuf::from(source))?;
                eprintln!("importing {path} (copied and checked by the control plane) …");
                ImportModel {
                    path: Some(path),
                    name,
                    sha256,
                    ..ImportModel::default()
                }
            };
            let model = client(&args)?.import_model(&request).await?;
            output::print(args.output, &vec![model], output::models)?;
        }
        ModelsCommand::Rm { name, client: args } => {
            client(&args)?.remove_model(&name).await?;
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
