//! Inference limits of tenants and keys, and metered tokens.

use super::*;
use lutece_core::residency::ResidencyPolicy;

fn key(id: &str, tenant: &str, hash: &str) -> KeyRow {
    KeyRow {
        id: id.into(),
        tenant_id: format!("ten_{tenant}"),
        tenant_name: tenant.into(),
        name: id.into(),
        role: "member".into(),
        secret_hash: hash.into(),
        created_at: 1,
        revoked_at: None,
    }
}

fn usage(tenant: &str, project: &str, key: &str, minute: i64, prompt: u64) -> TokenUsageRow {
    TokenUsageRow {
        tenant_id: format!("ten_{tenant}"),
        tenant_name: String::new(),
        project: project.into(),
        key_id: key.into(),
        model: "m".into(),
        minute,
        requests: 1,
        prompt_tokens: prompt,
        completion_tokens: 2 * prompt,
    }
}

#[tokio::test]
async fn token_usage_adds_up_per_project_key_and_model_and_stays_per_tenant() {
    let (store, _) = seeded("tokens").await;
    store
        .add_token_usage(&[
            usage("acme", "default", "k1", 60_000, 5),
            usage("acme", "default", "k1", 120_000, 1),
            usage("acme", "research", "k1", 120_000, 7),
        ])
        .await
        .unwrap();
    store
        .add_token_usage(&[
            usage("acme", "default", "k1", 60_000, 4),
            usage("globex", "default", "k2", 60_000, 9),
        ])
        .await
        .unwrap();
    let acme = store.token_usage_summary(Some("ten_acme")).await.unwrap();
    let summed: Vec<_> = acme
        .iter()
        .map(|r| {
            (
                r.tenant_name.as_str(),
                r.project.as_str(),
                r.requests,
                r.prompt_tokens,
                r.completion_tokens,
            )
        })
        .collect();
    assert_eq!(
        summed,
        [
            ("acme", "default", 3, 10, 20),
            ("acme", "research", 1, 7, 14)
        ]
    );
    assert_eq!(store.token_usage_summary(None).await.unwrap().len(), 3);
    // What budgets count: prompt and completion tokens from a minute on, per tenant and key.
    let mut since = store.tokens_since(120_000).await.unwrap();
    since.sort();
    assert_eq!(since, [("ten_acme".to_owned(), "k1".to_owned(), 24)]);
    assert_eq!(store.tokens_since(0).await.unwrap().len(), 2);
}

#[tokio::test]
async fn limits_are_unlimited_until_set_and_survive_a_reopen() {
    let (store, path) = seeded("limits").await;
    store.create_key(&key("k1", "acme", "h1")).await.unwrap();
    assert_eq!(
        store.tenant_limits("ten_acme").await.unwrap(),
        LimitsRow::default()
    );
    let tenant = LimitsRow {
        requests_per_minute: Some(10),
        tokens_per_minute: Some(5_000),
        monthly_token_budget: Some(1_000_000),
    };
    let own = LimitsRow {
        requests_per_minute: Some(2),
        ..LimitsRow::default()
    };
    store.set_tenant_limits("ten_acme", &tenant).await.unwrap();
    store.set_key_limits("k1", &own).await.unwrap();
    for missing in [
        store.set_tenant_limits("ten_nope", &own).await,
        store.set_key_limits("k_nope", &own).await,
    ] {
        assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    }
    store.close().await;
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.tenant_limits("ten_acme").await.unwrap(), tenant);
    assert_eq!(store.key_limits("k1").await.unwrap(), own);
    assert_eq!(
        store.tenant_limits("ten_globex").await.unwrap(),
        LimitsRow::default()
    );
    // The gateway reads a key, its limits and its tenant's at once.
    let read = store.gateway_key("h1").await.unwrap().unwrap();
    assert_eq!(
        read,
        GatewayKey {
            key_id: "k1".into(),
            tenant_id: "ten_acme".into(),
            revoked: false,
            key: own,
            tenant,
            residency: ResidencyPolicy::anywhere(),
        }
    );
    assert_eq!(store.gateway_key("nope").await.unwrap(), None);
    // And its tenant's residency policy.
    store
        .set_residency("ten_acme", &ResidencyPolicy::parse(["FR", "EU"]).unwrap())
        .await
        .unwrap();
    let read = store.gateway_key("h1").await.unwrap().unwrap();
    assert_eq!(read.residency.allowed(), ["FR", "EU"]);
}
