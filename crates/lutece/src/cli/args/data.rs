//! The commands and flags of tenant data: files, storage locations, residency, the audit log,
//! and a tenant's encryption keys.

use super::{ClientArgs, ServerArgs};
use clap::Subcommand;
use std::path::PathBuf;

/// What to do with a tenant's encryption keys; none: list them.
#[derive(Debug, clap::Args)]
#[group(multiple = false)]
pub(crate) struct KeyAction {
    /// Make a new managed key that seals new data; older keys are retired (still open old data).
    #[arg(long)]
    pub(crate) rotate: bool,
    /// Bring your own key: a file holding 64 hex digits (256 bits); it seals new data.
    #[arg(long, value_name = "FILE")]
    pub(crate) bring_your_own: Option<PathBuf>,
    /// Destroy a key: every object it sealed becomes unreadable, irreversibly.
    #[arg(long, value_name = "KEY_ID")]
    pub(crate) destroy: Option<String>,
}

/// A jurisdiction as residency policies name them: an ISO country code, or EU.
pub(super) fn parse_jurisdiction(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("EU") {
        return Ok("EU".to_owned());
    }
    lutece_core::residency::Jurisdiction::parse(text)
        .map(|j| j.as_str().to_owned())
        .map_err(|e| format!("{e}; or EU"))
}

#[derive(Debug, Subcommand)]
pub(crate) enum FilesCommand {
    /// Upload a file (streamed from disk): `lutece files upload data.jsonl --purpose fine-tune`.
    Upload {
        path: PathBuf,
        /// What the file is for (fine-tune, batch, assistants, …): its data class.
        #[arg(long)]
        purpose: String,
        /// The storage location to keep it in [default: the server's choice within the
        /// tenant's residency policy]; see `lutece storage locations`.
        #[arg(long)]
        location: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List files.
    List {
        /// Only files for this purpose.
        #[arg(long)]
        purpose: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one file.
    Get {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Download a file's content, checking its SHA-256.
    Download {
        id: String,
        /// Where to write it: a file, or a directory to put it in under its name [default: its
        /// name, in the current directory].
        #[arg(long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Overwrite the file if it exists.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Delete a file.
    Rm {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StorageCommand {
    /// List storage locations with their jurisdictions.
    Locations(ClientArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ResidencyCommand {
    /// Where each class of a tenant's data and each of its workloads is, and whether its
    /// residency policy allows it there.
    Report {
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Save the audit trail the caller may read: its tenant's, or for an operator the whole
    /// log (or one tenant's trail with --tenant), sealed with a signed checkpoint.
    Export {
        /// The file to write (replaced, once the whole export has arrived, if it exists).
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
        /// One tenant's trail (operator).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Verify an export: every line unchanged, in order, chained, and sealed by a checkpoint
    /// signed with the audit key. Exits 1 if it is not intact.
    Verify {
        /// The export to check [default: fetch one from the server now].
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// The audit log's Ed25519 public key, 64 hex digits [default: fetched from the
        /// server]. Give it, obtained beforehand, for a check that trusts nothing the server
        /// says now.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print the audit log's public key, to keep for `verify --public-key` and
    /// `tenants deletion-certificate --public-key`.
    PublicKey(ClientArgs),
}
