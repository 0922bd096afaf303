//! A tenant's control over its data: where it may be (residency, storage locations), the
//! keys that encrypt it (rotate, bring your own, destroy), and its deletion with a signed
//! certificate that anyone holding the audit key can check.

use crate::cli::args::{
    ClientArgs, KeyAction, OutputFormat, ResidencyCommand, ServerArgs, StorageCommand,
};
use crate::cli::audit::audit_key;
use crate::cli::client_cmds::client;
use crate::cli::output;
use crate::cli::save::Staged;
use anyhow::{Context, Result, bail};
use lutece_api::{NewEncryptionKey, Residency, TenantDeletion};
use std::path::{Path, PathBuf};

pub(crate) async fn storage(command: StorageCommand) -> Result<i32> {
    match command {
        StorageCommand::Locations(args) => {
            let locations = client(&args.server)?.storage_locations().await?;
            output::print(args.output, &locations, output::storage_locations)?;
        }
    }
    Ok(0)
}

pub(crate) async fn residency_report(command: ResidencyCommand) -> Result<i32> {
    match command {
        ResidencyCommand::Report {
            tenant,
            client: args,
        } => {
            let report = client(&args.server)?.residency_report(&tenant).await?;
            match args.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                OutputFormat::Table => {
                    println!("{}: {}", report.tenant, allowed_places(&report.allowed));
                    println!("{}", output::data_placements(&report.data));
                    println!("{}", output::workload_placements(&report.workloads));
                    let outside = report.data.iter().filter(|d| !d.allowed).count()
                        + report.workloads.iter().filter(|w| !w.allowed).count();
                    if outside > 0 {
                        eprintln!("{outside} placements are outside the residency policy");
                    }
                }
            }
        }
    }
    Ok(0)
}

/// `lutece tenants residency NAME [--allow CODES | --anywhere]`.
pub(crate) async fn residency(
    name: &str,
    allow: Option<Vec<String>>,
    anywhere: bool,
    args: &ClientArgs,
) -> Result<i32> {
    let client = client(&args.server)?;
    let residency = match (allow, anywhere) {
        (Some(mut allowed), _) => {
            let mut seen = std::collections::BTreeSet::new();
            allowed.retain(|code| seen.insert(code.clone()));
            client.set_residency(name, &Residency { allowed }).await?
        }
        (None, true) => client.set_residency(name, &Residency::default()).await?,
        (None, false) => client.residency(name).await?,
    };
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&residency)?),
        OutputFormat::Table => println!("{name}: {}", allowed_places(&residency.allowed)),
    }
    Ok(0)
}

fn allowed_places(allowed: &[String]) -> String {
    if allowed.is_empty() {
        "data and work may be anywhere".to_owned()
    } else {
        format!("data and work may only be in {}", allowed.join(", "))
    }
}

/// `lutece tenants encryption-keys NAME [--rotate | --bring-your-own FILE | --destroy ID --yes]`;
/// `--destroy` without `--yes` is a usage error (exit 2).
pub(crate) async fn encryption_keys(
    name: &str,
    action: KeyAction,
    yes: bool,
    args: &ClientArgs,
) -> Result<i32> {
    if let (Some(id), false) = (&action.destroy, yes) {
        eprintln!(
            "error: destroying key {id} of tenant {name} leaves every object it sealed unreadable, \
             for good. If that is what you want, run it again with --yes."
        );
        return Ok(2);
    }
    let client = client(&args.server)?;
    let keys = match action {
        KeyAction { rotate: true, .. } => vec![
            client
                .new_encryption_key(name, &NewEncryptionKey::default())
                .await?,
        ],
        KeyAction {
            bring_your_own: Some(path),
            ..
        } => {
            let key = read_customer_key(&path).await?;
            vec![
                client
                    .new_encryption_key(name, &NewEncryptionKey { key: Some(key) })
                    .await?,
            ]
        }
        KeyAction {
            destroy: Some(id), ..
        } => vec![client.destroy_encryption_key(name, &id).await?],
        KeyAction { .. } => client.encryption_keys(name).await?,
    };
    output::print(args.output, &keys, output::encryption_keys)?;
    Ok(0)
}

