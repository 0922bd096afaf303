//! `lutece audit …`: export the audit trail the caller may read, verify an export (offline
//! when given the public key) with the same verifier the platform's tests use, and print the
//! public key to keep for that.

use crate::cli::args::{AuditCommand, OutputFormat, ServerArgs};
use crate::cli::client_cmds::client;
use crate::cli::output;
use crate::cli::save::Staged;
use anyhow::{Context, Result, anyhow, bail};
use ed25519_dalek::VerifyingKey;
use futures_util::StreamExt;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub(crate) async fn run(command: AuditCommand) -> Result<i32> {
    match command {
        AuditCommand::Export {
            output,
            tenant,
            server,
        } => {
            export(&server, &output, tenant.as_deref()).await?;
            Ok(0)
        }
        AuditCommand::Verify {
            file,
            public_key,
            server,
        } => verify(&server, file, public_key.as_deref()).await,
        AuditCommand::PublicKey(args) => {
            let key = client(&args.server)?.audit_public_key().await?;
            match args.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&key)?),
                OutputFormat::Table => println!("{}", key.public_key),
            }
            Ok(0)
        }
    }
}

/// Replaces `dest` with the export, once it has wholly arrived.
async fn export(server: &ServerArgs, dest: &Path, tenant: Option<&str>) -> Result<()> {
    let mut staged = Staged::create(dest, true).await?;
    let mut export = client(server)?.audit_export(tenant).await?;
    let (mut bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = export.next().await {
        let chunk = chunk
            .with_context(|| format!("the export broke off; {} was not written", dest.display()))?;
        staged.write(&chunk).await?;
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    staged.commit().await?;
    println!(
        "wrote {lines} lines ({}) to {}; check it with `lutece audit verify --file {}`",
        output::bytes(bytes),
        dest.display(),
        dest.display()
    );
    Ok(())
}

/// Exits 0 when the export is intact, 1 (with the first bad line on stderr) when it is not.
async fn verify(
    server: &ServerArgs,
    file: Option<PathBuf>,
    public_key: Option<&str>,
) -> Result<i32> {
    let export = match &file {
        Some(path) => tokio::fs::read(path)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => {
            let mut stream = client(server)?.audit_export(None).await?;
            let mut export = Vec::new();
            while let Some(chunk) = stream.next().await {
                export.extend_from_slice(&chunk?);
            }
            export
        }
    };
    let key = audit_key(server, public_key).await?;
    let tenant = export_tenant(&export);
    match lutece_vault::audit::verify(&export, &key, tenant.as_deref()) {
        Ok(verified) => {
            let scope = match &tenant {
                Some(tenant) => format!("the trail of tenant {tenant}"),
                None => "the whole log".to_owned(),
            };
            println!(
                "intact: {} entries, {} checkpoints ({scope})",
                verified.entries, verified.checkpoints
            );
            Ok(0)
        }
        Err(error) => {
            eprintln!("audit log NOT intact: {error}");
            Ok(1)
        }
    }
}

/// The audit log's public key: `given` (hex), else the one the server publishes.
pub(crate) async fn audit_key(server: &ServerArgs, given: Option<&str>) -> Result<VerifyingKey> {
    if let Some(given) = given {
        return parse_public_key(given).context("--public-key");
    }
    let published = client(server)?.audit_public_key().await?;
    if published.algorithm != "ed25519" {
        bail!(
            "the server's audit key is {}, which this lutece cannot check (ed25519 expected)",
            published.algorithm
        );
    }
    parse_public_key(&published.public_key).context("the server's audit key")
}

/// An Ed25519 public key written as 64 hex digits.
fn parse_public_key(text: &str) -> Result<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .with_context(|| format!("{text:?} is not an Ed25519 public key (64 hex digits)"))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| anyhow!("{text:?} is not a valid Ed25519 public key"))
}

