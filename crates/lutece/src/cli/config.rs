//! Configuration in two stages: the raw file (serde, unknown keys refused), then the settings
//! in force, where a flag beats the environment (clap reads `LUTECE_*`), which beats the file,
//! which beats the built-in default.

use crate::cli::args::{NodeArgs, UpArgs};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:7433";
/// The file, in the data directory, where `lutece up` keeps the admin key it generated.
pub(crate) const ADMIN_KEY_FILE: &str = "admin.key";

/// `lutece.toml`: every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// Address and port to listen on.
    listen: Option<String>,
    /// Data directory.
    data_dir: Option<PathBuf>,
    /// The local node's name.
    node_name: Option<String>,
    /// The local node's rack or NVLink domain.
    rack: Option<String>,
    /// GPUs to declare that do not exist (tests).
    fake_gpus: Option<u32>,
    /// The address model replicas on the local node listen on.
    advertise_address: Option<String>,
    /// Serve no models.
    no_models: Option<bool>,
    /// The jurisdiction (ISO country code) of this site's node and default storage.
    jurisdiction: Option<String>,
    /// The storage locations, `NAME=file:///DIR@COUNTRY,…`.
    storage: Option<String>,
    /// The file holding the root key.
    root_key_file: Option<PathBuf>,
}

/// The settings `up` and `server` run with.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) listen: SocketAddr,
    pub(crate) data_dir: PathBuf,
    pub(crate) node: NodeArgs,
    pub(crate) serve_models: bool,
    /// The site's jurisdiction: of the local node and of the default storage.
    pub(crate) jurisdiction: String,
    pub(crate) storage: Option<String>,
    pub(crate) root_key: Option<lutece_server::RootKey>,
}

/// The jurisdiction of `up` and `server` when none is given.
pub(crate) const DEFAULT_JURISDICTION: &str = "FR";

impl Settings {
    pub(crate) fn resolve(args: UpArgs) -> Result<Settings> {
        let file = match &args.config {
            Some(path) => read_config(path)?,
            None => ConfigFile::default(),
        };
        let listen_text = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().with_context(|| {
            format!("--listen {listen_text:?} is not an address such as 127.0.0.1:7433")
        })?;
        let data_dir = match args.data_dir.or(file.data_dir) {
            Some(dir) => dir,
            None => default_data_dir()?,
        };
        let jurisdiction = args
            .node
            .jurisdiction
            .or(file.jurisdiction)
            .unwrap_or_else(|| DEFAULT_JURISDICTION.to_owned());
        let node = NodeArgs {
            node_name: args.node.node_name.or(file.node_name),
            rack: args.node.rack.or(file.rack),
            fake_gpus: args.node.fake_gpus.or(file.fake_gpus),
            advertise_address: args.node.advertise_address.or(file.advertise_address),
            jurisdiction: Some(jurisdiction.clone()),
        };
        // The root key itself may come from the environment (never a flag: flags are seen
        // by every user of the machine).
        let root_key = match std::env::var("LUTECE_ROOT_KEY") {
            Ok(hex) if !hex.is_empty() => Some(lutece_server::RootKey::Hex(hex)),
            _ => args
                .root_key_file
                .or(file.root_key_file)
                .map(lutece_server::RootKey::File),
        };
        let no_models = args.no_models || file.no_models.unwrap_or(false);
        Ok(Settings {
            listen,
            data_dir,
            node,
            serve_models: !no_models,
            jurisdiction,
            storage: args.storage.or(file.storage),
            root_key,
        })
    }
}

fn read_config(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the config file {}", path.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("failed to parse the config file {}", path.display()))
}

/// `$XDG_DATA_HOME/lutece`, else `~/.local/share/lutece`.
pub(crate) fn default_data_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("lutece"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/lutece")),
        None => bail!("cannot choose a data directory: HOME is not set; pass --data-dir"),
    }
}

/// The key a client uses when none is given: the one `lutece up` saved in its data directory.
pub(crate) fn saved_admin_key() -> Option<String> {
    let dir = std::env::var_os("LUTECE_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| default_data_dir().ok())?;
    let key = std::fs::read_to_string(dir.join(ADMIN_KEY_FILE)).ok()?;
    Some(key.trim().to_owned()).filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<ConfigFile>("listen = \"0.0.0.0:1\"\nfake_gpus = 8").is_ok());
        let error = toml::from_str::<ConfigFile>("lisen = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `lisen`"), "{error}");
    }
}
