//! Blobs on local directories, and on S3 buckets (`s3`): round trips, failures that must leave
//! nothing behind, tampering, keys and residency.

// A panic in a test, helpers included, is a failing test.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use lutece_blob::{BATCH, BlobError, Blobs, Durability, Locations, PART_SIZE, Stored};
use lutece_core::residency::{Jurisdiction, ResidencyPolicy};
use lutece_vault::Key;
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::Duration;

// One test binary: the S3 checks sit beside this file's, sharing its helpers.
#[path = "blob/moto.rs"]
mod moto;
#[path = "blob/s3.rs"]
mod s3;

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lutece-blob-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two locations, `fr` and `us-east`, in a temporary directory.
struct Fixture {
    dir: TempDir,
    blobs: Blobs,
    key: Key,
}

fn fixture() -> Fixture {
    let dir = TempDir::new();
    let spec = format!(
        "fr=file://{}/fr@FR,us-east=file://{}/us@us",
        dir.0.display(),
        dir.0.display()
    );
    let blobs = Blobs::new(Locations::parse(&spec).unwrap(), Durability::Cached).unwrap();
    Fixture {
        dir,
        blobs,
        key: Key::generate().unwrap(),
    }
}

fn policy(entries: &[&str]) -> ResidencyPolicy {
    ResidencyPolicy::parse(entries).unwrap()
}

/// Deterministic bytes, different at every offset of a long run.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn pieces(data: &[u8], piece: usize) -> impl Stream<Item = Result<Bytes, Infallible>> + Unpin {
    pieces_or(data, piece)
}

fn pieces_or<E>(data: &[u8], piece: usize) -> impl Stream<Item = Result<Bytes, E>> + Unpin {
    let pieces: Vec<_> = data
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(pieces)
}

/// Every file (not directory) under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

