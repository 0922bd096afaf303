-- The first schema of lutece. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX api_keys_by_tenant ON api_keys(tenant_id);
CREATE UNIQUE INDEX api_keys_by_hash ON api_keys(secret_hash);

CREATE TABLE join_tokens (
    id           TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE nodes (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    hostname         TEXT NOT NULL,
    rack             TEXT,
    cpus_milli       INTEGER NOT NULL,
    memory_bytes     INTEGER NOT NULL,
    gpus             TEXT NOT NULL,          -- JSON array of GPUs
    credential_hash  TEXT NOT NULL,
    registered_at    INTEGER NOT NULL,
    last_seen_at     INTEGER NOT NULL
);

CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    project           TEXT NOT NULL,
    name              TEXT NOT NULL,
    command           TEXT NOT NULL,         -- JSON array of strings
    env               TEXT NOT NULL,         -- JSON object
    cpus_milli        INTEGER NOT NULL,
    memory_bytes      INTEGER NOT NULL,
    gpus_per_node     INTEGER NOT NULL,
    nodes             INTEGER NOT NULL,
    priority          INTEGER NOT NULL,
    state             TEXT NOT NULL,
    reason            TEXT,
    exit_code         INTEGER,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    scheduled_at      INTEGER,
    started_at        INTEGER,
    finished_at       INTEGER
);
CREATE INDEX jobs_by_tenant ON jobs(tenant_id, created_at);
CREATE INDEX jobs_by_state ON jobs(state);

CREATE TABLE tasks (
    job_id            TEXT NOT NULL REFERENCES jobs(id),
    rank              INTEGER NOT NULL,
    node_id           TEXT NOT NULL REFERENCES nodes(id),
    gpus              TEXT NOT NULL,         -- JSON array of GPU indices on the node
    state             TEXT NOT NULL,
    pid               INTEGER,
    exit_code         INTEGER,
    reason            TEXT,
    cpu_seconds_used  REAL NOT NULL DEFAULT 0,
    started_at        INTEGER,
    finished_at       INTEGER,
    PRIMARY KEY (job_id, rank)
);
CREATE INDEX tasks_by_node ON tasks(node_id, state);

CREATE TABLE usage_records (
    job_id            TEXT PRIMARY KEY REFERENCES jobs(id),
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    project           TEXT NOT NULL,
    gpu_seconds       REAL NOT NULL,
    cpu_seconds       REAL NOT NULL,
    cpu_seconds_used  REAL NOT NULL,
    recorded_at       INTEGER NOT NULL
);
CREATE INDEX usage_by_tenant ON usage_records(tenant_id, project);
