-- Tokens metered by the inference gateway, summed per tenant, key, model and minute.

CREATE TABLE token_usage (
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    key_id             TEXT NOT NULL,
    model              TEXT NOT NULL,
    minute             INTEGER NOT NULL,   -- the minute's start, ms since the epoch
    requests           INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key_id, model, minute)
);
