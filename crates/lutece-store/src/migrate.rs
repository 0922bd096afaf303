//! Embedded schema migrations, applied in order at start, each in its own transaction.

use sqlx::SqlitePool;

/// Every migration, oldest first. Never edit one that has shipped: add the next.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_deployments.sql")),
    (3, include_str!("../migrations/0003_token_usage.sql")),
    (4, include_str!("../migrations/0004_tenant_limits.sql")),
    (
        5,
        include_str!("../migrations/0005_key_limits_budgets_projects.sql"),
    ),
    (6, include_str!("../migrations/0006_gpu_quotas.sql")),
    (7, include_str!("../migrations/0007_sovereign_data.sql")),
];

pub(crate) async fn run(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    let applied: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(pool)
            .await?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, strftime('%s','now') * 1000)")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}
