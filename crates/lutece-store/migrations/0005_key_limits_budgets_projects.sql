-- Monthly token budgets for tenants; the same limits for single keys; token usage per project.

ALTER TABLE tenants ADD COLUMN monthly_token_budget INTEGER;
ALTER TABLE api_keys ADD COLUMN requests_per_minute INTEGER;
ALTER TABLE api_keys ADD COLUMN tokens_per_minute INTEGER;
ALTER TABLE api_keys ADD COLUMN monthly_token_budget INTEGER;

CREATE TABLE token_usage_by_project (
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    project            TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    model              TEXT NOT NULL,
    minute             INTEGER NOT NULL,   -- the minute's start, ms since the epoch
    requests           INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, project, key_id, model, minute)
);
INSERT INTO token_usage_by_project
    SELECT tenant_id, 'default', key_id, model, minute, requests, prompt_tokens, completion_tokens
    FROM token_usage;
DROP TABLE token_usage;
ALTER TABLE token_usage_by_project RENAME TO token_usage;
-- Budgets sum a month of one tenant's (or one key's) minutes.
CREATE INDEX token_usage_by_minute ON token_usage(minute);