impl Fixture {
    async fn put(&self, path: &str, content: &[u8], piece: usize) -> Stored {
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

    async fn read(&self, path: &str, key: &Key) -> Result<Vec<u8>, BlobError> {
        let key = key.clone();
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

    fn file(&self, path: &str) -> PathBuf {
        self.dir.0.join("fr").join(path)
    }
}

#[tokio::test]
async fn objects_round_trip_at_every_size() {
    let f = fixture();
    let chunk = 1 << 16;
    // (size, piece sizes); the large sizes once each, to keep the debug build's test short.
    let cases: [(usize, &[usize]); 10] = [
        (0, &[1000, chunk]),
        (1, &[1000, chunk]),
        (chunk - 1, &[1000, chunk]),
        (chunk, &[1000, chunk]),
        (chunk + 1, &[1000, chunk, 3 * BATCH + 5]),
        (BATCH - 1, &[1000, chunk]),
        (BATCH, &[chunk, 3 * BATCH + 5]),
        (BATCH + 1, &[1000, chunk]),
        (PART_SIZE + 3, &[3 * BATCH + 5]),
        (2 * PART_SIZE + BATCH + 17, &[chunk + 3]),
    ];
    let mut count = 0;
    for (i, (size, piece_sizes)) in cases.into_iter().enumerate() {
        for &piece in piece_sizes {
            let content = data(size, i as u8);
            let path = format!("acme/file-{i}-{piece}");
            let stored = f.put(&path, &content, piece).await;
            assert_eq!(stored.plaintext_bytes, size as u64);
            assert_eq!(stored.sha256, hex::encode(Sha256::digest(&content)));
            let on_disk = std::fs::metadata(f.file(&path)).unwrap().len();
            assert_eq!(stored.stored_bytes, on_disk, "{size}");
            let chunks = (size / chunk + usize::from(size % chunk != 0)).max(1);
            assert!(on_disk >= (size + 16 * chunks) as u64);
            assert_eq!(
                f.read(&path, &f.key).await.unwrap(),
                content,
                "{size} {piece}"
            );
            count += 1;
        }
    }
    let listed = f.blobs.list("fr", "acme").await.unwrap();
    assert_eq!(listed.len(), count);
    assert!(f.blobs.list("fr", "acm").await.unwrap().is_empty());
    assert!(f.blobs.list("us-east", "").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_stream_that_fails_leaves_nothing() {
    let f = fixture();
    // Past two parts, so that parts were written before the failure.
    let good = data(2 * PART_SIZE + 100, 1);
    let failing = pieces_or(&good, BATCH).chain(stream::iter([Err("client went away")]));
    let refused = f
        .blobs
        .put(
            "fr",
            "acme/broken",
            &policy(&[]),
            "tenant:acme:1",
            &f.key,
            failing,
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, BlobError::Input(ref m) if m == "client went away"));
    assert_eq!(
        refused.to_string(),
        "the data being stored stopped with an error: client went away"
    );
    // The abort removes the staging file in a blocking task it awaits: nothing is left now.
    assert_eq!(files_under(&f.dir.0), Vec::<PathBuf>::new());
    assert!(matches!(
        f.read("acme/broken", &f.key).await,
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
    assert_eq!(f.read("acme/kept", &f.key).await.unwrap(), before);
    assert_eq!(files_under(&f.dir.0), [f.file("acme/kept")]);
}

#[tokio::test]
async fn a_put_dropped_midway_leaves_nothing() {
    let f = fixture();
    let first = data(PART_SIZE * 2, 3);
    // The client sends some data, then nothing more: the request is dropped.
    let stalled = pieces(&first, BATCH).chain(stream::pending());
    let anywhere = policy(&[]);
    let put = f
        .blobs
        .put("fr", "acme/stalled", &anywhere, "k", &f.key, stalled);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), put)
            .await
            .is_err()
    );
    // Dropping the upload removes its staging file from a blocking task: wait for it.
    for _ in 0..100 {
        if files_under(&f.dir.0).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(files_under(&f.dir.0), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn killed_uploads_are_swept() {
    let f = fixture();
    let content = data(3000, 4);
    f.put("acme/real", &content, 1000).await;
    // What a process killed mid-upload leaves: its staging files.
    std::fs::write(f.file("acme/real#1"), b"partial").unwrap();
    std::fs::create_dir_all(f.file("other")).unwrap();
    std::fs::write(f.file("other/x#12"), b"partial").unwrap();
    assert_eq!(f.blobs.list("fr", "").await.unwrap().len(), 1);
    assert_eq!(
        f.blobs
            .sweep_staging(Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "too recent"
    );
    assert_eq!(f.blobs.sweep_staging(Duration::ZERO).await.unwrap(), 2);
    assert_eq!(files_under(&f.dir.0), [f.file("acme/real")]);
    assert_eq!(f.read("acme/real", &f.key).await.unwrap(), content);
}

#[tokio::test]
async fn any_change_to_a_stored_object_is_caught() {
    let f = fixture();
    let content = data(200_000, 5);
    f.put("acme/doc", &content, 7000).await;
    let file = f.file("acme/doc");
    let original = std::fs::read(&file).unwrap();
    let len = original.len();
    // Header bytes (magic, chunk size, nonce prefix, key id, wrapped key), chunk bodies, tags.
    let positions = [
        0,
        4,
        6,
        14,
        20,
        90,
        200,
        65_000,
        65_700,
        140_000,
        len - 17,
        len - 1,
    ];
    for at in positions {
        let mut bent = original.clone();
        bent[at] ^= 0x20;
        std::fs::write(&file, &bent).unwrap();
        assert!(
            f.read("acme/doc", &f.key).await.is_err(),
            "byte {at} changed"
        );
    }
    let header = len - 200_000 - 4 * 16;
    let cuts = [0, 3, header, header + 65_536 + 16, len - 1, len - 16];
    for cut in cuts {
        std::fs::write(&file, &original[..cut]).unwrap();
        assert!(f.read("acme/doc", &f.key).await.is_err(), "cut at {cut}");
    }
    let mut longer = original.clone();
    longer.extend_from_slice(&[0; 16]);
    std::fs::write(&file, &longer).unwrap();
    assert!(f.read("acme/doc", &f.key).await.is_err(), "bytes appended");
    std::fs::write(&file, &original).unwrap();
    assert_eq!(f.read("acme/doc", &f.key).await.unwrap(), content);
}

#[tokio::test]
async fn only_the_tenant_key_opens_an_object() {
    let f = fixture();
    f.put("acme/secret", &data(100_000, 6), 4096).await;
    let mut asked = String::new();
    let opened = f
        .blobs
        .open("fr", "acme/secret", |id| {
            asked = id.to_owned();
            Ok::<_, Infallible>(f.key.clone())
        })
        .await;
    assert!(opened.is_ok());
    assert_eq!(asked, "tenant:acme:1");
    let other = Key::generate().unwrap();
    let wrong = f.read("acme/secret", &other).await.unwrap_err();
    assert!(matches!(wrong, BlobError::Crypto(_)), "{wrong}");
    let destroyed = f
        .blobs
        .open("fr", "acme/secret", |_| Err::<Key, _>("key destroyed"))
        .await
        .unwrap_err();
    assert_eq!(
        destroyed.to_string(),
        "the object's key is not available: key destroyed"
    );
    // The ciphertext does not hold the plaintext.
    let stored = std::fs::read(f.file("acme/secret")).unwrap();
    let plain = data(100_000, 6);
    assert!(!stored.windows(32).any(|w| w == &plain[1000..1032]));
}

#[tokio::test]
async fn residency_is_checked_before_anything_is_read_or_written() {
    let f = fixture();
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
    assert!(matches!(
        refused,
        BlobError::Residency { ref location, jurisdiction, .. }
            if location == "us-east" && jurisdiction == Jurisdiction::parse("US").unwrap()
    ));
    let eu = f
        .blobs
        .put(
            "us-east",
            "acme/x",
            &policy(&["EU"]),
            "k",
            &f.key,
            pieces(b"x", 1),
        )
        .await
        .unwrap_err();
    assert!(eu.to_string().ends_with("may be stored only in the EU"));
    assert_eq!(files_under(&f.dir.0), Vec::<PathBuf>::new());
    // Anywhere allows it.
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
}

#[tokio::test]
async fn mistakes_are_named() {
    let f = fixture();
    let unknown = f
        .blobs
        .put("mars", "a", &policy(&[]), "k", &f.key, pieces(b"x", 1))
        .await
        .unwrap_err();
    assert_eq!(unknown.to_string(), "no storage location is named `mars`");
    for bad in ["", "a//b", "../etc/passwd"] {
        let refused = f
            .blobs
            .put("fr", bad, &policy(&[]), "k", &f.key, pieces(b"x", 1))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, BlobError::BadPath { .. }),
            "{bad}: {refused}"
        );
    }
    let missing = f.read("acme/none", &f.key).await.unwrap_err();
    assert_eq!(missing.to_string(), "no object `acme/none` in location fr");
    std::fs::create_dir_all(f.file("acme")).unwrap();
    std::fs::write(f.file("acme/plain"), b"not encrypted").unwrap();
    assert!(matches!(
        f.read("acme/plain", &f.key).await,
        Err(BlobError::Crypto(_))
    ));
}

#[tokio::test]
async fn delete_and_list() {
    let f = fixture();
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
    assert!(f.read("acme/a", &f.key).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_object_streams_through() {
    let f = fixture();
    const MIB: usize = 1 << 20;
    let piece = |i: usize| Bytes::from(data(MIB, i as u8));
    let input = stream::iter((0..64).map(move |i| Ok::<_, Infallible>(piece(i))));
    let mut expected = Sha256::new();
    (0..64).for_each(|i| expected.update(data(MIB, i as u8)));
    let expected = hex::encode(expected.finalize());
    let stored = f
        .blobs
        .put(
            "fr",
            "acme/large",
            &policy(&["FR"]),
            "tenant:acme:1",
            &f.key,
            input,
        )
        .await
        .unwrap();
    assert_eq!(
        (stored.plaintext_bytes, stored.sha256.as_str()),
        ((64 * MIB) as u64, expected.as_str())
    );
    let key = f.key.clone();
    let mut plaintext = f
        .blobs
        .open("fr", "acme/large", move |_| Ok::<_, Infallible>(key))
        .await
        .unwrap();
    let (mut read, mut hash, mut largest) = (0, Sha256::new(), 0);
    while let Some(piece) = plaintext.next().await {
        let piece = piece.unwrap();
        read += piece.len();
        largest = largest.max(piece.len());
        hash.update(&piece);
    }
    assert_eq!(read, 64 * MIB);
    assert_eq!(hex::encode(hash.finalize()), expected);
    // Plaintext comes out a batch at a time, not whole.
    assert!(largest <= BATCH, "{largest}");
}

/// What a server needs to hold uploads and downloads in its handlers and response bodies.
#[test]
fn futures_and_streams_can_cross_threads() {
    fn sendable<T: Send>(_: &T) {}
    fn lasting<T: Send + 'static>(_: &T) {}
    let f = fixture();
    let anywhere = policy(&[]);
    let put = f
        .blobs
        .put("fr", "a", &anywhere, "k", &f.key, pieces(b"x", 1));
    sendable(&put);
    let key = f.key.clone();
    let open = f.blobs.open("fr", "a", move |_| Ok::<_, Infallible>(key));
    sendable(&open);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(put).unwrap();
    let plaintext = runtime.block_on(open).unwrap();
    lasting(&plaintext);
}

#[test]
fn a_local_location_makes_its_directory() {
    let dir = TempDir::new();
    let inner = dir.0.join("a/b");
    let locations = Locations::local(&inner, Jurisdiction::parse("fr").unwrap()).unwrap();
    assert!(inner.is_dir());
    let local = locations.default_location();
    assert_eq!(
        (local.name.as_str(), local.jurisdiction.as_str()),
        ("local", "FR")
    );
    assert!(local.url.starts_with("file:///") && local.url.ends_with("/a/b"));
    // A synced put syncs the file and the directories it made.
    let blobs = Blobs::new(locations, Durability::Synced).unwrap();
    let key = Key::generate().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (content, anywhere) = (data(100_000, 7), policy(&[]));
    let put = blobs.put(
        "local",
        "acme/deep/file",
        &anywhere,
        "k",
        &key,
        pieces(&content, 4096),
    );
    assert_eq!(runtime.block_on(put).unwrap().plaintext_bytes, 100_000);
    assert!(inner.join("acme/deep/file").is_file());
}
