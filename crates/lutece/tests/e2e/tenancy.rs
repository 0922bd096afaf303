//! Isolation: for every endpoint, another tenant's objects do not exist for the caller; roles
//! are enforced; missing, wrong and revoked keys are refused.

use crate::platform::{Platform, finished};
use lutece_api::{CreateKey, JobSpec, Role};
use lutece_client::{Client, Method};

async fn key_for(admin: &Client, tenant: &str, role: Role) -> String {
    let request = CreateKey {
        tenant: Some(tenant.into()),
        name: None,
        role: Some(role),
    };
    admin.create_key(&request).await.unwrap().key
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_denies_other_tenants_objects() {
    let platform = Platform::start("tenancy", &[]);
    let admin = platform.admin();
    admin.create_tenant("alpha").await.unwrap();
    admin.create_tenant("beta").await.unwrap();
    let alpha = platform.client(&key_for(&admin, "alpha", Role::Admin).await);
    let beta = platform.client(&key_for(&admin, "beta", Role::Admin).await);

    let spec = JobSpec {
        command: vec!["echo".into(), "secret-of-alpha".into()],
        ..Default::default()
    };
    let job = alpha.submit_job(&spec).await.unwrap();
    finished(&alpha, &job.id).await;
    let alpha_key = alpha
        .create_key(&CreateKey::default())
        .await
        .unwrap()
        .info
        .id;
    // A deployment with no replicas: an object of alpha's that costs nothing.
    alpha
        .create_deployment(&lutece_api::CreateDeployment {
            name: Some("alpha-model".into()),
            command: Some(vec!["sleep".into(), "600".into()]),
            replicas: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();

    // Direct access to alpha's objects by id: each must answer exactly like a missing id.
    let probes: Vec<(Method, String, Option<String>)> = vec![
        (Method::GET, format!("/api/v1/jobs/{}", job.id), None),
        (
            Method::POST,
            format!("/api/v1/jobs/{}/cancel", job.id),
            None,
        ),
        (Method::GET, format!("/api/v1/jobs/{}/logs", job.id), None),
        (
            Method::GET,
            format!("/api/v1/jobs/{}/logs?follow=true", job.id),
            None,
        ),
        (Method::DELETE, format!("/api/v1/keys/{alpha_key}"), None),
        (
            Method::GET,
            format!("/api/v1/keys/{alpha_key}/limits"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/keys/{alpha_key}/limits"),
            Some(r#"{"requests_per_minute": 1}"#.to_owned()),
        ),
        (Method::GET, "/api/v1/tenants/alpha".to_owned(), None),
        (Method::GET, "/api/v1/tenants/alpha/limits".to_owned(), None),
        (
            Method::GET,
            "/api/v1/tenants/alpha/gpu-quota".to_owned(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/deployments/alpha-model".to_owned(),
            None,
        ),
        (
            Method::PATCH,
            "/api/v1/deployments/alpha-model".to_owned(),
            Some(r#"{"replicas": 3}"#.to_owned()),
        ),
        (
            Method::DELETE,
            "/api/v1/deployments/alpha-model".to_owned(),
            None,
        ),
        (
            Method::POST,
            "/api/v1/keys".to_owned(),
            Some(r#"{"tenant":"alpha","role":"member"}"#.to_owned()),
        ),
    ];
    for (method, path, body) in &probes {
        let (status, text) = beta.raw(method.clone(), path, body.clone()).await.unwrap();
        let missing_path = path
            .replace(&job.id, "job_0000000000000000")
            .replace(&alpha_key, "key_0000000000000000")
            .replace("alpha", "gamma");
        let (missing_status, missing_text) = beta
            .raw(
                method.clone(),
                &missing_path,
                body.clone().map(|b| b.replace("alpha", "gamma")),
            )
            .await
            .unwrap();
        assert_eq!(status, 404, "{method} {path} answered {status}: {text}");
        assert_eq!(missing_status, 404, "{method} {missing_path}");
        let same_shape = |t: &str| {
            t.replace(&job.id, "ID")
                .replace(&alpha_key, "ID")
                .replace("alpha", "NAME")
                .replace("job_0000000000000000", "ID")
                .replace("key_0000000000000000", "ID")
                .replace("gamma", "NAME")
        };
        assert_eq!(
            same_shape(&text),
            same_shape(&missing_text),
            "{method} {path} tells a foreign id from a missing one"
        );
        assert!(!text.contains("secret-of-alpha"));
    }
    // Listings never include alpha's objects.
    assert!(
        beta.list_jobs(None, 1000)
            .await
            .unwrap()
            .iter()
            .all(|j| j.tenant == "beta")
    );
    assert!(
        beta.list_keys()
            .await
            .unwrap()
            .iter()
            .all(|k| k.tenant == "beta")
    );
    assert!(
        beta.list_tenants()
            .await
            .unwrap()
            .iter()
            .all(|t| t.name == "beta")
    );
    assert!(beta.list_deployments().await.unwrap().is_empty());
    assert!(
        beta.token_usage()
            .await
            .unwrap()
            .iter()
            .all(|u| u.tenant == "beta")
    );
    assert!(
        beta.usage()
            .await
            .unwrap()
            .iter()
            .all(|u| u.tenant == "beta")
    );

    // Nothing changed for alpha: its job is intact and its key still works.
    assert_eq!(alpha.job(&job.id).await.unwrap().state, "succeeded");
    assert!(
        alpha
            .list_keys()
            .await
            .unwrap()
            .iter()
            .any(|k| k.id == alpha_key && k.revoked_at.is_none())
    );
    assert_eq!(alpha.deployment("alpha-model").await.unwrap().replicas, 0);
    // Only an operator sets rate limits, even a tenant admin's own.
    let (status, _) = beta
        .raw(
            Method::PUT,
            "/api/v1/tenants/beta/limits",
            Some(r#"{"requests_per_minute": 1000000}"#.into()),
        )
        .await
        .unwrap();
    assert_eq!(status, 403);
    // And only an operator sets GPU quotas; a tenant reads its own.
    let (status, _) = beta
        .raw(
            Method::PUT,
            "/api/v1/tenants/beta/gpu-quota",
            Some(r#"{"guaranteed_gpus": 1000}"#.into()),
        )
        .await
        .unwrap();
    assert_eq!(status, 403);
    assert_eq!(
        beta.gpu_quota("beta").await.unwrap(),
        lutece_api::GpuQuota::default()
    );
    // A tenant admin limits its own tenant's keys; a member reads its own key's limits only.
    let member_key = beta.create_key(&CreateKey::default()).await.unwrap();
    let limits = lutece_api::InferenceLimits {
        requests_per_minute: Some(5),
        ..Default::default()
    };
    beta.set_key_limits(&member_key.info.id, &limits)
        .await
        .unwrap();
    let member_client = platform.client(&member_key.key);
    assert_eq!(
        member_client.key_limits(&member_key.info.id).await.unwrap(),
        limits
    );
    assert_eq!(
        member_client
            .set_key_limits(&member_key.info.id, &Default::default())
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    let admins_key = beta.whoami().await.unwrap().key_id;
    assert_eq!(
        member_client
            .key_limits(&admins_key)
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );

    // Roles: members cannot manage keys; only operators create tenants or mint operators.
    let member = platform.client(&key_for(&admin, "beta", Role::Member).await);
    assert_eq!(member.list_keys().await.unwrap_err().status(), Some(403));
    assert_eq!(
        beta.create_tenant("delta").await.unwrap_err().status(),
        Some(403)
    );
    let escalate = CreateKey {
        tenant: None,
        name: None,
        role: Some(Role::Operator),
    };
    assert_eq!(
        beta.create_key(&escalate).await.unwrap_err().status(),
        Some(403)
    );
    assert_eq!(
        beta.create_join_token().await.unwrap_err().status(),
        Some(403)
    );

    // Keys: none, wrong, revoked.
    let anonymous = Client::new(&platform.url, None).unwrap();
    assert_eq!(
        anonymous.list_jobs(None, 10).await.unwrap_err().status(),
        Some(401)
    );
    assert_eq!(
        platform
            .client("lut_wrong")
            .list_jobs(None, 10)
            .await
            .unwrap_err()
            .status(),
        Some(401)
    );
    let doomed = beta.create_key(&CreateKey::default()).await.unwrap();
    let doomed_client = platform.client(&doomed.key);
    assert!(doomed_client.whoami().await.is_ok());
    beta.revoke_key(&doomed.info.id).await.unwrap();
    assert_eq!(
        doomed_client.whoami().await.unwrap_err().status(),
        Some(401)
    );

    // The operator sees every tenant's jobs.
    assert!(
        admin
            .list_jobs(None, 1000)
            .await
            .unwrap()
            .iter()
            .any(|j| j.id == job.id)
    );
}