/// A customer key from `path`: 64 hex digits, surrounding whitespace ignored. Errors never
/// quote the file's content, which is key material.
async fn read_customer_key(path: &Path) -> Result<String> {
    let text = tokio::fs::read_to_string(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    customer_key(&text).with_context(|| format!("{} holds no usable key", path.display()))
}

fn customer_key(text: &str) -> Result<String> {
    let key = text.trim();
    if key.len() != 64 {
        bail!(
            "a key is 64 hex digits (256 bits), and it holds {} characters",
            key.chars().count()
        );
    }
    if !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("a key is 64 hex digits (0-9, a-f), and it holds other characters");
    }
    Ok(key.to_ascii_lowercase())
}

/// `lutece tenants delete NAME --yes`; without `--yes`, a usage error (exit 2).
pub(crate) async fn delete(name: &str, yes: bool, args: &ClientArgs) -> Result<i32> {
    if !yes {
        eprintln!(
            "error: deleting tenant {name} destroys every one of its encryption keys: none of \
             its data can ever be read again, and this cannot be undone. To delete it, run \
             `lutece tenants delete {name} --yes`."
        );
        return Ok(2);
    }
    let deletion = client(&args.server)?.delete_tenant(name).await?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&deletion)?),
        OutputFormat::Table => print_deletion(&deletion),
    }
    Ok(0)
}

/// What a deletion destroyed, as the deletion and its certificate both say it.
fn print_destroyed(keys: &[String], objects: u64) {
    println!("keys destroyed ({}): {}", keys.len(), keys.join(", "));
    println!("{objects} objects can no longer be decrypted");
}

fn print_deletion(deletion: &TenantDeletion) {
    println!(
        "tenant {} deleted at {}",
        deletion.tenant, deletion.deleted_at
    );
    print_destroyed(&deletion.keys_destroyed, deletion.objects);
    println!(
        "certificate: `lutece tenants deletion-certificate {} --output FILE` (GET \
         /api/v1/tenants/{}/deletion-certificate) fetches and verifies it",
        deletion.tenant, deletion.tenant
    );
}

/// `lutece tenants deletion-certificate NAME`: exits 1 when the certificate does not verify,
/// and only writes `output` when it does.
pub(crate) async fn deletion_certificate(
    name: &str,
    output: Option<PathBuf>,
    public_key: Option<&str>,
    server: &ServerArgs,
) -> Result<i32> {
    let deletion = client(server)?.deletion_certificate(name).await?;
    let key = audit_key(server, public_key).await?;
    let certified = match lutece_vault::certificate::verify(&deletion.certificate, &key) {
        Ok(certified) => certified,
        Err(error) => {
            eprintln!("deletion certificate of {name} does NOT verify: {error}");
            return Ok(1);
        }
    };
    if certified.tenant != name {
        eprintln!(
            "the certificate is signed, but it certifies the deletion of tenant {}, not {name}",
            certified.tenant
        );
        return Ok(1);
    }
    println!(
        "certificate verified with audit key {}",
        hex::encode(key.to_bytes())
    );
    println!(
        "tenant {} deleted at {}",
        certified.tenant,
        output::unix_ms(certified.at_ms)
    );
    print_destroyed(&certified.keys, certified.objects);
    println!(
        "recorded by audit entry {} (line SHA-256 {})",
        certified.audit_seq, certified.audit_hash
    );
    if let Some(path) = output {
        let mut staged = Staged::create(&path, true).await?;
        staged
            .write(deletion.certificate.trim_end().as_bytes())
            .await?;
        staged.write(b"\n").await?;
        staged.commit().await?;
        println!("certificate written to {}", path.display());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_key_is_64_hex_digits_and_errors_never_show_it() {
        let key = "0123456789ABCDEFabcdef0123456789".repeat(2);
        assert_eq!(
            customer_key(&format!("  {key}\n")).unwrap(),
            key.to_ascii_lowercase()
        );
        let short = &key[..63];
        let mut wrong = key.clone();
        wrong.replace_range(10..11, "g");
        for bad in [
            short,
            &wrong,
            "",
            &format!("{key}00"),
            &format!("{key} {key}"),
        ] {
            let error = customer_key(bad).unwrap_err().to_string();
            assert!(error.contains("64 hex digits"), "{error}");
            assert!(!error.contains(&key[..16]), "{error} shows key material");
        }
    }

    #[test]
    fn places_read_as_a_sentence() {
        assert_eq!(allowed_places(&[]), "data and work may be anywhere");
        assert_eq!(
            allowed_places(&["FR".into(), "DE".into()]),
            "data and work may only be in FR, DE"
        );
    }
}
