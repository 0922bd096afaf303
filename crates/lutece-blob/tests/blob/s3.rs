//! The same checks on buckets of a real S3 API: moto's server, one per test on a free port of
//! 127.0.0.1. scripts/test installs moto; `LUTECE_SKIP_S3=1` skips these tests.

use super::moto::{BUCKET, Moto};
use super::{data, pieces, pieces_or, policy};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use lutece_blob::{BATCH, BlobError, Blobs, Durability, Locations, PART_SIZE};
use lutece_vault::Key;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::time::Duration;

const ACCESS_KEY: &str = "lutece-test";
const SECRET_KEY: &str = "s3cr3t-never-shown";

/// Two locations in one bucket: `fr` under `tenants/`, its endpoint and region given by its URL;
/// `us-east` under `us/`, configured by the environment alone.
struct Fixture {
    moto: Moto,
    blobs: Blobs,
    /// The bucket itself, prefixes and all, through plain object_store.
    bucket: AmazonS3,
    key: Key,
}

fn fixture() -> Option<Fixture> {
    let moto = Moto::start()?;
    let endpoint = moto.endpoint();
    let spec = format!(
        "fr=s3://{BUCKET}/tenants/?endpoint={endpoint}&region=eu-west-3@FR,\
         us-east=s3://{BUCKET}/us@US"
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("LUTECE_NOT_AWS", "ignored"),
    ];
    let blobs = Blobs::with_env(
        Locations::parse(&spec).unwrap(),
        Durability::Synced,
        env.map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .unwrap();
    let bucket = AmazonS3Builder::new()
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_bucket_name(BUCKET)
        .with_access_key_id(ACCESS_KEY)
        .with_secret_access_key(SECRET_KEY)
        .build()
        .unwrap();
    Some(Fixture {
        moto,
        blobs,
        bucket,
        key: Key::generate().unwrap(),
    })
}

impl Fixture {
    async fn put(&self, path: &str, content: &[u8], piece: usize) -> lutece_blob::Stored {
        self.blobs
            .put(
                "fr",
                path,
                &policy(&["EU"]),
                "tenant:acme:1",
                &self.key,
                pieces(content, piece),
            )
            .await
            .unwrap()
    }

    async fn read(&self, path: &str) -> Result<Vec<u8>, BlobError> {
        let key = self.key.clone();
        let mut plaintext = self
            .blobs
            .open("fr", path, move |_| Ok::<_, Infallible>(key))
            .await?;
        let mut out = Vec::new();
        while let Some(piece) = plaintext.next().await {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }

    /// Every key in the bucket, sorted.
    async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .bucket
            .list(None)
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_objects_round_trip() {
    let Some(f) = fixture() else { return };
    let cases: [(usize, usize); 5] = [
        (0, 1000),
        (1, 1000),
        // Several chunks, in pieces that straddle them.
        (200_000, 7000),
        (BATCH + 1, 65_536),
        // Five parts, the last a small one.
        (4 * PART_SIZE + 17, 3 * BATCH + 5),
    ];
    for (i, (size, piece)) in cases.into_iter().enumerate() {
        let content = data(size, i as u8);
        let path = format!("acme/file-{i}");
        let stored = f.put(&path, &content, piece).await;
        assert_eq!(stored.plaintext_bytes, size as u64);
        assert_eq!(stored.sha256, hex::encode(Sha256::digest(&content)));
        let in_bucket = f
            .bucket
            .head(&Path::from(format!("tenants/{path}")))
            .await
            .unwrap();
        assert_eq!(stored.stored_bytes, in_bucket.size, "{size}");
        assert_eq!(f.read(&path).await.unwrap(), content, "{size}");
    }
    let mut listed = f.blobs.list("fr", "acme").await.unwrap();
    listed.sort_by(|a, b| a.path.cmp(&b.path));
    let paths: Vec<&str> = listed.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(
        paths,
        (0..5).map(|i| format!("acme/file-{i}")).collect::<Vec<_>>()
    );
    // The prefix holds them; nothing else is in the bucket.
    let keys = f.keys().await;
    assert!(
        keys.iter().all(|k| k.starts_with("tenants/acme/")),
        "{keys:?}"
    );
    assert_eq!(keys.len(), 5);
    assert!(f.blobs.list("fr", "acm").await.unwrap().is_empty());
    assert!(f.blobs.list("us-east", "").await.unwrap().is_empty());
    assert_eq!(f.moto.pending_uploads(), 0);
}

#[tokio::test]
async fn s3_a_stream_that_fails_leaves_nothing() {
    let Some(f) = fixture() else { return };
    // Past two parts, so that parts were uploaded before the failure.
    let good = data(2 * PART_SIZE + 100, 1);
    let failing = pieces_or(&good, BATCH).chain(stream::iter([Err("client went away")]));
    let refused = f
        .blobs
        .put("fr", "acme/broken", &policy(&[]), "k", &f.key, failing)
        .await
        .unwrap_err();
    assert!(matches!(refused, BlobError::Input(ref m) if m == "client went away"));
    // Aborted: no object, and no upload left holding parts.
    assert_eq!(f.keys().await, Vec::<String>::new());
    assert_eq!(f.moto.pending_uploads(), 0);
    assert!(matches!(
        f.read("acme/broken").await,
        Err(BlobError::NotFound { .. })
    ));
    // An earlier object at the same path stays whole.
    let before = data(1000, 2);
    f.put("acme/kept", &before, 100).await;
    let failing = pieces_or(&good, BATCH).chain(stream::iter([Err("no")]));
    let put = f
        .blobs
        .put("fr", "acme/kept", &policy(&[]), "k", &f.key, failing)
        .await;
    assert!(put.is_err());
    assert_eq!(f.read("acme/kept").await.unwrap(), before);
    assert_eq!(f.keys().await, ["tenants/acme/kept"]);

    // A put dropped midway (its request went away) cannot abort: its upload stays pending,
    // never listed, until the bucket's lifecycle rule reclaims it.
    let stalled = pieces(&good, BATCH).chain(stream::pending());
    let anywhere = policy(&[]);
    let put = f
        .blobs
        .put("fr", "acme/stalled", &anywhere, "k", &f.key, stalled);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), put)
            .await
            .is_err()
    );
    assert_eq!(f.keys().await, ["tenants/acme/kept"]);
    assert_eq!(f.blobs.list("fr", "").await.unwrap().len(), 1);
    assert_eq!(f.moto.pending_uploads(), 1);
    assert_eq!(f.blobs.sweep_staging(Duration::ZERO).await.unwrap(), 0);
}

