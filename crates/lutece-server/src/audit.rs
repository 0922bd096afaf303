//! The audit log in the server: every record is chained (by `lutece-vault`) and stored before
//! the action it records goes on; an action that cannot be recorded does not happen
//! ([`ApiError::AuditUnavailable`]). Signed checkpoints are stored every
//! [`CHECKPOINT_EVERY`] entries and when the server stops; an export ends with a checkpoint
//! signed from the chain as this process holds it, so rows changed in the database behind
//! its back are found by `lutece audit verify`.

mod middleware;

pub(crate) use middleware::audit_requests;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::now_ms;
use ed25519_dalek::SigningKey;
use lutece_api::Role;
use lutece_store::{AuditLine, Store, StoreError};
use lutece_vault::audit::{Chain, Record};
use std::collections::BTreeSet;

/// Entries between two stored checkpoints.
pub(crate) const CHECKPOINT_EVERY: u32 = 256;

pub(crate) struct Auditor {
    store: Store,
    signing: SigningKey,
    state: tokio::sync::Mutex<Chained>,
}

struct Chained {
    /// None after a failed write, until the chain is read back from the store.
    chain: Option<Chain>,
    since_checkpoint: u32,
    /// Tenants whose trails grew since the last checkpoint.
    touched: BTreeSet<String>,
}

/// Where a recorded entry stands in the log.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) seq: u64,
    pub(crate) hash: String,
}

impl Auditor {
    pub(crate) async fn open(store: Store, signing: SigningKey) -> Result<Auditor, StoreError> {
        let chain = resume(&store).await?;
        Ok(Auditor {
            store,
            signing,
            state: tokio::sync::Mutex::new(Chained {
                chain: Some(chain),
                since_checkpoint: 0,
                touched: BTreeSet::new(),
            }),
        })
    }

    pub(crate) fn public_key_hex(&self) -> String {
        hex::encode(self.signing.verifying_key().to_bytes())
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// Records what happened. On error nothing was recorded, and the caller must not act.
    pub(crate) async fn record(&self, record: Record) -> Result<Recorded, ApiError> {
        let mut state = self.state.lock().await;
        // Taken out while it changes: if anything below fails, or this call is dropped, the
        // next record reads the chain back from the store, which alone knows what was stored.
        let mut chain = match state.chain.take() {
            Some(chain) => chain,
            None => resume(&self.store).await.map_err(unavailable)?,
        };
        let line = chain
            .append(&record)
            .map_err(|_| ApiError::AuditUnavailable)?;
        let (seq, hash) = chain.position();
        let tseq = record.tenant.as_deref().map(|t| chain.trail_position(t));
        let stored = AuditLine {
            seq,
            tenant_id: record.tenant.clone(),
            tseq,
            line,
        };
        self.store
            .append_audit(&stored)
            .await
            .map_err(unavailable)?;
        state.chain = Some(chain);
        state.since_checkpoint += 1;
        if let Some(tenant) = record.tenant {
            state.touched.insert(tenant);
        }
        if state.since_checkpoint >= CHECKPOINT_EVERY {
            if let Err(error) = self.checkpoint_locked(&mut state).await {
                tracing::warn!(%error, "could not store an audit checkpoint");
            }
        }
        Ok(Recorded { seq, hash })
    }

    /// A record now, by `actor`, about `tenant`'s data.
    pub(crate) async fn note(
        &self,
        actor: &str,
        tenant: Option<&str>,
        action: &str,
        object: Option<&str>,
        result: &str,
    ) -> Result<Recorded, ApiError> {
        self.record(Record {
            at_ms: now_ms(),
            actor: actor.to_owned(),
            tenant: tenant.map(str::to_owned),
            action: action.to_owned(),
            object: object.map(str::to_owned),
            source: None,
            result: result.to_owned(),
        })
        .await
    }

    /// The chain, read back from the store when a failed write left it unknown.
    async fn known<'s>(&self, state: &'s mut Chained) -> Result<&'s Chain, ApiError> {
        if state.chain.is_none() {
            state.chain = Some(resume(&self.store).await.map_err(unavailable)?);
        }
        state.chain.as_ref().ok_or(ApiError::AuditUnavailable)
    }

    /// Records in `tenant`'s trail an operator's `action` (`read`, `delete`, `cancel`) on its
    /// data, before it happens; nothing for a caller acting on its own tenant's data (only an
    /// operator reaches another tenant's).
    pub(crate) async fn operator_acts(
        &self,
        caller: &Caller,
        tenant: &str,
        action: &str,
        object: &str,
    ) -> Result<(), ApiError> {
        if caller.role != Role::Operator || tenant == caller.tenant_id {
            return Ok(());
        }
        let action = format!("operator.{action}");
        self.note(&caller.key_id, Some(tenant), &action, Some(object), "ok")
            .await
            .map(drop)
    }

    /// The same for a listing (`what`) that holds data of `tenants`: one read in each trail.
    pub(crate) async fn operator_lists<'t>(
        &self,
        caller: &Caller,
        tenants: impl IntoIterator<Item = &'t str>,
        what: &str,
    ) -> Result<(), ApiError> {
        for tenant in tenants.into_iter().collect::<BTreeSet<_>>() {
            self.operator_acts(caller, tenant, "read", what).await?;
        }
        Ok(())
    }

    /// Stores checkpoints over the log and every trail that grew: on stopping.
    pub(crate) async fn checkpoint(&self) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        if state.since_checkpoint == 0 {
            return Ok(());
        }
        self.known(&mut state).await?;
        self.checkpoint_locked(&mut state)
            .await
            .map_err(unavailable)
    }

    async fn checkpoint_locked(&self, state: &mut Chained) -> Result<(), StoreError> {
        let Some(chain) = &state.chain else {
            return Ok(());
        };
        let sign = |tenant: Option<&str>| {
            chain
                .checkpoint(&self.signing, tenant, false)
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        };
        self.store
            .append_audit_checkpoint(None, chain.position().0, &sign(None)?)
            .await?;
        for tenant in &state.touched {
            self.store
                .append_audit_checkpoint(
                    Some(tenant),
                    chain.trail_position(tenant),
                    &sign(Some(tenant))?,
                )
                .await?;
        }
        state.since_checkpoint = 0;
        state.touched.clear();
        Ok(())
    }

    /// The export of the whole log (`tenant` None) or of one tenant's trail, sealed: as it
    /// stood when the call began. The log is not held while the lines are read.
    pub(crate) async fn export(&self, tenant: Option<&str>) -> Result<String, ApiError> {
        let (upto, seal) = {
            let mut state = self.state.lock().await;
            let chain = self.known(&mut state).await?;
            let upto = match tenant {
                None => chain.position().0,
                Some(t) => chain.trail_position(t),
            };
            let seal = chain
                .checkpoint(&self.signing, tenant, true)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            (upto, seal)
        };
        let lines = self.store.audit_export_lines(tenant, upto).await?;
        let size = lines.iter().map(|l| l.len() + 1).sum::<usize>() + seal.len() + 1;
        let mut text = String::with_capacity(size);
        for line in lines.iter().chain(std::iter::once(&seal)) {
            text.push_str(line);
            text.push('\n');
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests;

async fn resume(store: &Store) -> Result<Chain, StoreError> {
    let heads = store.audit_heads().await?;
    Chain::resume(
        heads.last.as_deref(),
        heads.trails.iter().map(String::as_str),
    )
    .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn unavailable(error: StoreError) -> ApiError {
    tracing::error!(%error, "the audit log cannot be written");
    ApiError::AuditUnavailable
}
