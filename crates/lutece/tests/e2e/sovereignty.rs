//! Sovereign data, tried as a tenant and an operator would, through the CLI and the API:
//! files are stored encrypted (no byte of their plaintext anywhere under the data directory),
//! a tenant's key can be its own and revoked, a deleted tenant's keys are destroyed with a
//! certificate that verifies, and no tenant reaches another's data through any of these
//! endpoints. (The audit log's own checks are in `audit.rs`, storage's in `storage.rs`,
//! residency's in `residency.rs`.)

use crate::platform::{Platform, json, scratch, stderr, stdout};
use lutece_api::{CreateKey, Role};
use lutece_client::{Client, Method};
use std::path::{Path, PathBuf};

pub(crate) async fn key_for(admin: &Client, tenant: &str, role: Role) -> String {
    let request = CreateKey {
        tenant: Some(tenant.into()),
        name: None,
        role: Some(role),
    };
    admin.create_key(&request).await.unwrap().key
}

/// A file of `size` bytes in which `marker` appears again and again.
pub(crate) fn canary_file(dir: &Path, name: &str, marker: &str, size: usize) -> PathBuf {
    let mut content = Vec::with_capacity(size);
    let mut i = 0u64;
    while content.len() < size {
        content.extend_from_slice(format!("{marker} line {i}\n").as_bytes());
        i += 1;
    }
    content.truncate(size);
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Every file under `dir`, recursively.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// The files under `dir` that hold `needle`.
pub(crate) fn holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|path| {
            std::fs::read(path)
                .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
        .collect()
}

/// Uploads `path` with `lutece files upload` as `key`; the new file's id.
pub(crate) fn upload_as(platform: &Platform, key: &str, path: &str, purpose: &str) -> String {
    let output = platform.cli_as(key, &["files", "upload", path, "--purpose", purpose]);
    assert!(
        output.status.success(),
        "upload failed: {}",
        stderr(&output)
    );
    let text = stdout(&output);
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| w.starts_with("file-"))
        .unwrap_or_else(|| panic!("no file id in {text:?}"))
        .to_owned()
}

