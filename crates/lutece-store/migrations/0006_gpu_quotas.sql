-- A tenant's share of the fleet's GPUs for jobs: what it is guaranteed, how much it may borrow
-- beyond that from the idle guarantees of its cohort, and its fair-share weight. A NULL
-- guarantee is no quota at all; a NULL borrowing limit is "what the cohort leaves idle"; a NULL
-- cohort is a cohort of its own.

ALTER TABLE tenants ADD COLUMN guaranteed_gpus INTEGER;
ALTER TABLE tenants ADD COLUMN gpu_borrow_limit INTEGER;
ALTER TABLE tenants ADD COLUMN gpu_cohort TEXT;
ALTER TABLE tenants ADD COLUMN fair_share_weight INTEGER NOT NULL DEFAULT 1;
