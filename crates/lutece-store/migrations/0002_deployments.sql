-- Model deployments: long-running replicas placed by the scheduler like any job, and the
-- address by which the control plane and other nodes reach a node.

ALTER TABLE nodes ADD COLUMN address TEXT;

CREATE TABLE deployments (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,          -- the model id clients send to /v1
    model         TEXT,                   -- the model it serves; NULL for an external engine
    project       TEXT NOT NULL,
    command       TEXT NOT NULL,          -- JSON array of strings: what each replica runs
    cpus_milli    INTEGER NOT NULL,
    memory_bytes  INTEGER NOT NULL,
    gpus          INTEGER NOT NULL,
    replicas      INTEGER NOT NULL,
    shared        INTEGER NOT NULL DEFAULT 0,  -- served to every tenant (platform models)
    created_at    INTEGER NOT NULL,
    deleted_at    INTEGER
);
CREATE UNIQUE INDEX deployments_by_name ON deployments(tenant_id, name) WHERE deleted_at IS NULL;

-- Which job runs which replica. A replica that ends is replaced by a new job.
CREATE TABLE deployment_replicas (
    job_id         TEXT PRIMARY KEY REFERENCES jobs(id),
    deployment_id  TEXT NOT NULL REFERENCES deployments(id)
);
CREATE INDEX deployment_replicas_by_deployment ON deployment_replicas(deployment_id);
