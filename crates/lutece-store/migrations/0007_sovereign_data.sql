-- Tenant data and its sovereignty: encryption keys, files, residency, the audit log, deletion.

-- Where a tenant's data and work may be: a JSON array of country codes or "EU"; [] anywhere.
ALTER TABLE tenants ADD COLUMN residency TEXT NOT NULL DEFAULT '[]';
-- Set when the tenant was deleted (crypto-shredded); its name stays taken.
ALTER TABLE tenants ADD COLUMN deleted_at INTEGER;
-- The node's jurisdiction (ISO country code), as its agent declared it.
ALTER TABLE nodes ADD COLUMN jurisdiction TEXT;

-- Tenant keys, each sealed under the operator's root key. `wrapped` is overwritten with NULL
-- when the key is destroyed (the database runs with secure_delete, so the bytes go too).
CREATE TABLE encryption_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    kind          TEXT NOT NULL,            -- managed | customer
    wrapped       BLOB,
    fingerprint   TEXT,
    created_at    INTEGER NOT NULL,
    destroyed_at  INTEGER
);
CREATE INDEX encryption_keys_by_tenant ON encryption_keys(tenant_id, created_at);

-- Files, listed only once wholly stored. The content is an encrypted object at `location`.
CREATE TABLE files (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    filename      TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    stored_bytes  INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    location      TEXT NOT NULL,
    jurisdiction  TEXT NOT NULL,
    key_id        TEXT NOT NULL REFERENCES encryption_keys(id),
    created_at    INTEGER NOT NULL
);
CREATE INDEX files_by_tenant ON files(tenant_id, created_at);
CREATE INDEX files_by_key ON files(key_id);

-- The audit log: each line as written (see lutece-vault's audit module), by its place in the
-- whole log and, for a tenant's entries, in that tenant's trail.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    tenant_id  TEXT,
    tseq       INTEGER,
    line       TEXT NOT NULL
);
CREATE UNIQUE INDEX audit_log_by_trail ON audit_log(tenant_id, tseq) WHERE tenant_id IS NOT NULL;

-- Signed checkpoints, over the whole log (tenant_id NULL) or one trail, after entry `after`.
CREATE TABLE audit_checkpoints (
    id         INTEGER PRIMARY KEY,
    tenant_id  TEXT,
    after      INTEGER NOT NULL,
    line       TEXT NOT NULL
);
CREATE INDEX audit_checkpoints_by_trail ON audit_checkpoints(tenant_id, after);

-- The signed certificate of each tenant's deletion.
CREATE TABLE tenant_deletions (
    tenant_id       TEXT PRIMARY KEY REFERENCES tenants(id),
    deleted_at      INTEGER NOT NULL,
    keys_destroyed  TEXT NOT NULL,          -- JSON array of key ids
    objects         INTEGER NOT NULL,
    certificate     TEXT NOT NULL
);
