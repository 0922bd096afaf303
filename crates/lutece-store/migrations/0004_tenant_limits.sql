-- Rate limits of a tenant's inference requests; NULL is unlimited.

ALTER TABLE tenants ADD COLUMN requests_per_minute INTEGER;
ALTER TABLE tenants ADD COLUMN tokens_per_minute INTEGER;
