//! Object storage of tenant data (datasets, models, checkpoints, logs): encrypted streams over
//! [`object_store`], in named [`Locations`] that each sit in one jurisdiction.
//!
//! - [`Locations`]: where objects may be stored, parsed from a spec such as
//!   `local=file:///srv/lutece/blobs@FR,paris-2=s3://lutece-p2/blobs@FR`: directories of this
//!   machine, or buckets of S3-compatible stores;
//! - [`Blobs`]: the stores behind them. [`Blobs::put`] refuses a location the tenant's
//!   residency policy does not allow, then encrypts the stream (a fresh data key per object,
//!   wrapped by the tenant's key: [`lutece_vault::stream`]) and writes it as a multipart upload
//!   that becomes visible whole or not at all; [`Blobs::open`] streams the plaintext back,
//!   authenticated chunk by chunk.
//!
//! Memory stays bounded whatever an object's size: a put holds at most
//! [`PARTS_IN_FLIGHT`] + 1 parts of [`PART_SIZE`] and three batches of [`BATCH`] (about 18 MiB);
//! an open about four batches (the block read ahead, the batch being decrypted, the plaintext
//! handed out).
//!
//! object_store is held at 0.12: its S3 client uses the workspace's reqwest 0.12 and ring,
//! where later versions bring reqwest 0.13 and a second TLS crypto provider (aws-lc-rs).

mod batch;
mod blobs;
mod location;
mod read;
mod stores;
mod write;

pub use blobs::{Blobs, Durability, ObjectInfo, Stored};
pub use location::{LOCAL, Location, Locations};
pub use read::PlaintextStream;

use lutece_core::residency::{Jurisdiction, ResidencyPolicy};
use lutece_vault::stream::StreamError;

/// Plaintext (on put) or stored bytes (on open) gathered before one step of the cipher, which
/// runs on tokio's blocking threads so that it never stalls the async workers.
pub const BATCH: usize = 1 << 20;
/// Bytes of each part of a multipart upload. S3-compatible stores want 5 MiB or more (all but
/// the last part); the local filesystem takes any size.
pub const PART_SIZE: usize = 5 << 20;
/// Parts being written at once by one put.
pub const PARTS_IN_FLIGHT: usize = 2;

/// Why a blob operation failed. Messages are lowercase fragments that read after "failed to
/// …:"; none shows key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A location spec or URL that does not parse; names the bad part.
    #[error("storage location {0}")]
    BadLocation(String),
    #[error("no storage location is named `{0}`")]
    UnknownLocation(String),
    /// The tenant's residency policy does not allow the location's jurisdiction: nothing was
    /// written.
    #[error("location {location} is in {jurisdiction}; tenant data may be stored only in {policy}")]
    Residency {
        location: String,
        jurisdiction: Jurisdiction,
        policy: ResidencyPolicy,
    },
    #[error("`{path}` is not a valid object path: {reason}")]
    BadPath { path: String, reason: String },
    #[error("no object `{path}` in location {location}")]
    NotFound { location: String, path: String },
    /// The plaintext stream given to a put failed: the upload was abandoned.
    #[error("the data being stored stopped with an error: {0}")]
    Input(String),
    /// The key callback of an open refused (for example: the key was destroyed).
    #[error("the object's key is not available: {0}")]
    Key(String),
    /// Encrypting failed, or the stored object does not decrypt: a wrong key, or an object
    /// changed, truncated or not written by lutece.
    #[error("encrypted object: {0}")]
    Crypto(#[from] StreamError),
    /// The store behind a location failed (a disk, or an S3-compatible service that refused or
    /// could not be reached). The message names the location, and never holds credentials:
    /// they travel in headers, signed, and object_store does not show them.
    #[error("storage location {location}: {source}")]
    Store {
        location: String,
        source: object_store::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A blocking task (cipher or file IO) was cancelled or panicked.
    #[error("a background task failed: {0}")]
    Task(String),
}

/// Turns an error of the store behind `location` into a [`BlobError::Store`] that names it.
fn store_error(location: &str) -> impl Fn(object_store::Error) -> BlobError + '_ {
    move |source| BlobError::Store {
        location: location.to_owned(),
        source,
    }
}

/// Runs `work` on tokio's blocking threads.
async fn blocking<T, F>(work: F) -> Result<T, BlobError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, BlobError> + Send + 'static,
{
    joined(tokio::task::spawn_blocking(work).await)?
}

/// The output of a finished task, or why it has none.
fn joined<T>(result: Result<T, tokio::task::JoinError>) -> Result<T, BlobError> {
    result.map_err(|e| BlobError::Task(e.to_string()))
}