/// The tenant keys as the database holds them (sealed), read as anyone with the file could.
async fn sealed_keys(data_dir: &Path, tenant: &str) -> Vec<Vec<u8>> {
    use sqlx::Connection;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data_dir.join("lutece.db"))
        .read_only(true);
    let mut db = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query_scalar(
        "SELECT k.wrapped FROM encryption_keys k JOIN tenants t ON t.id = k.tenant_id \
         WHERE t.name = ? AND k.wrapped IS NOT NULL",
    )
    .bind(tenant)
    .fetch_all(&mut db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn files_are_stored_encrypted_and_shredded_with_their_tenant() {
    let platform = Platform::start("canary", &[]);
    let admin = platform.admin();
    admin.create_tenant("acme").await.unwrap();
    let acme_key = key_for(&admin, "acme", Role::Admin).await;
    let work = scratch("canary-files");
    let marker = "CANARY-4f1c9e-acme-secret";
    // Several chunks, and a file of one line.
    let big = canary_file(&work, "train.jsonl", marker, 3 * 1024 * 1024 + 17);
    let small = canary_file(&work, "note.txt", marker, 40);
    let mut ids = Vec::new();
    for (path, purpose) in [(&big, "fine-tune"), (&small, "batch")] {
        ids.push(upload_as(
            &platform,
            &acme_key,
            path.to_str().unwrap(),
            purpose,
        ));
    }
    // Downloads give back exactly what was uploaded.
    let back = work.join("back.jsonl");
    let download = platform.cli_as(
        &acme_key,
        &[
            "files",
            "download",
            &ids[0],
            "--output",
            back.to_str().unwrap(),
        ],
    );
    assert!(download.status.success(), "{}", stderr(&download));
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&big).unwrap());
    let listed = json(&platform.cli_as(&acme_key, &["files", "list", "-o", "json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");

    // Not one byte of plaintext under the data directory: database, its journal, objects.
    assert_eq!(
        holding(&platform.data_dir, marker.as_bytes()),
        Vec::<PathBuf>::new(),
        "the canary is stored in plaintext"
    );
    let objects = files_under(&platform.data_dir.join("blobs"));
    assert_eq!(objects.len(), 2, "{objects:?}");

    // The tenant is deleted: its keys are destroyed, and the certificate says so.
    let sealed = sealed_keys(&platform.data_dir, "acme").await;
    assert_eq!(sealed.len(), 1);
    let refused = platform.cli(&["tenants", "delete", "acme"]);
    assert!(!refused.status.success(), "deleting needs --yes");
    let deleted = platform.cli(&["tenants", "delete", "acme", "--yes"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    let certificate = work.join("acme.certificate");
    let shown = platform.cli(&[
        "tenants",
        "deletion-certificate",
        "acme",
        "--output",
        certificate.to_str().unwrap(),
    ]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(stdout(&shown).contains("2 objects"), "{}", stdout(&shown));
    // An edited certificate does not verify.
    let text = std::fs::read_to_string(&certificate).unwrap();
    let key = admin
        .raw(Method::GET, "/api/v1/audit/public-key", None)
        .await
        .unwrap()
        .1;
    let key: serde_json::Value = serde_json::from_str(&key).unwrap();
    let key = key["public_key"].as_str().unwrap().to_owned();
    let verifying =
        ed25519_dalek::VerifyingKey::from_bytes(&hex::decode(&key).unwrap().try_into().unwrap())
            .unwrap();
    let deletion = lutece_vault::certificate::verify(&text, &verifying).unwrap();
    assert_eq!((deletion.tenant.as_str(), deletion.objects), ("acme", 2));
    let forged = text.replace("\"objects\":2", "\"objects\":0");
    assert!(lutece_vault::certificate::verify(&forged, &verifying).is_err());

    // The sealed keys are nowhere any more: not in the database, its journal, or elsewhere.
    for sealed in &sealed {
        assert_eq!(holding(&platform.data_dir, sealed), Vec::<PathBuf>::new());
    }
    assert_eq!(
        files_under(&platform.data_dir.join("blobs")),
        Vec::<PathBuf>::new()
    );
    // The tenant's keys open nothing.
    let (status, _) = platform
        .client(&acme_key)
        .raw(Method::GET, &format!("/v1/files/{}/content", ids[0]), None)
        .await
        .unwrap();
    assert_eq!(status, 401);
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_a_tenant_brings_is_its_own_to_revoke() {
    let platform = Platform::start("byok", &[]);
    let admin = platform.admin();
    admin.create_tenant("bank").await.unwrap();
    let bank_key = key_for(&admin, "bank", Role::Admin).await;
    let work = scratch("byok-files");
    let material = work.join("bank.key");
    std::fs::write(&material, format!("{}\n", "5a".repeat(32))).unwrap();
    let brought = platform.cli_as(
        &bank_key,
        &[
            "tenants",
            "encryption-keys",
            "bank",
            "--bring-your-own",
            material.to_str().unwrap(),
        ],
    );
    assert!(brought.status.success(), "{}", stderr(&brought));
    assert!(
        !stdout(&brought).contains(&"5a".repeat(32)),
        "key material is never shown"
    );
    let file = canary_file(&work, "ledger.csv", "BYOK-CANARY", 100_000);
    let id = upload_as(&platform, &bank_key, file.to_str().unwrap(), "assistants");
    let keys = json(&platform.cli_as(
        &bank_key,
        &["tenants", "encryption-keys", "bank", "-o", "json"],
    ));
    let customer = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "customer")
        .unwrap_or_else(|| panic!("{keys}"));
    assert_eq!(
        (customer["state"].as_str(), customer["objects"].as_u64()),
        (Some("active"), Some(1))
    );
    let key_id = customer["id"].as_str().unwrap().to_owned();

    let unconfirmed = platform.cli_as(
        &bank_key,
        &["tenants", "encryption-keys", "bank", "--destroy", &key_id],
    );
    assert_eq!(
        unconfirmed.status.code(),
        Some(2),
        "{}",
        stderr(&unconfirmed)
    );
    let revoked = platform.cli_as(
        &bank_key,
        &[
            "tenants",
            "encryption-keys",
            "bank",
            "--destroy",
            &key_id,
            "--yes",
        ],
    );
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    // Its data can no longer be read, by the tenant or by the operator.
    for client in [platform.client(&bank_key), admin.clone()] {
        let (status, body) = client
            .raw(Method::GET, &format!("/v1/files/{id}/content"), None)
            .await
            .unwrap();
        assert_eq!(status, 410, "{body}");
        assert!(body.contains("destroyed"), "{body}");
    }
    let out = work.join("again.csv");
    let download = platform.cli_as(
        &bank_key,
        &["files", "download", &id, "--output", out.to_str().unwrap()],
    );
    assert!(!download.status.success());
    assert!(!out.exists(), "a failed download leaves no file");
    // New data waits for a key the tenant chooses, then gets it.
    let refused = platform.cli_as(
        &bank_key,
        &[
            "files",
            "upload",
            file.to_str().unwrap(),
            "--purpose",
            "assistants",
        ],
    );
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("revoked"), "{}", stderr(&refused));
    let keys = json(&platform.cli_as(
        &bank_key,
        &["tenants", "encryption-keys", "bank", "-o", "json"],
    ));
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k["state"] != "active"),
        "no key seals new data now: {keys}"
    );
    let rotated = platform.cli_as(
        &bank_key,
        &["tenants", "encryption-keys", "bank", "--rotate"],
    );
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let id = upload_as(&platform, &bank_key, file.to_str().unwrap(), "assistants");
    let (status, _) = platform
        .client(&bank_key)
        .raw(Method::GET, &format!("/v1/files/{id}/content"), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_tenant_reaches_another_tenants_data() {
    let platform = Platform::start("data-tenancy", &[]);
    let admin = platform.admin();
    admin.create_tenant("alpha").await.unwrap();
    admin.create_tenant("beta").await.unwrap();
    let alpha_key = key_for(&admin, "alpha", Role::Admin).await;
    let beta = platform.client(&key_for(&admin, "beta", Role::Admin).await);
    let work = scratch("data-tenancy-files");
    let file = canary_file(&work, "alpha.txt", "ALPHA-ONLY", 2_000);
    let id = upload_as(&platform, &alpha_key, file.to_str().unwrap(), "batch");
    let keys: serde_json::Value = serde_json::from_str(
        &platform
            .client(&alpha_key)
            .raw(Method::GET, "/api/v1/tenants/alpha/encryption-keys", None)
            .await
            .unwrap()
            .1,
    )
    .unwrap();
    let key_id = keys[0]["id"].as_str().unwrap().to_owned();

    let probes: Vec<(Method, String, Option<String>)> = vec![
        (Method::GET, format!("/v1/files/{id}"), None),
        (Method::GET, format!("/v1/files/{id}/content"), None),
        (Method::DELETE, format!("/v1/files/{id}"), None),
        (
            Method::GET,
            "/api/v1/tenants/alpha/encryption-keys".into(),
            None,
        ),
        (
            Method::POST,
            "/api/v1/tenants/alpha/encryption-keys".into(),
            Some("{}".into()),
        ),
        (
            Method::DELETE,
            format!("/api/v1/tenants/alpha/encryption-keys/{key_id}"),
            None,
        ),
        (Method::GET, "/api/v1/tenants/alpha/residency".into(), None),
        (
            Method::PUT,
            "/api/v1/tenants/alpha/residency".into(),
            Some(r#"{"allowed":["US"]}"#.into()),
        ),
        (
            Method::GET,
            "/api/v1/tenants/alpha/residency/report".into(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/audit/export?tenant=alpha".into(),
            None,
        ),
        (Method::DELETE, "/api/v1/tenants/alpha".into(), None),
        (
            Method::GET,
            "/api/v1/tenants/alpha/deletion-certificate".into(),
            None,
        ),
    ];
    for (method, path, body) in probes {
        let (status, text) = beta.raw(method.clone(), &path, body).await.unwrap();
        assert!(
            status == 404 || status == 403,
            "{method} {path} answered beta with {status}: {text}"
        );
        assert!(!text.contains("ALPHA-ONLY"), "{method} {path}: {text}");
    }
    let (_, listed) = beta.raw(Method::GET, "/v1/files", None).await.unwrap();
    assert!(!listed.contains(&id), "{listed}");
    // Beta's own trail holds its attempts, and none of alpha's entries.
    let (_, trail) = beta
        .raw(Method::GET, "/api/v1/audit/export", None)
        .await
        .unwrap();
    assert!(
        trail.contains("403 denied") || trail.contains("404 refused"),
        "{trail}"
    );
    assert!(!trail.contains("key.use"), "{trail}");
    // Alpha's file is whole after all that.
    let (status, content) = platform
        .client(&alpha_key)
        .raw(Method::GET, &format!("/v1/files/{id}/content"), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(content.as_bytes(), std::fs::read(&file).unwrap());
    let _ = std::fs::remove_dir_all(&work);
}
