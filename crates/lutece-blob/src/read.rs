//! An open: the stored object's header, then its chunks decrypted a batch at a time on
//! blocking threads. A local file is read in large blocks rather than object_store's 8 KiB.

use crate::batch::Batches;
use crate::{BATCH, BlobError, blocking, joined, store_error};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, BoxStream};
use futures_util::{Stream, StreamExt, TryStreamExt};
use lutece_vault::Key;
use lutece_vault::stream::{DEFAULT_CHUNK_LOG2, Decryptor, Header, StreamError};
use object_store::path::Path;
use object_store::{GetResultPayload, ObjectStore};
use std::fmt::Display;
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};

type Source = BoxStream<'static, Result<Bytes, BlobError>>;

/// The plaintext of an object being read ([`crate::Blobs::open`]): pieces of authenticated
/// plaintext, in order, then the end or one error.
pub struct PlaintextStream(BoxStream<'static, Result<Bytes, BlobError>>);

impl Stream for PlaintextStream {
    type Item = Result<Bytes, BlobError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_next_unpin(cx)
    }
}

impl std::fmt::Debug for PlaintextStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlaintextStream")
    }
}

/// Reads the header of the object at `path` in the store of `location`, gets its key from
/// `key`, and returns the stream of its plaintext.
pub(crate) async fn open<F, E>(
    store: &dyn ObjectStore,
    location: &str,
    path: &Path,
    key: F,
) -> Result<PlaintextStream, BlobError>
where
    F: FnOnce(&str) -> Result<Key, E>,
    E: Display,
{
    let got = store.get(path).await.map_err(store_error(location))?;
    let mut source: Source = match got.payload {
        GetResultPayload::File(file, _) => file_source(file),
        GetResultPayload::Stream(stream) => {
            let location = location.to_owned();
            stream.map_err(move |e| store_error(&location)(e)).boxed()
        }
    };
    let (header, rest) = read_header(&mut source).await?;
    let tenant_key = key(&header.key_id).map_err(|e| BlobError::Key(e.to_string()))?;
    let decryptor = Decryptor::new(&tenant_key, &header)?;
    drop(tenant_key);
    let opening = Opening {
        source: Batches::new(source, Some(rest)),
        decryptor: Some(decryptor),
    };
    let plaintext = stream::unfold(opening, |mut opening| async move {
        match opening.next().await {
            Ok(Some(piece)) => Some((Ok(piece), opening)),
            Ok(None) => None,
            Err(e) => {
                // Nothing follows an error.
                opening.decryptor = None;
                Some((Err(e), opening))
            }
        }
    });
    Ok(PlaintextStream(plaintext.boxed()))
}

/// The header, and what followed it in the piece that completed it.
async fn read_header(source: &mut Source) -> Result<(Header, Bytes), BlobError> {
    let mut head = BytesMut::new();
    loop {
        let piece = source.try_next().await?.ok_or(StreamError::ShortHeader)?;
        let bytes = if head.is_empty() {
            piece
        } else {
            head.extend_from_slice(&piece);
            head.split().freeze()
        };
        if let Some((header, at)) = Header::parse(&bytes)? {
            return Ok((header, bytes.slice(at..)));
        }
        head.extend_from_slice(&bytes);
    }
}

/// The decrypting side of an open.
struct Opening {
    source: Batches<Source>,
    /// `None` once the last chunk is open, or after an error.
    decryptor: Option<Decryptor>,
}

impl Opening {
    /// The next authenticated plaintext; `None` at the end.
    async fn next(&mut self) -> Result<Option<Bytes>, BlobError> {
        while let Some(decryptor) = self.decryptor.take() {
            let (batch, last) = self.source.next().await?;
            let (decryptor, opened) = blocking(move || open_batch(decryptor, &batch, last)).await?;
            self.decryptor = decryptor;
            if !opened.is_empty() {
                return Ok(Some(opened));
            }
        }
        Ok(None)
    }
}

