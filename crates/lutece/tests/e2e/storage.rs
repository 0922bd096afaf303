//! Where tenant data is stored: an upload that is bad or breaks off leaves nothing; a restart
//! sweeps only what a cut upload left; a storage location never holds the data directory; and
//! an S3-compatible store, by configuration, holds the objects encrypted.

use crate::platform::{Platform, eventually, json, scratch, stderr};
use crate::sovereignty::{canary_file, files_under, upload_as};
use lutece_client::Method;
use std::time::Duration;

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
    let id = upload_as(
        &platform,
        &platform.admin_key,
        file.to_str().unwrap(),
        "batch",
    );
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
    // An object of another installation's tenant, in a store they share.
    let theirs = store.join("ten_0123456789abcdef/files/file-0000000000000000000000ff");
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    std::fs::write(&theirs, b"another installation's").unwrap();
    platform.restart();
    assert!(!orphan.exists(), "the orphan object is swept");
    assert!(foreign.exists(), "what is not lutece's is left alone");
    assert!(
        theirs.exists(),
        "another installation's tenants' objects are left alone"
    );
    let (status, _) = platform
        .admin()
        .raw(Method::GET, &format!("/v1/files/{id}/content"), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread")]
async fn files_go_to_an_s3_compatible_store_by_configuration() {
    use crate::moto::{BUCKET, Moto};
    let Some(moto) = Moto::start() else {
        return;
    };
    let storage = format!(
        "paris=s3://{BUCKET}/tenants?endpoint={}&region=eu-west-3@FR",
        moto.endpoint()
    );
    let credentials = [
        ("AWS_ACCESS_KEY_ID", "lutece-e2e"),
        ("AWS_SECRET_ACCESS_KEY", "e2e-secret"),
    ];
    let mut platform = Platform::start_with_env("s3", &["--storage", &storage], &credentials);
    let work = scratch("s3-files");
    let file = canary_file(&work, "corpus.jsonl", "S3-CANARY-e2e", 2 * 1024 * 1024 + 5);
    let id = upload_as(
        &platform,
        &platform.admin_key,
        file.to_str().unwrap(),
        "fine-tune",
    );
    // The object is in the bucket, under the location's prefix, and holds no plaintext.
    let listing =
        String::from_utf8(moto.get(&format!("/{BUCKET}?list-type=2&prefix=tenants/"))).unwrap();
    let key = listing
        .split("<Key>")
        .filter_map(|k| k.split("</Key>").next())
        .find(|k| k.ends_with(&id))
        .unwrap_or_else(|| panic!("{id} is not in the bucket: {listing}"))
        .to_owned();
    let stored = moto.get(&format!("/{BUCKET}/{key}"));
    assert!(stored.len() > 2 * 1024 * 1024, "{} bytes", stored.len());
    assert!(!stored.windows(13).any(|w| w == b"S3-CANARY-e2e"));
    // Back whole, and still there after a restart (whose sweep lists the bucket).
    platform.stop();
    platform.restart();
    let back = work.join("back.jsonl");
    let download = platform.cli(&["files", "download", &id, "--output", back.to_str().unwrap()]);
    assert!(download.status.success(), "{}", stderr(&download));
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&file).unwrap());
    let locations = json(&platform.cli(&["storage", "locations", "-o", "json"]));
    assert_eq!(locations[0]["name"], "paris", "{locations}");
    assert_eq!(locations[0]["jurisdiction"], "FR", "{locations}");
    let _ = std::fs::remove_dir_all(&work);
}
