//! The inference API from a fresh `lutece up`: the default model is fetched, served, and used
//! through the official OpenAI Python SDK.

use std::process::Command;
use std::time::Duration;

use crate::platform::{Platform, eventually};

const MODEL: &str = "smollm2-135m-instruct";

#[tokio::test]
async fn the_openai_sdk_talks_to_the_default_model() {
    let platform = Platform::start("inference", &["--models"]);
    let http = reqwest::Client::new();
    let models_url = format!("{}/v1/models", platform.url);
    // The first start fetches the model from PyPI and starts its worker.
    eventually(
        "the default model to be served",
        Duration::from_secs(300),
        || async {
            let response = http
                .get(&models_url)
                .bearer_auth(&platform.admin_key)
                .send()
                .await
                .ok()?;
            let body: serde_json::Value = response.json().await.ok()?;
            body["data"]
                .as_array()?
                .iter()
                .any(|m| m["id"] == MODEL)
                .then_some(())
        },
    )
    .await;
    // Without a key: OpenAI's 401 shape.
    let response = http.get(&models_url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/openai_sdk.py");
    let output = Command::new("python3")
        .args([script, &platform.url, &platform.admin_key, MODEL])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the openai SDK checks failed (is `pip install openai` done?):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
