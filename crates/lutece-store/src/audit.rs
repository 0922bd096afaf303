//! The audit log's lines and checkpoints, stored as written. What they mean, and how they chain,
//! is `lutece-vault`'s business; here they are only kept in order and read back.

use crate::fleet::to_i64;
use crate::{Result, Store};

/// One entry line, by its place in the whole log and, for a tenant's, in its trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    pub seq: u64,
    pub tenant_id: Option<String>,
    pub tseq: Option<u64>,
    pub line: String,
}

/// The newest line of the log, and of each tenant's trail: where the chain resumes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditHeads {
    pub last: Option<String>,
    pub trails: Vec<String>,
}

impl Store {
    /// Appends one entry line. Fails (and stores nothing) if its place is already taken.
    pub async fn append_audit(&self, line: &AuditLine) -> Result<()> {
        sqlx::query("INSERT INTO audit_log (seq, tenant_id, tseq, line) VALUES (?, ?, ?, ?)")
            .bind(to_i64(line.seq))
            .bind(&line.tenant_id)
            .bind(line.tseq.map(to_i64))
            .bind(&line.line)
            .execute(&self.writer)
            .await
            .map_err(|e| crate::conflict_or(e, || format!("audit entry {}", line.seq)))?;
        Ok(())
    }

    /// Stores a signed checkpoint over the log (`tenant_id` None) or a trail, after its
    /// entry `after`.
    pub async fn append_audit_checkpoint(
        &self,
        tenant_id: Option<&str>,
        after: u64,
        line: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO audit_checkpoints (tenant_id, after, line) VALUES (?, ?, ?)")
            .bind(tenant_id)
            .bind(to_i64(after))
            .bind(line)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn audit_heads(&self) -> Result<AuditHeads> {
        let last: Option<String> =
            sqlx::query_scalar("SELECT line FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&self.reader)
                .await?;
        let trails: Vec<String> = sqlx::query_scalar(
            "SELECT line FROM audit_log a WHERE tenant_id IS NOT NULL AND tseq = \
             (SELECT MAX(tseq) FROM audit_log b WHERE b.tenant_id = a.tenant_id)",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(AuditHeads { last, trails })
    }

    /// The export's lines in order, without its sealing checkpoint: the whole log (`tenant_id`
    /// None) or one tenant's trail, up to its entry `upto`, each stored checkpoint of it after
    /// the entry it covers.
    pub async fn audit_export_lines(
        &self,
        tenant_id: Option<&str>,
        upto: u64,
    ) -> Result<Vec<String>> {
        let upto = to_i64(upto);
        let entries: Vec<(i64, String)> = match tenant_id {
            None => {
                sqlx::query_as("SELECT seq, line FROM audit_log WHERE seq <= ? ORDER BY seq")
                    .bind(upto)
                    .fetch_all(&self.reader)
                    .await?
            }
            Some(t) => sqlx::query_as(
                "SELECT tseq, line FROM audit_log WHERE tenant_id = ? AND tseq <= ? ORDER BY tseq",
            )
            .bind(t)
            .bind(upto)
            .fetch_all(&self.reader)
            .await?,
        };
        let checkpoints: Vec<(i64, String)> = sqlx::query_as(
            "SELECT after, line FROM audit_checkpoints WHERE tenant_id IS ? AND after <= ? \
             ORDER BY after, id",
        )
        .bind(tenant_id)
        .bind(upto)
        .fetch_all(&self.reader)
        .await?;
        let mut lines = Vec::with_capacity(entries.len() + checkpoints.len());
        let mut checkpoints = checkpoints.into_iter().peekable();
        // Checkpoints over nothing (a new log) come first.
        while let Some((_, line)) = checkpoints.next_if(|(after, _)| *after <= 0) {
            lines.push(line);
        }
        for (place, line) in entries {
            lines.push(line);
            while let Some((_, line)) = checkpoints.next_if(|(after, _)| *after <= place) {
                lines.push(line);
            }
        }
        lines.extend(checkpoints.map(|(_, line)| line));
        Ok(lines)
    }
}