/// Decrypts one batch; opens the last chunk too when `last`, and then gives back no decryptor.
fn open_batch(
    mut decryptor: Decryptor,
    batch: &[Bytes],
    last: bool,
) -> Result<(Option<Decryptor>, Bytes), BlobError> {
    let size: usize = batch.iter().map(Bytes::len).sum();
    // Plaintext is shorter than what holds it, plus the chunk held back from the batch before
    // (an object written with larger chunks than lutece's makes the vector grow).
    let mut out = Vec::with_capacity(size + (1 << DEFAULT_CHUNK_LOG2));
    for piece in batch {
        decryptor.update(piece, &mut out)?;
    }
    if last {
        decryptor.finish(&mut out)?;
        return Ok((None, out.into()));
    }
    Ok((Some(decryptor), out.into()))
}

/// A local file read in blocks of [`BATCH`] bytes on blocking threads, one block ahead: the
/// next block is being read while the one handed out is decrypted.
fn file_source(file: std::fs::File) -> Source {
    type Reading = tokio::task::JoinHandle<Result<(Bytes, Option<std::fs::File>), BlobError>>;
    let reading: Reading = tokio::task::spawn_blocking(move || read_block(file));
    stream::try_unfold(Some(reading), |reading| async move {
        let Some(reading) = reading else {
            return Ok(None);
        };
        let (block, file) = joined(reading.await)??;
        if block.is_empty() {
            return Ok(None);
        }
        let next: Option<Reading> =
            file.map(|file| tokio::task::spawn_blocking(move || read_block(file)));
        Ok(Some((block, next)))
    })
    .boxed()
}

/// The next block of `file`, and the file unless it ended.
fn read_block(mut file: std::fs::File) -> Result<(Bytes, Option<std::fs::File>), BlobError> {
    let mut block = vec![0; BATCH];
    let mut filled = 0;
    while filled < BATCH {
        match file.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(BlobError::Io {
                    context: "read a stored object".to_owned(),
                    source,
                });
            }
        }
    }
    block.truncate(filled);
    // A short block: the file ended.
    let file = (filled == BATCH).then_some(file);
    Ok((Bytes::from(block), file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use std::convert::Infallible;

    async fn drain(mut plaintext: PlaintextStream) -> Result<Vec<u8>, BlobError> {
        let mut out = Vec::new();
        while let Some(piece) = plaintext.next().await {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }

    /// A store that answers with a stream, as remote stores do, rather than a file.
    #[tokio::test]
    async fn a_streamed_object_opens_and_its_damage_is_caught() {
        let store = InMemory::new();
        let key = Key::generate().unwrap();
        let content: Vec<u8> = (0..3 * BATCH + 12_345).map(|i| (i % 253) as u8).collect();
        let path = Path::from("acme/object");
        let pieces = stream::iter(
            content
                .chunks(77_777)
                .map(|c| Ok::<_, Infallible>(Bytes::copy_from_slice(c))),
        );
        crate::write::put(&store, "memory", &path, "k1", &key, pieces)
            .await
            .unwrap();
        let opened = open(&store, "memory", &path, |id| {
            assert_eq!(id, "k1");
            Ok::<_, Infallible>(key.clone())
        });
        assert_eq!(drain(opened.await.unwrap()).await.unwrap(), content);

        let mut stored = store
            .get(&path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        stored[2 * BATCH] ^= 1;
        store.put(&path, stored.into()).await.unwrap();
        let opened = open(&store, "memory", &path, |_| {
            Ok::<_, Infallible>(key.clone())
        });
        let damaged = drain(opened.await.unwrap()).await.unwrap_err();
        assert!(
            matches!(damaged, BlobError::Crypto(StreamError::Chunk(_))),
            "{damaged}"
        );
    }

    #[tokio::test]
    async fn a_header_split_across_pieces_is_read() {
        let key = Key::generate().unwrap();
        let object = lutece_vault::stream::encrypt(&key, "a-key-id", 16, b"hello").unwrap();
        let pieces: Vec<_> = object
            .chunks(3)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut source: Source = stream::iter(pieces).boxed();
        let (header, rest) = read_header(&mut source).await.unwrap();
        assert_eq!(header.key_id, "a-key-id");
        let mut after: Vec<u8> = rest.to_vec();
        while let Some(piece) = source.try_next().await.unwrap() {
            after.extend_from_slice(&piece);
        }
        assert_eq!(after.len(), 5 + 16);
        let mut short: Source = stream::iter([Ok(Bytes::copy_from_slice(&object[..20]))]).boxed();
        assert!(matches!(
            read_header(&mut short).await,
            Err(BlobError::Crypto(StreamError::ShortHeader))
        ));
    }
}
