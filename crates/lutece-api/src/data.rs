//! Tenant data and its sovereignty: files (the OpenAI-compatible `/v1/files`), the keys that
//! encrypt them, where data and work may be (residency), the audit log, and the certificate of
//! a tenant's deletion.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stored file, as OpenAI's files API describes one, with where it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileObject {
    /// `file-` and 24 hex digits.
    pub id: String,
    /// Always `file`.
    pub object: String,
    /// Size of the content in bytes (before encryption).
    pub bytes: u64,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub filename: String,
    /// What the file is for (`fine-tune`, `batch`, `assistants`, …): its data class.
    pub purpose: String,
    /// Always `processed`: a file is listed only once wholly stored.
    pub status: String,
    /// The storage location holding it, and that location's jurisdiction (country code).
    pub location: String,
    pub jurisdiction: String,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

/// `GET /v1/files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<FileObject>,
    pub has_more: bool,
}

/// `DELETE /v1/files/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileDeleted {
    pub id: String,
    /// Always `file`.
    pub object: String,
    pub deleted: bool,
}

/// A place tenant data can be stored, and the jurisdiction it is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StorageLocation {
    pub name: String,
    /// ISO 3166-1 country code.
    pub jurisdiction: String,
    /// Whether the operator's default for new data.
    pub default: bool,
}

/// A key that encrypts a tenant's data keys (never its material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EncryptionKey {
    pub id: String,
    /// `managed` (made by lutece) or `customer` (brought by the tenant).
    pub kind: String,
    /// `active` (seals new data), `retired` (opens older data) or `destroyed`.
    pub state: String,
    pub created_at: String,
    #[serde(default)]
    pub destroyed_at: Option<String>,
    /// For a customer key: the first 16 hex digits of the SHA-256 of its material, so its
    /// owner can tell which key it is.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Objects whose data keys it seals.
    pub objects: u64,
}

/// `POST /api/v1/tenants/{name}/encryption-keys`: with `key`, bring your own (64 hex digits,
/// 256 bits); without, rotate to a new managed key. Either way the new key seals new data.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEncryptionKey {
    #[serde(default)]
    pub key: Option<String>,
}

/// Never prints the key material a tenant brings.
impl std::fmt::Debug for NewEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = self.key.as_ref().map(|_| "…");
        f.debug_struct("NewEncryptionKey")
            .field("key", &key)
            .finish()
    }
}

/// Where a tenant's data and work may be: country codes (`FR`) or `EU`; empty: anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Residency {
    pub allowed: Vec<String>,
}

/// `GET /api/v1/tenants/{name}/residency/report`: where each class of a tenant's data, and
/// each of its workloads, is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResidencyReport {
    pub tenant: String,
    pub allowed: Vec<String>,
    pub data: Vec<DataPlacement>,
    pub workloads: Vec<WorkloadPlacement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DataPlacement {
    /// The data class: a file purpose such as `fine-tune`.
    pub class: String,
    pub location: String,
    pub jurisdiction: String,
    pub objects: u64,
    pub bytes: u64,
    /// Whether the tenant's policy allows it there (data stored before a policy was narrowed
    /// may not be).
    pub allowed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkloadPlacement {
    /// `job`.
    pub kind: String,
    pub id: String,
    pub name: String,
    pub state: String,
    /// The nodes it runs or ran on, and their jurisdictions; empty while it waits.
    pub nodes: Vec<String>,
    pub jurisdictions: Vec<String>,
    pub allowed: bool,
}

/// The audit log's public key, to verify exports and deletion certificates offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditKey {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The 32-byte public key, hex.
    pub public_key: String,
}

/// `DELETE /api/v1/tenants/{name}` and `GET /api/v1/tenants/{name}/deletion-certificate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TenantDeletion {
    pub tenant: String,
    pub deleted_at: String,
    /// Ids of the encryption keys destroyed.
    pub keys_destroyed: Vec<String>,
    /// Objects those keys sealed: none can be decrypted any more.
    pub objects: u64,
    /// The signed certificate (one line of JSON), checked with the audit log's public key.
    pub certificate: String,
}
