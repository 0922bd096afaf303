//! Sovereign data, tried as a tenant and an operator would, through the CLI and the API:
//! files are stored encrypted (no byte of their plaintext anywhere under the data directory),
//! a tenant's key can be its own and revoked, a deleted tenant's keys are destroyed with a
//! certificate that verifies, residency refuses writes and placements outside the policy and
//! records the refusals, the audit log detects tampering in an export and in the database, and
//! no tenant reaches another's data through any of these endpoints.

use crate::platform::{Platform, eventually, json, scratch, stderr, stdout};
use lutece_api::{CreateKey, JobSpec, Role};
use lutece_client::{Client, Method};
use std::path::{Path, PathBuf};
use std::time::Duration;

async fn key_for(admin: &Client, tenant: &str, role: Role) -> String {
    let request = CreateKey {
        tenant: Some(tenant.into()),
        name: None,
        role: Some(role),
    };
    admin.create_key(&request).await.unwrap().key
}

/// A file of `size` bytes in which `marker` appears again and again.
fn canary_file(dir: &Path, name: &str, marker: &str, size: usize) -> PathBuf {
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
fn files_under(dir: &Path) -> Vec<PathBuf> {
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
fn holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|path| {
            std::fs::read(path)
                .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
        .collect()
}

fn uploaded_id(output: &std::process::Output) -> String {
    assert!(output.status.success(), "upload failed: {}", stderr(output));
    let text = stdout(output);
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
        let upload = platform.cli_as(
            &acme_key,
            &[
                "files",
                "upload",
                path.to_str().unwrap(),
                "--purpose",
                purpose,
            ],
        );
        ids.push(uploaded_id(&upload));
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
    let id = uploaded_id(&platform.cli_as(
        &bank_key,
        &[
            "files",
            "upload",
            file.to_str().unwrap(),
            "--purpose",
            "assistants",
        ],
    ));
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
    let rotated = platform.cli_as(
        &bank_key,
        &["tenants", "encryption-keys", "bank", "--rotate"],
    );
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let id = uploaded_id(&platform.cli_as(
        &bank_key,
        &[
            "files",
            "upload",
            file.to_str().unwrap(),
            "--purpose",
            "assistants",
        ],
    ));
    let (status, _) = platform
        .client(&bank_key)
        .raw(Method::GET, &format!("/v1/files/{id}/content"), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test(flavor = "multi_thread")]
async fn residency_refuses_writes_and_placements_outside_the_policy() {
    let base = scratch("residency-stores");
    let storage = format!(
        "paris=file://{}@FR,virginia=file://{}@US",
        base.join("paris").display(),
        base.join("virginia").display()
    );
    // The only node stands in the US.
    let platform = Platform::start(
        "residency",
        &["--storage", &storage, "--jurisdiction", "US"],
    );
    let admin = platform.admin();
    admin.create_tenant("gaul").await.unwrap();
    let gaul_key = key_for(&admin, "gaul", Role::Admin).await;
    let set = platform.cli(&["tenants", "residency", "gaul", "--allow", "FR"]);
    assert!(set.status.success(), "{}", stderr(&set));
    let file = canary_file(&base, "data.txt", "RESIDENT", 5_000);
    let path = file.to_str().unwrap();

    let refused = platform.cli_as(
        &gaul_key,
        &[
            "files",
            "upload",
            path,
            "--purpose",
            "fine-tune",
            "--location",
            "virginia",
        ],
    );
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("US"), "{}", stderr(&refused));
    assert_eq!(files_under(&base.join("virginia")), Vec::<PathBuf>::new());
    let id = uploaded_id(&platform.cli_as(
        &gaul_key,
        &["files", "upload", path, "--purpose", "fine-tune"],
    ));
    let stored = platform
        .client(&gaul_key)
        .raw(Method::GET, &format!("/v1/files/{id}"), None)
        .await
        .unwrap()
        .1;
    assert!(stored.contains("\"jurisdiction\":\"FR\""), "{stored}");

    let gaul = platform.client(&gaul_key);
    let job = gaul
        .submit_job(&JobSpec {
            command: vec!["true".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let reason = eventually("a residency reason", Duration::from_secs(20), || async {
        let job = gaul.job(&job.id).await.ok()?;
        job.reason.filter(|r| r.contains("runs only in"))
    })
    .await;
    assert!(reason.contains("FR"), "{reason}");

    let report = platform.cli(&["residency", "report", "--tenant", "gaul", "-o", "json"]);
    let report = json(&report);
    assert_eq!(report["data"][0]["location"], "paris", "{report}");
    assert_eq!(report["data"][0]["allowed"], true, "{report}");
    assert_eq!(report["workloads"][0]["state"], "queued", "{report}");

    // Both refusals are in the tenant's own audit trail.
    let trail = base.join("gaul.audit");
    let export = platform.cli_as(
        &gaul_key,
        &["audit", "export", "--output", trail.to_str().unwrap()],
    );
    assert!(export.status.success(), "{}", stderr(&export));
    let text = std::fs::read_to_string(&trail).unwrap();
    assert!(text.contains("residency.refused write"), "{text}");
    let placement = eventually(
        "the placement refusal in the log",
        Duration::from_secs(10),
        || async {
            let export = platform.cli_as(
                &gaul_key,
                &["audit", "export", "--output", trail.to_str().unwrap()],
            );
            let text = std::fs::read_to_string(&trail).ok()?;
            (export.status.success() && text.contains("residency.refused placement"))
                .then_some(text)
        },
    )
    .await;
    assert!(placement.contains(&job.id));
    let verified = platform.cli_as(
        &gaul_key,
        &["audit", "verify", "--file", trail.to_str().unwrap()],
    );
    assert!(verified.status.success(), "{}", stderr(&verified));
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_records_what_happened_and_finds_any_tampering() {
    let mut platform = Platform::start("audit", &[]);
    let admin = platform.admin();
    admin.create_tenant("corp").await.unwrap();
    let corp_key = key_for(&admin, "corp", Role::Admin).await;
    let work = scratch("audit-files");
    let file = canary_file(&work, "secret.txt", "AUDITED", 1_000);
    let id = uploaded_id(&platform.cli_as(
        &corp_key,
        &[
            "files",
            "upload",
            file.to_str().unwrap(),
            "--purpose",
            "batch",
        ],
    ));
    // The operator reads the tenant's file; someone tries a wrong key.
    let (status, _) = admin
        .raw(Method::GET, &format!("/v1/files/{id}/content"), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    for path in ["/api/v1/jobs", "/v1/chat/completions"] {
        let (status, _) = platform
            .client("lut_not-a-key-at-all-000000")
            .raw(Method::POST, path, Some("{}".into()))
            .await
            .unwrap();
        assert_eq!(status, 401, "{path}");
    }
    // The operator removes a second file of the tenant's.
    let second = uploaded_id(&platform.cli_as(
        &corp_key,
        &[
            "files",
            "upload",
            file.to_str().unwrap(),
            "--purpose",
            "batch",
        ],
    ));
    let removed = platform.cli(&["files", "rm", &second]);
    assert!(removed.status.success(), "{}", stderr(&removed));

    // The tenant's trail shows the operator's read; the whole log the failed authentication.
    let trail = work.join("corp.audit");
    let export = platform.cli_as(
        &corp_key,
        &["audit", "export", "--output", trail.to_str().unwrap()],
    );
    assert!(export.status.success(), "{}", stderr(&export));
    let text = std::fs::read_to_string(&trail).unwrap();
    assert!(text.contains("operator.read"), "{text}");
    assert!(text.contains("operator.delete"), "{text}");
    assert!(
        text.contains("key.use seal") && text.contains("key.use open"),
        "{text}"
    );
    let all = work.join("all.audit");
    let export = platform.cli(&["audit", "export", "--output", all.to_str().unwrap()]);
    assert!(export.status.success(), "{}", stderr(&export));
    let log = std::fs::read_to_string(&all).unwrap();
    assert!(log.contains("auth.failed POST /api/v1/jobs"), "{log}");
    assert!(
        log.contains("auth.failed POST /v1/chat/completions"),
        "{log}"
    );
    for export in [&trail, &all] {
        let verified = platform.cli(&["audit", "verify", "--file", export.to_str().unwrap()]);
        assert!(verified.status.success(), "{}", stderr(&verified));
        assert!(
            stdout(&verified).contains("intact"),
            "{}",
            stdout(&verified)
        );
    }
    // One byte added to the third line of the export: found, and its line named.
    let mut bytes = std::fs::read(&all).unwrap();
    let third = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .unwrap()
        .0
        + 2;
    bytes.insert(third, b' ');
    let tampered = work.join("tampered.audit");
    std::fs::write(&tampered, &bytes).unwrap();
    let line = 3;
    let verified = platform.cli(&["audit", "verify", "--file", tampered.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(1), "{}", stderr(&verified));
    assert!(
        stderr(&verified).contains(&format!("line {line}")),
        "{}",
        stderr(&verified)
    );

    // An entry changed in the database while the server is down: the next verify finds it.
    platform.stop();
    {
        use sqlx::Connection;
        let options =
            sqlx::sqlite::SqliteConnectOptions::new().filename(platform.data_dir.join("lutece.db"));
        let mut db = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        let changed = sqlx::query("UPDATE audit_log SET line = replace(line, 'operator.read', 'operator.seen') WHERE line LIKE '%operator.read%'")
            .execute(&mut db)
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 1);
    }
    platform.restart();
    let verified = platform.cli(&["audit", "verify"]);
    assert_eq!(verified.status.code(), Some(1), "{}", stderr(&verified));
    assert!(stderr(&verified).contains("line "), "{}", stderr(&verified));
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
    let id = uploaded_id(&platform.cli_as(
        &alpha_key,
        &[
            "files",
            "upload",
            file.to_str().unwrap(),
            "--purpose",
            "batch",
        ],
    ));
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

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_or_broken_upload_leaves_nothing() {
    let platform = Platform::start("upload-input", &[]);
    let url = format!("{}/v1/files", platform.url);
    let http = reqwest::Client::new();
    let post = |form: reqwest::multipart::Form| {
        http.post(&url)
            .bearer_auth(&platform.admin_key)
            .multipart(form)
            .send()
    };
    let part = || reqwest::multipart::Part::bytes(b"LEFT-NOTHING".to_vec()).file_name("x.txt");
    let cases = [
        (
            reqwest::multipart::Form::new().part("file", part()),
            "purpose",
        ),
        (
            reqwest::multipart::Form::new()
                .text("purpose", "Fine Tune!")
                .part("file", part()),
            "purpose",
        ),
        (
            reqwest::multipart::Form::new()
                .text("purpose", "batch")
                .text("location", "atlantis")
                .part("file", part()),
            "location",
        ),
        (
            reqwest::multipart::Form::new().text("purpose", "batch"),
            "file",
        ),
        (
            reqwest::multipart::Form::new()
                .text("purpose", "batch")
                .part("file", part())
                .part("file", part()),
            "file",
        ),
    ];
    for (form, field) in cases {
        let response = post(form).await.unwrap();
        assert_eq!(response.status(), 400);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    let response = http
        .post(&url)
        .bearer_auth(&platform.admin_key)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // An upload whose sender breaks off halfway through its file.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(vec![b'x'; 1 << 20]),
        Ok(vec![b'y'; 1 << 20]),
        Err(std::io::Error::other("the sender went away")),
    ];
    let broken = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let form = reqwest::multipart::Form::new()
        .text("purpose", "batch")
        .part(
            "file",
            reqwest::multipart::Part::stream(broken).file_name("half.bin"),
        );
    assert!(post(form).await.is_err(), "the request itself broke off");

    let admin = platform.admin();
    eventually(
        "every object to be gone",
        Duration::from_secs(10),
        || async {
            files_under(&platform.data_dir.join("blobs"))
                .is_empty()
                .then_some(())
        },
    )
    .await;
    let (_, listed) = admin.raw(Method::GET, "/v1/files", None).await.unwrap();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["data"], serde_json::json!([]), "{listed}");
}

#[test]
fn a_storage_location_never_holds_the_data_directory() {
    let base = scratch("storage-holds-data");
    let data = base.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let storage = format!("here=file://{}@FR", base.display());
    let mut child = std::process::Command::new(crate::platform::BIN)
        .args([
            "up",
            "--no-models",
            "--listen",
            "127.0.0.1:0",
            "--storage",
            &storage,
        ])
        .arg("--data-dir")
        .arg(&data)
        .env_remove("LUTECE_ADMIN_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("lutece up started with its data directory inside a storage location");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("holds the data directory"),
        "{}",
        stderr(&output)
    );
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_sweeps_only_what_a_cut_upload_left() {
    let base = scratch("sweep-stores");
    let store = base.join("store");
    let storage = format!("local=file://{}@FR", store.display());
    let mut platform = Platform::start("sweep", &["--storage", &storage]);
    let admin = platform.admin();
    admin.create_tenant("keep").await.unwrap();
    let file = canary_file(&base, "kept.txt", "KEPT", 10_000);
    let id = uploaded_id(&platform.cli(&[
        "files",
        "upload",
        file.to_str().unwrap(),
        "--purpose",
        "batch",
    ]));
    platform.stop();
    // An object no file names, where a file's would be; and a file of someone else's.
    let tenant_dir = std::fs::read_dir(&store)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let orphan = tenant_dir
        .join("files")
        .join("file-00000000000000000000abcd");
    std::fs::write(&orphan, b"left by a cut upload").unwrap();
    let foreign = store.join("notes.txt");
    std::fs::write(&foreign, b"not lutece's").unwrap();
    platform.restart();
    assert!(!orphan.exists(), "the orphan object is swept");
    assert!(foreign.exists(), "what is not lutece's is left alone");
    let (status, _) = platform
        .admin()
        .raw(Method::GET, &format!("/v1/files/{id}/content"), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let _ = std::fs::remove_dir_all(&base);
}
