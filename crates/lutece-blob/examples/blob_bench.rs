//! Throughput of encrypted puts and opens through a local location, beside plain object_store
//! puts and gets and plain `std::fs` writes and reads of the same bytes in the same directory.
//! Run by `bench/blob.sh`; build with `--release`.
//!
//! Usage: `blob_bench [--dir DIR] [--mib N] [--runs N] [--fsync]`. Prints a table of median
//! MiB/s over the runs (each figure measured once per run, in turn), then the ratios.

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use lutece_blob::{Blobs, Durability, Locations, PART_SIZE, PARTS_IN_FLIGHT};
use lutece_core::residency::{Jurisdiction, ResidencyPolicy};
use lutece_vault::Key;
use lutece_vault::stream::{DEFAULT_CHUNK_LOG2, Decryptor, Encryptor, Header};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::time::Instant;

const MIB: usize = 1 << 20;

struct Args {
    dir: std::path::PathBuf,
    mib: usize,
    runs: usize,
    fsync: bool,
    /// Time only the encrypted put and open (for a profiler).
    only_lutece: bool,
}

fn args() -> Args {
    let mut args = Args {
        dir: std::env::temp_dir().join("lutece-blob-bench"),
        mib: 256,
        runs: 5,
        fsync: false,
        only_lutece: false,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        let mut value = || given.next().expect("a value after the option");
        match arg.as_str() {
            "--dir" => args.dir = value().into(),
            "--mib" => args.mib = value().parse().expect("--mib N"),
            "--runs" => args.runs = value().parse().expect("--runs N"),
            "--fsync" => args.fsync = true,
            "--only-lutece" => args.only_lutece = true,
            other => panic!("unknown option {other}"),
        }
    }
    args
}

/// The object's plaintext: `mib` pieces of 1 MiB, as an upload would stream them in.
fn piece(i: usize) -> Bytes {
    let seed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..MIB / 8)
        .flat_map(|j| (seed ^ (j as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93)).to_le_bytes())
        .collect::<Vec<u8>>()
        .into()
}

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

#[tokio::main]
async fn main() {
    let args = args();
    let size = args.mib * MIB;
    let _ = std::fs::remove_dir_all(&args.dir);
    let durability = if args.fsync {
        Durability::Synced
    } else {
        Durability::Cached
    };
    let fr = Jurisdiction::parse("FR").expect("FR");
    let blobs = Blobs::new(
        Locations::local(args.dir.join("blobs"), fr).expect("location"),
        durability,
    )
    .expect("blobs");
    let plain = LocalFileSystem::new_with_prefix(args.dir.join("blobs")).expect("plain store");
    let key = Key::generate().expect("key");
    let anywhere = ResidencyPolicy::anywhere();

    // Bounded memory first, before the benchmark holds the object in memory: the pieces are
    // made as the put asks for them and dropped once sealed.
    let before = peak_rss_mib();
    let lazy = stream::iter((0..args.mib).map(|i| Ok::<_, Infallible>(piece(i))));
    blobs
        .put("local", "rss", &anywhere, "tenant:bench", &key, lazy)
        .await
        .expect("put");
    let opened = open(&blobs, "rss", &key).await;
    assert_eq!(opened, size);
    println!(
        "peak RSS: {before} MiB before, {} MiB after a {} MiB put and open",
        peak_rss_mib(),
        args.mib
    );
    blobs.delete("local", "rss").await.expect("delete");

    let pieces: Vec<Bytes> = (0..args.mib).map(piece).collect();
    let whole: Vec<u8> = pieces.concat();
    let mut figures: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut record = |name: &'static str, started: Instant| {
        let mib_s = args.mib as f64 / started.elapsed().as_secs_f64();
        figures.entry(name).or_default().push(mib_s);
    };

    // The cipher and the hash alone, one core, no IO: the ceilings of a put and an open.
    let object = lutece_vault::stream::encrypt(&key, "tenant:bench", DEFAULT_CHUNK_LOG2, &whole)
        .expect("encrypt");
    for _ in 0..3 {
        let started = Instant::now();
        let (mut encryptor, _) =
            Encryptor::new(&key, "tenant:bench", DEFAULT_CHUNK_LOG2).expect("encryptor");
        let mut sealed = Vec::with_capacity(2 * MIB);
        for p in &pieces {
            sealed.clear();
            encryptor.update(p, &mut sealed).expect("encrypt");
        }
        encryptor.finish(&mut sealed).expect("finish");
        record("alone: lutece-vault Encryptor (1 core)", started);
        let started = Instant::now();
        let (header, at) = Header::parse(&object)
            .expect("header")
            .expect("whole header");
        let mut decryptor = Decryptor::new(&key, &header).expect("decryptor");
        let mut opened = Vec::with_capacity(2 * MIB);
        for p in object[at..].chunks(MIB) {
            opened.clear();
            decryptor.update(p, &mut opened).expect("decrypt");
        }
        decryptor.finish(&mut opened).expect("finish");
        record("alone: lutece-vault Decryptor (1 core)", started);
        let started = Instant::now();
        let mut hasher = Sha256::new();
        pieces.iter().for_each(|p| hasher.update(p));
        std::hint::black_box(hasher.finalize());
        record("alone: SHA-256 (1 core)", started);
    }
    drop(object);

    for run in 0..args.runs {
        let stream_of = || stream::iter(pieces.clone().into_iter().map(Ok::<_, Infallible>));
        if !args.only_lutece {
            plain_figures(&args, &pieces, &whole, &plain, &mut record).await;
        }

        settle();
        let started = Instant::now();
        let stored = blobs
            .put(
                "local",
                "sealed",
                &anywhere,
                "tenant:bench",
                &key,
                stream_of(),
            )
            .await
            .expect("put");
        record("write: lutece-blob put (encrypted, streamed)", started);
        assert_eq!(stored.plaintext_bytes, size as u64);

        let started = Instant::now();
        let n = open(&blobs, "sealed", &key).await;
        record("read: lutece-blob open (decrypted, streamed)", started);
        assert_eq!(n, size);
        blobs.delete("local", "sealed").await.expect("delete");
        eprintln!("run {} done", run + 1);
    }

    let median = |name: &str| {
        let mut v = figures.get(name).cloned().unwrap_or_default();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!(
        "{} MiB object, {} runs, fsync {}, part {} MiB, {} parts in flight",
        args.mib,
        args.runs,
        args.fsync,
        PART_SIZE / MIB,
        PARTS_IN_FLIGHT
    );
    for (name, values) in &figures {
        let (lo, hi) = values
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        println!(
            "{name:48} median {:7.0} MiB/s  (min {lo:.0}, max {hi:.0})",
            median(name)
        );
    }
    let put = median("write: lutece-blob put (encrypted, streamed)");
    let open = median("read: lutece-blob open (decrypted, streamed)");
    for other in [
        "write: object_store multipart (streamed)",
        "write: object_store put (one payload)",
        "write: std::fs::write",
    ] {
        println!("encrypted put / {other:42} {:.2}", put / median(other));
    }
    for other in [
        "read: object_store get (streamed)",
        "read: object_store get (whole)",
        "read: std::fs::read",
    ] {
        println!("encrypted open / {other:41} {:.2}", open / median(other));
    }
    let _ = std::fs::remove_dir_all(&args.dir);
}