#[tokio::test]
async fn s3_any_change_to_a_stored_object_is_caught() {
    let Some(f) = fixture() else { return };
    let content = data(200_000, 5);
    f.put("acme/doc", &content, 7000).await;
    let object = Path::from("tenants/acme/doc");
    let original = f.bucket.get(&object).await.unwrap().bytes().await.unwrap();
    let len = original.len();
    let mut tampered = Vec::new();
    for at in [0, 20, 200, 65_000, 140_000, len - 17, len - 1] {
        let mut bent = original.to_vec();
        bent[at] ^= 0x20;
        tampered.push((format!("byte {at} changed"), bent));
    }
    for cut in [3, len - 16, len - 1] {
        tampered.push((format!("cut at {cut}"), original[..cut].to_vec()));
    }
    let mut longer = original.to_vec();
    longer.extend_from_slice(&[0; 16]);
    tampered.push(("bytes appended".to_owned(), longer));
    for (what, bytes) in tampered {
        f.bucket.put(&object, bytes.into()).await.unwrap();
        assert!(f.read("acme/doc").await.is_err(), "{what}");
    }
    f.bucket.put(&object, original.into()).await.unwrap();
    assert_eq!(f.read("acme/doc").await.unwrap(), content);
}

#[tokio::test]
async fn s3_residency_is_checked_before_anything_is_read_or_written() {
    let Some(f) = fixture() else { return };
    let never_read = stream::poll_fn(|_| -> std::task::Poll<Option<Result<Bytes, Infallible>>> {
        panic!("the data must not be read")
    });
    let refused = f
        .blobs
        .put(
            "us-east",
            "acme/x",
            &policy(&["fr"]),
            "k",
            &f.key,
            never_read,
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "location us-east is in US; tenant data may be stored only in FR"
    );
    assert_eq!(f.keys().await, Vec::<String>::new());
    assert_eq!(f.moto.pending_uploads(), 0);
    // Anywhere allows it, under the location's own prefix.
    f.blobs
        .put(
            "us-east",
            "acme/x",
            &policy(&[]),
            "k",
            &f.key,
            pieces(b"x", 1),
        )
        .await
        .unwrap();
    assert_eq!(f.keys().await, ["us/acme/x"]);
}

#[tokio::test]
async fn s3_delete_and_list() {
    let Some(f) = fixture() else { return };
    f.put("acme/a", b"one", 1).await;
    f.put("acme/b/c", b"two", 1).await;
    f.put("other/d", b"three", 1).await;
    let mut listed: Vec<String> = f
        .blobs
        .list("fr", "acme")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.path)
        .collect();
    listed.sort();
    assert_eq!(listed, ["acme/a", "acme/b/c"]);
    f.blobs.delete("fr", "acme/a").await.unwrap();
    f.blobs.delete("fr", "acme/a").await.unwrap();
    assert_eq!(f.blobs.list("fr", "acme").await.unwrap().len(), 1);
    let missing = f.read("acme/a").await.unwrap_err();
    assert_eq!(missing.to_string(), "no object `acme/a` in location fr");
    assert_eq!(f.keys().await, ["tenants/acme/b/c", "tenants/other/d"]);
}

#[tokio::test]
async fn s3_errors_name_the_location_and_never_the_credentials() {
    let Some(f) = fixture() else { return };
    let spec = format!(
        "gone=s3://no-such-bucket/p?endpoint={}@FR",
        f.moto.endpoint()
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ];
    let blobs = Blobs::with_env(
        Locations::parse(&spec).unwrap(),
        Durability::Cached,
        env.map(|(k, v)| (k.to_owned(), v.to_owned())),
    )
    .unwrap();
    assert!(!format!("{blobs:?}").contains(SECRET_KEY));
    let put = blobs
        .put("gone", "a", &policy(&[]), "k", &f.key, pieces(b"x", 1))
        .await
        .unwrap_err();
    let listed = blobs.list("gone", "").await.unwrap_err();
    for error in [put, listed] {
        let message = error.to_string();
        assert!(message.starts_with("storage location gone: "), "{message}");
        assert!(!message.contains(SECRET_KEY), "{message}");
    }
}
