//! The inference API from a fresh `lutece up`: the default model is fetched, served, and used
//! through the official OpenAI Python SDK.

use std::process::Command;
use std::time::Duration;

use crate::model_sources::ModelMirror;
use crate::platform::{Platform, eventually, finished, json};

const MODEL: &str = "smollm2-135m-instruct";
const EMBEDDING_MODEL: &str = "all-minilm-l6-v2";

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_and_mistral_sdks_talk_to_the_default_models() {
    // A model mirror over HTTPS, whose certificate authority the platform is given.
    let mirror = ModelMirror::start(&crate::platform::scratch("inference-mirror"));
    let platform = Platform::start_with_env(
        "inference",
        &["--models"],
        &[
            ("LUTECE_CA_FILE", mirror.ca.to_str().unwrap()),
            ("HF_ENDPOINT", &mirror.url),
        ],
    );
    let http = reqwest::Client::new();
    let models_url = format!("{}/v1/models", platform.url);
    // The first start fetches the models from PyPI and starts their workers.
    eventually(
        "the default models to be served",
        Duration::from_secs(300),
        || async {
            let response = http
                .get(&models_url)
                .bearer_auth(&platform.admin_key)
                .send()
                .await
                .ok()?;
            let body: serde_json::Value = response.json().await.ok()?;
            let ids: Vec<&str> = body["data"]
                .as_array()?
                .iter()
                .filter_map(|m| m["id"].as_str())
                .collect();
            (ids.contains(&MODEL) && ids.contains(&EMBEDDING_MODEL)).then_some(())
        },
    )
    .await;
    // Without a key: OpenAI's 401 shape.
    let response = http.get(&models_url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");

    // A tenant held to one request a minute, for the SDK's 429.
    let limited = platform.cli(&["tenants", "create", "limited"]);
    assert!(limited.status.success());
    let set = platform.cli(&["tenants", "limits", "limited", "--rpm", "1"]);
    assert!(
        String::from_utf8_lossy(&set.stdout)
            .contains("limited: 1 requests/min, unlimited tokens/min, unlimited tokens/month"),
        "{set:?}"
    );
    let limited_key = platform
        .admin()
        .create_key(&lutece_api::CreateKey {
            tenant: Some("limited".into()),
            name: None,
            role: None,
        })
        .await
        .unwrap()
        .key;

    // A key that may use one token a month, for the SDK's insufficient_quota.
    let budget_key = platform
        .admin()
        .create_key(&lutece_api::CreateKey {
            tenant: None,
            name: Some("budgeted".into()),
            role: None,
        })
        .await
        .unwrap();
    let set = platform.cli(&[
        "keys",
        "limits",
        &budget_key.info.id,
        "--monthly-tokens",
        "1",
    ]);
    assert!(set.status.success(), "{set:?}");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/openai_sdk.py");
    let output = Command::new("python3")
        .args([
            script,
            &platform.url,
            &platform.admin_key,
            MODEL,
            EMBEDDING_MODEL,
            &limited_key,
            &budget_key.key,
        ])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the openai SDK checks failed (is `pip install openai` done?):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // The mistralai SDK, on Mistral's dialect of the same API.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/mistral_sdk.py");
    let output = Command::new("python3")
        .args([
            script,
            &platform.url,
            &platform.admin_key,
            MODEL,
            EMBEDDING_MODEL,
        ])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the mistralai SDK checks failed (is `pip install mistralai` done?):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    tokens_are_metered_and_limited_per_key(&platform).await;
    deployments_are_scheduled_restarted_and_private(&platform).await;
    crate::models::models_are_imported_checked_and_served(&platform).await;
    crate::model_sources::models_are_fetched_from_urls_and_hubs(&platform, &mirror).await;
}

/// A tenant's own deployment: placed by the scheduler as replica jobs, routed to when healthy,
/// restarted when a replica dies, scaled, private to its tenant, and gone when deleted.
async fn deployments_are_scheduled_restarted_and_private(platform: &Platform) {
    let admin = platform.admin();
    let http = reqwest::Client::new();
    let chat = |key: String, model: &'static str| {
        let http = http.clone();
        let url = format!("{}/v1/chat/completions", platform.url);
        async move {
            let response = http
                .post(url)
                .bearer_auth(key)
                .json(&serde_json::json!({
                    "model": model,
                    "messages": [{"role": "user", "content": "Hi"}],
                    "max_tokens": 4,
                }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let created = json(&platform.cli(&[
        "deploy",
        "create",
        "--model",
        MODEL,
        "--name",
        "private-smol",
        "--replicas",
        "2",
        "--cpus",
        "0.25",
        "--memory",
        "512Mi",
        "--wait",
        "--output",
        "json",
    ]));
    assert_eq!(
        (created["ready"].as_u64(), created["shared"].as_bool()),
        (Some(2), Some(false))
    );
    let (status, body) = chat(platform.admin_key.clone(), "private-smol").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "private-smol");

    // Another tenant sees the shared default model, not this one.
    admin.create_tenant("beta").await.unwrap();
    let beta_key = admin
        .create_key(&lutece_api::CreateKey {
            tenant: Some("beta".into()),
            name: None,
            role: None,
        })
        .await
        .unwrap()
        .key;
    let (status, body) = chat(beta_key.clone(), "private-smol").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &serde_json::json!("model_not_found"))
    );
    assert_eq!(chat(beta_key.clone(), MODEL).await.0, 200);
    let beta = platform.client(&beta_key);
    assert!(beta.deployment("private-smol").await.is_err());
    assert!(beta.list_deployments().await.unwrap().is_empty());

    // Kill one replica's server: its job fails, a new replica replaces it and becomes ready.
    let victim = created["replica_jobs"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shim: i32 = std::fs::read_to_string(
        platform
            .data_dir
            .join(format!("agent/tasks/{victim}.0/shim.pid")),
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let worker: i32 = std::fs::read_to_string(format!("/proc/{shim}/task/{shim}/children"))
        .unwrap()
        .split_whitespace()
        .next()
        .expect("the shim has started the worker")
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let failed = finished(&admin, &victim).await;
    assert_eq!(failed.state, "failed");
    eventually(
        "a replacement replica",
        Duration::from_secs(120),
        || async {
            let d = admin.deployment("private-smol").await.ok()?;
            (d.ready == 2 && d.replica_jobs.iter().all(|r| r.job_id != victim)).then_some(())
        },
    )
    .await;

    // Scale down, then delete: the replicas stop and the model is gone from /v1.
    admin.scale_deployment("private-smol", 1).await.unwrap();
    eventually("one replica left", Duration::from_secs(60), || async {
        let d = admin.deployment("private-smol").await.ok()?;
        (d.replica_jobs.len() == 1 && d.ready == 1).then_some(())
    })
    .await;
    let last = admin.deployment("private-smol").await.unwrap().replica_jobs[0]
        .job_id
        .clone();
    admin.delete_deployment("private-smol").await.unwrap();
    assert_eq!(finished(&admin, &last).await.state, "cancelled");
    eventually(
        "the model to leave /v1",
        Duration::from_secs(10),
        || async {
            (chat(platform.admin_key.clone(), "private-smol").await.0 == 404).then_some(())
        },
    )
    .await;
    assert_eq!(
        chat(platform.admin_key.clone(), MODEL).await.0,
        200,
        "the shared one stays"
    );
}

/// Every answer's tokens are metered against the key and model, streamed ones included, and a
/// stream that did not ask for usage does not get the usage chunk the gateway asked for.
async fn tokens_are_metered_and_limited_per_key(platform: &Platform) {
    let admin = platform.admin();
    let created = admin
        .create_key(&lutece_api::CreateKey {
            tenant: None,
            name: Some("metered".into()),
            role: None,
        })
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", platform.url);
    let request = |stream: bool| {
        http.post(&url)
            .bearer_auth(&created.key)
            .json(&serde_json::json!({
                "model": MODEL,
                "messages": [{"role": "user", "content": "Count to ten."}],
                "max_tokens": 4,
                "stream": stream,
            }))
    };
    let plain: serde_json::Value = request(false).send().await.unwrap().json().await.unwrap();
    let prompt = plain["usage"]["prompt_tokens"].as_u64().unwrap();
    let completion = plain["usage"]["completion_tokens"].as_u64().unwrap();
    let streamed = request(true).send().await.unwrap().text().await.unwrap();
    assert!(streamed.ends_with("data: [DONE]\n\n"), "{streamed}");
    assert!(
        !streamed.contains("\"usage\":{"),
        "usage only when asked: {streamed}"
    );

    let row = eventually(
        "the tokens to be recorded",
        Duration::from_secs(10),
        || async {
            let rows = admin.token_usage().await.ok()?;
            rows.into_iter()
                .find(|r| r.key_id == created.info.id && r.requests == 2)
        },
    )
    .await;
    assert_eq!(
        (row.model.as_str(), row.tenant.as_str()),
        (MODEL, "default")
    );
    assert_eq!(row.prompt_tokens, 2 * prompt, "the same prompt twice");
    assert!(
        (completion + 1..=completion + 4).contains(&row.completion_tokens),
        "{row:?}"
    );
    // Embeddings are metered too: prompt tokens only.
    let embedded: serde_json::Value = http
        .post(format!("{}/v1/embeddings", platform.url))
        .bearer_auth(&created.key)
        .json(&serde_json::json!({"model": EMBEDDING_MODEL, "input": ["one", "two words"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let embedding_tokens = embedded["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(embedding_tokens, 3 + 4, "[CLS] … [SEP] around each input");
    let row = eventually(
        "the embedding tokens to be recorded",
        Duration::from_secs(10),
        || async {
            let rows = admin.token_usage().await.ok()?;
            rows.into_iter()
                .find(|r| r.key_id == created.info.id && r.model == EMBEDDING_MODEL)
        },
    )
    .await;
    assert_eq!(
        (row.requests, row.prompt_tokens, row.completion_tokens),
        (1, embedding_tokens, 0)
    );
    let text = stdout_of(&platform.cli(&["usage", "--tokens", "--output", "json"]));
    assert!(text.contains(&created.info.id), "{text}");

    // A client that hangs up mid-stream is metered for what was generated until then (the
    // built-in engine reports usage so far in every chunk; the gateway takes it out again).
    let quitter = admin
        .create_key(&lutece_api::CreateKey {
            tenant: None,
            name: Some("quitter".into()),
            role: None,
        })
        .await
        .unwrap();
    let mut response = http
        .post(&url)
        .bearer_auth(&quitter.key)
        .json(&serde_json::json!({
            "model": MODEL,
            "messages": [{"role": "user", "content": "Write a long poem about the sea."}],
            "max_tokens": 48,
            "stream": true,
        }))
        .send()
        .await
        .unwrap();
    // Hang up after a few chunks of text.
    let mut seen = String::new();
    while seen.matches("data: ").count() < 4 {
        let chunk = response.chunk().await.unwrap().expect("more chunks");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!seen.contains("\"usage\""), "usage only when asked: {seen}");
    drop(response);
    let row = eventually(
        "the abandoned stream to be metered",
        Duration::from_secs(20),
        || async {
            let rows = admin.token_usage().await.ok()?;
            rows.into_iter().find(|r| r.key_id == quitter.info.id)
        },
    )
    .await;
    assert!(
        row.requests == 1 && row.prompt_tokens > 0 && row.completion_tokens > 0,
        "{row:?}"
    );

    // Projects: the openai SDK's `project=` (the OpenAI-Project header) is metered apart.
    let rows = eventually(
        "the SDK's project to be recorded",
        Duration::from_secs(10),
        || async {
            let rows = admin.token_usage().await.ok()?;
            rows.iter()
                .any(|r| r.project == "sdk-project" && r.requests >= 1)
                .then_some(rows)
        },
    )
    .await;
    assert!(
        rows.iter()
            .filter(|r| r.key_id == created.info.id)
            .all(|r| r.project == "default"),
        "{rows:?}"
    );
    let response = request(false)
        .header("OpenAI-Project", "not a project")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("OpenAI-Project")),
        "{body}"
    );

    // One key held to a request a minute: its own limit answers, naming the key; the
    // tenant's other keys are not held back.
    let id = created.info.id.as_str();
    let set = platform.cli(&["keys", "limits", id, "--rpm", "1"]);
    assert!(set.status.success(), "{set:?}");
    let shown = stdout_of(&platform.cli(&["keys", "limits", id]));
    assert!(
        shown.contains("1 requests/min, unlimited tokens/min, unlimited tokens/month"),
        "{shown}"
    );
    assert_eq!(request(false).send().await.unwrap().status(), 200);
    let refused = request(false).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("1 requests per minute for this key")),
        "{body}"
    );
    let other = http
        .post(&url)
        .bearer_auth(&platform.admin_key)
        .json(&serde_json::json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);

    // A revoked key stops working on /v1 at once, though the gateway had just used it.
    admin.revoke_key(id).await.unwrap();
    let response = request(false).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

fn stdout_of(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
