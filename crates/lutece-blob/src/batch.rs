//! A stream of pieces regrouped into batches of [`BATCH`] bytes, cutting pieces without copying.

use crate::{BATCH, BlobError};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};

/// Batches of a stream of pieces; the rest of a piece cut at a batch's end starts the next.
pub(crate) struct Batches<S> {
    stream: S,
    carry: Option<Bytes>,
}

impl<S> Batches<S>
where
    S: Stream<Item = Result<Bytes, BlobError>> + Unpin,
{
    /// Batches of `stream`, starting with `first`.
    pub(crate) fn new(stream: S, first: Option<Bytes>) -> Batches<S> {
        Batches {
            stream,
            carry: first,
        }
    }

    /// The next [`BATCH`] bytes (fewer at the end), and whether the stream ended with them.
    /// Call it again only after `false`.
    pub(crate) async fn next(&mut self) -> Result<(Vec<Bytes>, bool), BlobError> {
        let mut batch = Vec::new();
        let mut size = 0;
        loop {
            let mut piece = match self.carry.take() {
                Some(piece) => piece,
                None => match self.stream.try_next().await? {
                    Some(piece) => piece,
                    None => return Ok((batch, true)),
                },
            };
            let room = BATCH - size;
            if piece.len() >= room {
                if piece.len() > room {
                    self.carry = Some(piece.split_off(room));
                }
                batch.push(piece);
                return Ok((batch, false));
            }
            size += piece.len();
            if !piece.is_empty() {
                batch.push(piece);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    #[tokio::test]
    async fn pieces_regroup_into_whole_batches() {
        let sizes = [0, 10, BATCH - 10, 5, 3 * BATCH + 1, 0, 7];
        let pieces = sizes.map(|n| Ok(Bytes::from(vec![1u8; n])));
        let mut batches = Batches::new(stream::iter(pieces), Some(Bytes::from_static(b"ab")));
        let mut seen = Vec::new();
        loop {
            let (batch, last) = batches.next().await.unwrap();
            assert!(batch.iter().all(|p| !p.is_empty()));
            seen.push(batch.iter().map(Bytes::len).sum::<usize>());
            if last {
                break;
            }
        }
        let total: usize = sizes.iter().sum::<usize>() + 2;
        assert_eq!(seen.iter().sum::<usize>(), total);
        assert!(
            seen[..seen.len() - 1].iter().all(|&n| n == BATCH),
            "{seen:?}"
        );
    }
}
