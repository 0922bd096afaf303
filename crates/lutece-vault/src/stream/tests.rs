//! Round trips at every boundary, and every way of breaking an object caught.

use super::*;
use proptest::prelude::*;

const SMALL: u8 = 10; // 1 KiB chunks, so tests cross many boundaries cheaply

fn key() -> Key {
    Key::from_bytes(&[7; 32]).unwrap()
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn open(object: &[u8]) -> Result<Vec<u8>, StreamError> {
    decrypt(|id| (id == "tenant:acme").then(key), object)
}

/// The sealed chunks of `object`, after its header.
fn chunks(object: &[u8]) -> (usize, Vec<Vec<u8>>) {
    let (_, at) = Header::parse(object).unwrap().unwrap();
    let sealed = (1 << SMALL) + TAG_LEN;
    (
        at,
        object[at..].chunks(sealed).map(<[u8]>::to_vec).collect(),
    )
}

#[test]
fn round_trips_at_every_chunk_boundary() {
    let chunk = 1 << SMALL;
    for len in [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk, 3 * chunk + 5] {
        let data = plaintext(len);
        let object = encrypt(&key(), "tenant:acme", SMALL, &data).unwrap();
        let chunks = len / chunk + 1 - usize::from(len > 0 && len % chunk == 0);
        assert_eq!(
            object.len() - chunks * TAG_LEN - Header::parse(&object).unwrap().unwrap().1,
            len
        );
        assert_eq!(open(&object).unwrap(), data, "{len} bytes");
    }
}

#[test]
fn the_same_plaintext_never_encrypts_the_same_way() {
    let data = plaintext(100);
    let (a, b) = (
        encrypt(&key(), "tenant:acme", SMALL, &data).unwrap(),
        encrypt(&key(), "tenant:acme", SMALL, &data).unwrap(),
    );
    assert_ne!(a, b);
    assert!(!a.windows(data.len()).any(|w| w == data.as_slice()));
}

#[test]
fn reordered_dropped_and_cut_chunks_are_caught() {
    let object = encrypt(&key(), "tenant:acme", SMALL, &plaintext(4 * 1024 + 10)).unwrap();
    let (at, parts) = chunks(&object);
    assert_eq!(parts.len(), 5);
    let join = |parts: &[Vec<u8>]| [&object[..at], &parts.concat()].concat();
    let mut swapped = parts.clone();
    swapped.swap(1, 2);
    assert_eq!(open(&join(&swapped)), Err(StreamError::Chunk(1)));
    let mut dropped = parts.clone();
    dropped.remove(2);
    assert_eq!(open(&join(&dropped)), Err(StreamError::Chunk(2)));
    // Cut at a chunk boundary: what is left ends on a middle chunk.
    for keep in 1..parts.len() {
        assert_eq!(
            open(&join(&parts[..keep])),
            Err(StreamError::Truncated),
            "{keep} chunks"
        );
    }
    assert_eq!(open(&object[..at]), Err(StreamError::Truncated));
    assert_eq!(open(&object[..at - 1]), Err(StreamError::ShortHeader));
    // A last chunk moved to the middle, or a chunk appended after it.
    let mut appended = parts.clone();
    appended.push(parts[4].clone());
    assert!(open(&join(&appended)).is_err());
}

#[test]
fn a_header_moved_to_another_object_or_a_wrong_key_opens_nothing() {
    let a = encrypt(&key(), "tenant:acme", SMALL, b"first object").unwrap();
    let b = encrypt(&key(), "tenant:acme", SMALL, b"second object").unwrap();
    let (at_a, _) = chunks(&a);
    let (at_b, _) = chunks(&b);
    let spliced = [&a[..at_a], &b[at_b..]].concat();
    assert_eq!(open(&spliced), Err(StreamError::Chunk(0)));
    let other = Key::from_bytes(&[8; 32]).unwrap();
    assert_eq!(
        decrypt(|_| Some(other.clone()), &a),
        Err(StreamError::Key(KeyError::Unwrap))
    );
    assert_eq!(
        decrypt(|_| None, &a),
        Err(StreamError::Key(KeyError::Unwrap))
    );
    assert_eq!(open(b"LTV2 not ours"), Err(StreamError::Magic));
    assert_eq!(
        Encryptor::new(&key(), "t", 9).err(),
        Some(StreamError::ChunkSize(9))
    );
}

proptest! {
    #[test]
    fn any_split_of_the_input_gives_the_same_object_back(
        len in 0usize..5000,
        cuts in prop::collection::vec(0usize..5000, 0..6),
    ) {
        let data = plaintext(len);
        let (mut encryptor, mut object) = Encryptor::new(&key(), "tenant:acme", SMALL).unwrap();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(len)).collect();
        cuts.sort_unstable();
        let mut from = 0;
        for &cut in cuts.iter().chain([&len]) {
            encryptor.update(&data[from..cut], &mut object).unwrap();
            from = cut;
        }
        encryptor.finish(&mut object).unwrap();
        // Decrypt in pieces too.
        let (header, at) = Header::parse(&object).unwrap().unwrap();
        let mut decryptor = Decryptor::new(&key(), &header).unwrap();
        let mut out = Vec::new();
        for piece in object[at..].chunks(333) {
            decryptor.update(piece, &mut out).unwrap();
        }
        decryptor.finish(&mut out).unwrap();
        prop_assert_eq!(out, data);
    }

    #[test]
    fn every_mutation_is_caught(
        len in 0usize..3000,
        kind in 0u8..4,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let object = encrypt(&key(), "tenant:acme", SMALL, &plaintext(len)).unwrap();
        let i = at.index(object.len());
        let mut bent = object.clone();
        match kind {
            0 => bent[i] ^= byte.max(1),
            1 => bent.insert(i, byte),
            2 => { bent.remove(i); }
            _ => bent.truncate(i),
        }
        prop_assert!(open(&bent).is_err(), "mutation {} at {} went unnoticed", kind, i);
    }

    #[test]
    fn decoding_garbage_errs_and_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut input = b"LTV1".to_vec();
        input.extend_from_slice(&bytes);
        prop_assert!(open(&input).is_err());
        prop_assert!(open(&bytes).is_err());
    }
}
