//! Tenant data and its sovereignty over HTTP: files (`/v1/files`), storage locations,
//! encryption keys, residency, tenant deletion, and the audit log. Bodies that can be large
//! (a file's content, an audit export) stream in both directions and are never held whole.

use crate::{Client, ClientError, Result, causes, encode};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use lutece_api::{
    AuditKey, EncryptionKey, FileDeleted, FileList, FileObject, NewEncryptionKey, Residency,
    ResidencyReport, StorageLocation, TenantDeletion,
};
use reqwest::multipart::{Form, Part};
use reqwest::{Body, Method};
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::ReaderStream;

/// A response body read as it arrives, so that it never has to fit in memory.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// How much of an upload is read at a time.
const UPLOAD_CHUNK: usize = 256 << 10;

/// The text fields of a file upload (`POST /v1/files`).
#[derive(Debug, Clone, Copy)]
pub struct FileUpload<'a> {
    /// The name the file is stored under.
    pub filename: &'a str,
    /// What the file is for (`fine-tune`, `batch`, …): its data class.
    pub purpose: &'a str,
    /// A storage location's name; None leaves the choice to the server.
    pub location: Option<&'a str>,
}

impl Client {
    /// Uploads `len` bytes read from `content` as a file, streaming them: `on_sent` sees each
    /// chunk as it leaves for the server. Reading stops at `len` bytes even if `content` has
    /// grown since its length was taken; if it has shrunk, the upload fails.
    pub async fn upload_file<R>(
        &self,
        upload: &FileUpload<'_>,
        content: R,
        len: u64,
        mut on_sent: impl FnMut(&[u8]) + Send + 'static,
    ) -> Result<FileObject>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let chunks = ReaderStream::with_capacity(content.take(len), UPLOAD_CHUNK)
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot read the file being uploaded: {e}"),
                )
            })
            .inspect_ok(move |chunk| on_sent(chunk));
        let part = Part::stream_with_length(Body::wrap_stream(chunks), len)
            .file_name(upload.filename.to_owned())
            .mime_str("application/octet-stream")
            .map_err(|e| self.transport(e))?;
        let mut form = Form::new().text("purpose", upload.purpose.to_owned());
        if let Some(location) = upload.location {
            form = form.text("location", location.to_owned());
        }
        let form = form.part("file", part);
        self.json(self.request(Method::POST, "/v1/files").multipart(form))
            .await
    }

    /// The caller's files, or only those for `purpose`.
    pub async fn list_files(&self, purpose: Option<&str>) -> Result<FileList> {
        match purpose {
            Some(purpose) => {
                self.get(&format!("/v1/files?purpose={}", encode(purpose)))
                    .await
            }
            None => self.get("/v1/files").await,
        }
    }

    pub async fn file(&self, id: &str) -> Result<FileObject> {
        self.get(&format!("/v1/files/{}", encode(id))).await
    }

    /// A file's content, as it arrives.
    pub async fn file_content(&self, id: &str) -> Result<ByteStream> {
        let path = format!("/v1/files/{}/content", encode(id));
        self.stream(self.request(Method::GET, &path)).await
    }

    pub async fn delete_file(&self, id: &str) -> Result<FileDeleted> {
        self.json(self.request(Method::DELETE, &format!("/v1/files/{}", encode(id))))
            .await
    }

    pub async fn storage_locations(&self) -> Result<Vec<StorageLocation>> {
        self.get("/api/v1/storage/locations").await
    }

    pub async fn encryption_keys(&self, tenant: &str) -> Result<Vec<EncryptionKey>> {
        self.get(&encryption_keys_path(tenant)).await
    }

    /// A new key that seals the tenant's new data: a managed one (rotation), or the one in
    /// `request.key` (bring your own).
    pub async fn new_encryption_key(
        &self,
        tenant: &str,
        request: &NewEncryptionKey,
    ) -> Result<EncryptionKey> {
        self.post(&encryption_keys_path(tenant), request).await
    }

    /// Destroys a key: every object it sealed becomes unreadable. Returns the key, destroyed.
    pub async fn destroy_encryption_key(&self, tenant: &str, id: &str) -> Result<EncryptionKey> {
        let path = format!("{}/{}", encryption_keys_path(tenant), encode(id));
        self.json(self.request(Method::DELETE, &path)).await
    }

    pub async fn residency(&self, tenant: &str) -> Result<Residency> {
        self.get(&format!("/api/v1/tenants/{}/residency", encode(tenant)))
            .await
    }

    pub async fn set_residency(&self, tenant: &str, residency: &Residency) -> Result<Residency> {
        let path = format!("/api/v1/tenants/{}/residency", encode(tenant));
        self.json(self.request(Method::PUT, &path).json(residency))
            .await
    }

    pub async fn residency_report(&self, tenant: &str) -> Result<ResidencyReport> {
        self.get(&format!(
            "/api/v1/tenants/{}/residency/report",
            encode(tenant)
        ))
        .await
    }

    /// Deletes a tenant by destroying its keys (irreversible); returns what was destroyed and
    /// the signed certificate of it.
    pub async fn delete_tenant(&self, name: &str) -> Result<TenantDeletion> {
        let path = format!("/api/v1/tenants/{}", encode(name));
        self.json(self.request(Method::DELETE, &path)).await
    }

    pub async fn deletion_certificate(&self, name: &str) -> Result<TenantDeletion> {
        self.get(&format!(
            "/api/v1/tenants/{}/deletion-certificate",
            encode(name)
        ))
        .await
    }

    /// The audit export, as it arrives: the caller's tenant's trail, or for an operator the
    /// whole log (`tenant` None) or one tenant's trail.
    pub async fn audit_export(&self, tenant: Option<&str>) -> Result<ByteStream> {
        let path = match tenant {
            Some(tenant) => format!("/api/v1/audit/export?tenant={}", encode(tenant)),
            None => "/api/v1/audit/export".to_owned(),
        };
        self.stream(self.request(Method::GET, &path)).await
    }

    pub async fn audit_public_key(&self) -> Result<AuditKey> {
        self.get("/api/v1/audit/public-key").await
    }

    /// The body of a successful answer, as it arrives.
    async fn stream(&self, builder: reqwest::RequestBuilder) -> Result<ByteStream> {
        let response = self.send(builder).await?;
        let base = self.base.clone();
        Ok(Box::pin(response.bytes_stream().map(move |chunk| {
            chunk.map_err(|e| ClientError::Interrupted {
                url: base.clone(),
                message: causes(&e),
            })
        })))
    }
}

fn encryption_keys_path(tenant: &str) -> String {
    format!("/api/v1/tenants/{}/encryption-keys", encode(tenant))
}
