//! The audit log through the platform: what happened is recorded (failed authentications, an
//! operator's reads and deletes of a tenant's data in the tenant's own trail), and any change
//! to an export, or to the database behind the server's back, is found and its line named.

use crate::platform::{Platform, scratch, stderr, stdout};
use crate::sovereignty::{canary_file, key_for, upload_as};
use lutece_api::Role;
use lutece_client::Method;

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_records_what_happened_and_finds_any_tampering() {
    let mut platform = Platform::start("audit", &[]);
    let admin = platform.admin();
    admin.create_tenant("corp").await.unwrap();
    let corp_key = key_for(&admin, "corp", Role::Admin).await;
    let work = scratch("audit-files");
    let file = canary_file(&work, "secret.txt", "AUDITED", 1_000);
    let id = upload_as(&platform, &corp_key, file.to_str().unwrap(), "batch");
    // The operator reads the tenant's file and looks at its job; someone tries a wrong key.
    let (status, _) = admin
        .raw(Method::GET, &format!("/v1/files/{id}/content"), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let job = platform
        .client(&corp_key)
        .submit_job(&lutece_api::JobSpec {
            command: vec!["true".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    admin.job(&job.id).await.unwrap();
    for path in ["/api/v1/jobs", "/v1/chat/completions"] {
        let (status, _) = platform
            .client("lut_not-a-key-at-all-000000")
            .raw(Method::POST, path, Some("{}".into()))
            .await
            .unwrap();
        assert_eq!(status, 401, "{path}");
    }
    // The operator removes a second file of the tenant's.
    let second = upload_as(&platform, &corp_key, file.to_str().unwrap(), "batch");
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
        text.lines()
            .any(|l| l.contains("operator.read") && l.contains(&job.id)),
        "{text}"
    );
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
        assert!(changed.rows_affected() >= 1);
    }
    platform.restart();
    let verified = platform.cli(&["audit", "verify"]);
    assert_eq!(verified.status.code(), Some(1), "{}", stderr(&verified));
    assert!(stderr(&verified).contains("line "), "{}", stderr(&verified));
    let _ = std::fs::remove_dir_all(&work);
}
