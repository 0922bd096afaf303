//! Throughput of the chunked encryption, one core: 64 MiB encrypted, then decrypted, in the
//! 64 KiB chunks lutece writes, against a plain copy of the same bytes (what storing them
//! unencrypted costs in memory).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lutece_vault::Key;
use lutece_vault::stream::{DEFAULT_CHUNK_LOG2, Decryptor, Encryptor, Header};
use std::hint::black_box;

const SIZE: usize = 64 << 20;

fn throughput(c: &mut Criterion) {
    let key = Key::from_bytes(&[5; 32]).expect("a key");
    let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let mut group = c.benchmark_group("64 MiB");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function("copy", |b| b.iter(|| black_box(data.clone())));
    group.bench_function("encrypt", |b| {
        b.iter(|| {
            let (mut encryptor, mut out) =
                Encryptor::new(&key, "tenant:bench", DEFAULT_CHUNK_LOG2).expect("encryptor");
            out.reserve(SIZE + SIZE / 4096 + 1024);
            for piece in data.chunks(1 << 20) {
                encryptor.update(piece, &mut out).expect("update");
            }
            encryptor.finish(&mut out).expect("finish");
            black_box(out)
        })
    });
    let object = lutece_vault::stream::encrypt(&key, "tenant:bench", DEFAULT_CHUNK_LOG2, &data)
        .expect("encrypt");
    group.bench_function("decrypt", |b| {
        b.iter(|| {
            let (header, at) = Header::parse(&object)
                .expect("header")
                .expect("whole header");
            let mut decryptor = Decryptor::new(&key, &header).expect("decryptor");
            let mut out = Vec::with_capacity(SIZE);
            for piece in object[at..].chunks(1 << 20) {
                decryptor.update(piece, &mut out).expect("update");
            }
            decryptor.finish(&mut out).expect("finish");
            black_box(out)
        })
    });
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
