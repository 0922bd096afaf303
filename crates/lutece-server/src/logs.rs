//! Task output kept by the control plane: one file per task under `<data>/logs/<job>/<rank>.log`,
//! appended by agents at explicit offsets so a retried chunk is never written twice.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::Mutex;

#[derive(Clone)]
pub(crate) struct LogStore {
    dir: PathBuf,
    /// Appends are serialised; reads are not.
    append_lock: Arc<Mutex<()>>,
}

/// A chunk that does not line up with what is stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppendError {
    #[error("chunk starts at byte {offset} but only {size} bytes are stored")]
    Gap { offset: u64, size: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl LogStore {
    pub(crate) fn new(dir: PathBuf) -> LogStore {
        LogStore {
            dir,
            append_lock: Arc::default(),
        }
    }

    fn path(&self, job_id: &str, rank: u32) -> PathBuf {
        self.dir.join(job_id).join(format!("{rank}.log"))
    }

    /// Appends `data`, which starts at byte `offset` of the task's output; bytes already stored
    /// are skipped. Returns the stored size.
    pub(crate) async fn append(
        &self,
        job_id: &str,
        rank: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, AppendError> {
        let _guard = self.append_lock.lock().await;
        let path = self.path(job_id, rank);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await?;
        let size = file.metadata().await?.len();
        if offset > size {
            return Err(AppendError::Gap { offset, size });
        }
        let skip = usize::try_from(size - offset).unwrap_or(usize::MAX);
        if skip < data.len() {
            file.write_all(&data[skip..]).await?;
            file.flush().await?;
        }
        Ok(size.max(offset + data.len() as u64))
    }

    /// Up to `max` bytes of a task's output from `offset`; empty when nothing was written yet.
    pub(crate) async fn read(
        &self,
        job_id: &str,
        rank: u32,
        offset: u64,
        max: usize,
    ) -> io::Result<Vec<u8>> {
        let mut file = match tokio::fs::File::open(self.path(job_id, rank)).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        file.seek(io::SeekFrom::Start(offset)).await?;
        let mut buffer = Vec::new();
        file.take(max as u64).read_to_end(&mut buffer).await?;
        Ok(buffer)
    }
}