/// Whose trail an export is: the tenant its newest checkpoint names (the sealing one, last, in
/// a sound export), or None for the whole log. From the newest checkpoint rather than only the
/// last line, so that an export cut after an earlier checkpoint is still checked as the trail
/// it is and reported as cut off, rather than as a broken chain at its first line. With no
/// checkpoint at all, entries that all name one tenant are taken for that tenant's trail.
fn export_tenant(export: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Checkpoint {
        /// Only required, so that an entry line is not taken for a checkpoint.
        #[serde(rename = "checkpoint")]
        _place: u64,
        #[serde(default)]
        tenant: Option<String>,
    }
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        tenant: Option<String>,
    }
    let lines = || {
        export
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
    };
    let newest = lines()
        .rev()
        .filter(|line| line.starts_with(b"{\"checkpoint\""))
        .find_map(|line| serde_json::from_slice::<Checkpoint>(line).ok());
    if let Some(checkpoint) = newest {
        return checkpoint.tenant;
    }
    let mut tenants = lines().map(|line| {
        serde_json::from_slice::<Entry>(line)
            .ok()
            .and_then(|entry| entry.tenant)
    });
    let first = tenants.next()??;
    tenants
        .all(|tenant| tenant.as_ref() == Some(&first))
        .then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use lutece_vault::audit::{Chain, Record};

    fn record(tenant: Option<&str>, action: &str) -> Record {
        Record {
            at_ms: 1_764_000_000_000,
            actor: "operator".into(),
            tenant: tenant.map(str::to_owned),
            action: action.into(),
            object: None,
            source: None,
            result: "ok".into(),
        }
    }

    /// The whole log's export and acme's, each sealed.
    fn exports(key: &SigningKey) -> (String, String) {
        let mut chain = Chain::default();
        let (mut log, mut acme) = (String::new(), String::new());
        for (tenant, action) in [
            (Some("acme"), "POST /v1/files"),
            (None, "auth.failed"),
            (Some("globex"), "GET /v1/files"),
            (Some("acme"), "DELETE /v1/files/file-1"),
        ] {
            let line = chain.append(&record(tenant, action)).unwrap();
            log.push_str(&line);
            log.push('\n');
            if tenant == Some("acme") {
                acme.push_str(&line);
                acme.push('\n');
            }
        }
        log.push_str(&chain.checkpoint(key, None, true).unwrap());
        log.push('\n');
        acme.push_str(&chain.checkpoint(key, Some("acme"), true).unwrap());
        acme.push('\n');
        (log, acme)
    }

    #[test]
    fn an_export_is_checked_as_the_trail_its_checkpoint_names() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let (log, acme) = exports(&key);
        assert_eq!(export_tenant(log.as_bytes()), None);
        assert_eq!(export_tenant(acme.as_bytes()).as_deref(), Some("acme"));
        for export in [&log, &acme] {
            let tenant = export_tenant(export.as_bytes());
            lutece_vault::audit::verify(export.as_bytes(), &key.verifying_key(), tenant.as_deref())
                .unwrap();
        }
        // Cut before the sealing checkpoint: still checked as the trail it is, so the verifier
        // says it was cut off rather than that its first line is out of place.
        let keep = |export: &str, n| -> String {
            export.lines().take(n).map(|l| format!("{l}\n")).collect()
        };
        let cut = keep(&acme, 2);
        assert_eq!(export_tenant(cut.as_bytes()).as_deref(), Some("acme"));
        let error = lutece_vault::audit::verify(cut.as_bytes(), &key.verifying_key(), Some("acme"))
            .unwrap_err();
        assert!(error.problem.contains("cut off"), "{error}");
        assert_eq!(export_tenant(keep(&log, 3).as_bytes()), None);
        assert_eq!(export_tenant(b""), None);
        assert_eq!(export_tenant(b"{\"checkpoint\":\"x\"}\n"), None);
    }

    #[test]
    fn a_public_key_is_64_hex_digits_of_a_curve_point() {
        let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
        let text = hex::encode(key.to_bytes());
        assert_eq!(parse_public_key(&text).unwrap(), key);
        assert_eq!(parse_public_key(&format!(" {text}\n")).unwrap(), key);
        for bad in ["", "zz", &text[..62], &format!("{text}00")] {
            assert!(parse_public_key(bad).is_err(), "{bad:?}");
        }
    }
}