/// The plain alternatives: std::fs, object_store put, multipart and get.
async fn plain_figures(
    args: &Args,
    pieces: &[Bytes],
    whole: &[u8],
    plain: &LocalFileSystem,
    record: &mut impl FnMut(&'static str, Instant),
) {
    let size = args.mib * MIB;
    let fs_path = args.dir.join("blobs").join("fs-file");
    settle();
    let started = Instant::now();
    let mut file = std::fs::File::create(&fs_path).expect("create");
    file.write_all(whole).expect("write");
    if args.fsync {
        file.sync_all().expect("sync");
    }
    drop(file);
    record("write: std::fs::write", started);

    let started = Instant::now();
    let read = std::fs::read(&fs_path).expect("read");
    record("read: std::fs::read", started);
    assert_eq!(read.len(), size);
    drop(read);
    std::fs::remove_file(&fs_path).expect("remove");

    let path = Path::from("plain");
    settle();
    let started = Instant::now();
    plain
        .put(&path, PutPayload::from_iter(pieces.iter().cloned()))
        .await
        .expect("put");
    sync_in_place(args, &path);
    record("write: object_store put (one payload)", started);
    plain.delete(&path).await.expect("delete");

    settle();
    let started = Instant::now();
    let upload = plain.put_multipart(&path).await.expect("multipart");
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut input = stream::iter(pieces.iter().cloned().map(Ok::<_, Infallible>));
    while let Some(Ok(p)) = input.next().await {
        writer
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .expect("capacity");
        writer.put(p);
    }
    writer.finish().await.expect("finish");
    sync_in_place(args, &path);
    record("write: object_store multipart (streamed)", started);

    let started = Instant::now();
    let got = plain
        .get(&path)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    record("read: object_store get (whole)", started);
    assert_eq!(got.len(), size);
    drop(got);

    let started = Instant::now();
    let mut streamed = plain.get(&path).await.expect("get").into_stream();
    let mut n = 0;
    while let Some(p) = streamed.next().await {
        n += p.expect("piece").len();
    }
    record("read: object_store get (streamed)", started);
    assert_eq!(n, size);
    plain.delete(&path).await.expect("delete");
}

/// With `--fsync`, syncs the object at `path` and its directory, as a synced put of lutece-blob
/// does (object_store 0.12 has no option for it).
fn sync_in_place(args: &Args, path: &Path) {
    if args.fsync {
        let file = args.dir.join("blobs").join(path.as_ref());
        for at in [file.as_path(), file.parent().expect("a directory")] {
            let synced = std::fs::File::open(at).and_then(|f| f.sync_all());
            synced.expect("sync");
        }
    }
}

/// Writes dirty pages out before a write is timed, so that no earlier write's writeback runs
/// during it.
fn settle() {
    let _ = std::process::Command::new("sync").status();
}

/// Opens `path` and drains it; returns the plaintext bytes.
async fn open(blobs: &Blobs, path: &str, key: &Key) -> usize {
    let key = key.clone();
    let mut plaintext = blobs
        .open("local", path, move |_| Ok::<_, Infallible>(key))
        .await
        .expect("open");
    let mut n = 0;
    while let Some(p) = plaintext.next().await {
        n += p.expect("plaintext").len();
    }
    n
}
