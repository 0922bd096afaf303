//! A put: the plaintext stream, gathered into batches, is hashed and encrypted on blocking
//! threads (the two side by side) and handed to a multipart upload, a few parts at a time.

use crate::batch::Batches;
use crate::{BlobError, PART_SIZE, PARTS_IN_FLIGHT, Stored, blocking, joined, store_error};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use lutece_vault::Key;
use lutece_vault::stream::{DEFAULT_CHUNK_LOG2, Encryptor};
use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};
use sha2::{Digest, Sha256};
use std::fmt::Display;

const CHUNK: usize = 1 << DEFAULT_CHUNK_LOG2;
/// Bytes of the tag after each chunk (AES-GCM).
const TAG: usize = 16;

/// Encrypts `plaintext` into a multipart upload at `path` in the store of `location`; aborts
/// the upload on any failure.
pub(crate) async fn put<S, E>(
    store: &dyn ObjectStore,
    location: &str,
    path: &Path,
    key_id: &str,
    key: &Key,
    mut plaintext: S,
) -> Result<Stored, BlobError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    let (encryptor, header) = Encryptor::new(key, key_id, DEFAULT_CHUNK_LOG2)?;
    let upload = store
        .put_multipart(path)
        .await
        .map_err(store_error(location))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let fed = match feed(&mut writer, location, encryptor, header, &mut plaintext).await {
        // Every full part written, so that a part that failed is known here, where the upload
        // can still be aborted (`finish` returns such a failure without aborting).
        Ok(stored) => writer
            .wait_for_capacity(0)
            .await
            .map(|()| stored)
            .map_err(store_error(location)),
        Err(e) => Err(e),
    };
    match fed {
        // `finish` aborts the upload itself when completing it fails; only a failure of its
        // last part leaves the upload to be dropped (a local staging file is then removed; a
        // bucket's parts wait for its lifecycle rule, see `Blobs::sweep_staging`).
        Ok(stored) => writer
            .finish()
            .await
            .map(|_| stored)
            .map_err(store_error(location)),
        Err(e) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(
                    error = %abort,
                    "could not abort an upload; what it left is removed by sweep_staging \
                     (a directory) or the lifecycle rule (a bucket)"
                );
            }
            Err(e)
        }
    }
}

/// Writes the header, then every batch of plaintext sealed, into `writer`.
async fn feed<S, E>(
    writer: &mut WriteMultipart,
    location: &str,
    encryptor: Encryptor,
    header: Vec<u8>,
    plaintext: &mut S,
) -> Result<Stored, BlobError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    let mut stored_bytes = header.len() as u64;
    let mut plaintext_bytes = 0;
    writer.put(Bytes::from(header));
    let mut input = Batches::new(plaintext.map_err(|e| BlobError::Input(e.to_string())), None);
    // The hash of a batch runs beside its encryption and is awaited only when the next batch
    // needs the hasher: neither waits for the other at every batch.
    let mut hashing = tokio::task::spawn_blocking(Sha256::new);
    let mut encryptor = Some(encryptor);
    while let Some(sealer) = encryptor.take() {
        let (batch, last) = input.next().await?;
        plaintext_bytes += batch.iter().map(|b| b.len() as u64).sum::<u64>();
        let mut hasher = joined(hashing.await)?;
        let hashed = batch.clone();
        hashing = tokio::task::spawn_blocking(move || {
            hashed.iter().for_each(|piece| hasher.update(piece));
            hasher
        });
        let (next, sealed) = blocking(move || seal(sealer, &batch, last)).await?;
        encryptor = next;
        stored_bytes += sealed.len() as u64;
        writer
            .wait_for_capacity(PARTS_IN_FLIGHT)
            .await
            .map_err(store_error(location))?;
        writer.put(sealed);
    }
    Ok(Stored {
        plaintext_bytes,
        stored_bytes,
        sha256: hex::encode(joined(hashing.await)?.finalize()),
    })
}

/// Encrypts one batch; seals the last chunk too when `last`, and then gives back no encryptor.
fn seal(
    mut encryptor: Encryptor,
    batch: &[Bytes],
    last: bool,
) -> Result<(Option<Encryptor>, Bytes), BlobError> {
    let size: usize = batch.iter().map(Bytes::len).sum();
    // The batch, the chunk held back from the batch before, and their tags.
    let mut out = Vec::with_capacity(size + CHUNK + (size / CHUNK + 2) * TAG);
    for piece in batch {
        encryptor.update(piece, &mut out)?;
    }
    if last {
        encryptor.finish(&mut out)?;
        return Ok((None, out.into()));
    }
    Ok((Some(encryptor), out.into()))
}
