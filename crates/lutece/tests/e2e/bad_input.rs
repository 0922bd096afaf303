//! Bad input gets a 4xx with a JSON body that says what and where, or a CLI message and a
//! non-zero exit; never a panic, and nothing already stored changes.

use crate::platform::{BIN, Platform, stderr};
use lutece_client::Method;
use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_refused_clearly_and_change_nothing() {
    let platform = Platform::start("bad-input", &[]);
    let admin = platform.admin();
    let before = admin.list_jobs(None, 1000).await.unwrap().len();

    // (body, expected field or None, words the message must contain)
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        ("{not json", None, "not valid JSON"),
        ("", None, "empty"),
        ("[]", None, "invalid type"),
        (r#"{"command": "ls"}"#, Some("command"), "invalid type"),
        (
            r#"{"command": ["true"], "colour": "red"}"#,
            None,
            "unknown field `colour`",
        ),
        (r#"{"command": []}"#, Some("command"), "is empty"),
        (
            r#"{"command": ["no-such-program-anywhere"]}"#,
            Some("command[0]"),
            "no program",
        ),
        (
            r#"{"command": ["true"], "resources": {"cpus": "-1"}}"#,
            Some("resources.cpus"),
            "not a quantity",
        ),
        (
            r#"{"command": ["true"], "resources": {"cpus": 0}}"#,
            Some("resources.cpus"),
            "more than 0",
        ),
        (
            r#"{"command": ["true"], "resources": {"memory": "999999Ti"}}"#,
            Some("resources.memory"),
            "too large",
        ),
        (
            r#"{"command": ["true"], "resources": {"memory": true}}"#,
            Some("resources.memory"),
            "quantity",
        ),
        (
            r#"{"command": ["true"], "resources": {"gpus_per_node": -2}}"#,
            Some("resources.gpus_per_node"),
            "invalid value",
        ),
        (
            r#"{"command": ["true"], "resources": {"gpus_per_node": 99999}}"#,
            Some("resources.gpus_per_node"),
            "limit",
        ),
        (
            r#"{"command": ["true"], "nodes": 100000}"#,
            Some("nodes"),
            "from 1 to",
        ),
        (
            r#"{"command": ["true"], "nodes": 0}"#,
            Some("nodes"),
            "from 1 to",
        ),
        (
            r#"{"command": ["true"], "priority": 5000}"#,
            Some("priority"),
            "from -1000",
        ),
        (
            r#"{"command": ["true"], "env": {"RANK": "9"}}"#,
            Some("env.RANK"),
            "set by lutece",
        ),
        (
            r#"{"command": ["true"], "env": {"1BAD": "x"}}"#,
            Some("env.1BAD"),
            "variable name",
        ),
        (
            r#"{"command": ["true"], "project": "Not A Name"}"#,
            Some("project"),
            "lowercase",
        ),
    ];
    let long_name = format!(r#"{{"command": ["true"], "name": "{}"}}"#, "a".repeat(300));
    let mut all = cases.clone();
    all.push((long_name.as_str(), Some("name"), "characters long"));
    for (body, field, words) in all {
        let (status, text) = admin
            .raw(Method::POST, "/api/v1/jobs", Some(body.to_owned()))
            .await
            .unwrap();
        assert_eq!(status, 400, "{body} → {status} {text}");
        let error: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        assert_eq!(error["error"]["code"], "invalid_request", "{text}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(words),
            "{body}: message {message:?} lacks {words:?}"
        );
        if let Some(field) = field {
            assert_eq!(
                error["error"]["field"].as_str(),
                Some(field),
                "{body} → {text}"
            );
        }
    }
    for (method, path, body, status) in [
        (Method::POST, "/api/v1/tenants", r#"{"name": "-bad-"}"#, 400),
        (
            Method::POST,
            "/api/v1/tenants",
            r#"{"name": "default"}"#,
            409,
        ),
        (Method::GET, "/api/v1/jobs?state=done", "", 400),
        (Method::GET, "/api/v1/jobs?limit=0", "", 400),
        (Method::GET, "/api/v1/nope", "", 404),
        (Method::GET, "/api/v1/jobs/job_missing", "", 404),
        (
            Method::PUT,
            "/api/v1/tenants/default/limits",
            r#"{"requests_per_minute": 0}"#,
            400,
        ),
        (
            Method::PUT,
            "/api/v1/tenants/default/limits",
            r#"{"rpm": 5}"#,
            400,
        ),
        (Method::PUT, "/api/v1/tenants/nobody/limits", "{}", 404),
        (
            Method::PUT,
            "/api/v1/tenants/default/limits",
            r#"{"monthly_token_budget": -5}"#,
            400,
        ),
        (Method::PUT, "/api/v1/keys/key_missing/limits", "{}", 404),
        (
            Method::POST,
            "/api/v1/deployments",
            r#"{"model": "no-such-model"}"#,
            400,
        ),
        (
            Method::POST,
            "/api/v1/deployments",
            r#"{"name": "x", "replicas": 65, "command": ["true"]}"#,
            400,
        ),
        (Method::POST, "/api/v1/deployments", r#"{"name": "x"}"#, 400),
        (
            Method::PATCH,
            "/api/v1/deployments/nothing",
            r#"{"replicas": 1}"#,
            404,
        ),
    ] {
        let body = (!body.is_empty()).then(|| body.to_owned());
        let (got, text) = admin.raw(method.clone(), path, body).await.unwrap();
        assert_eq!(got, status, "{method} {path} → {text}");
        let error: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"));
        assert!(error["error"]["message"].is_string());
    }
    assert_eq!(
        admin.list_jobs(None, 1000).await.unwrap().len(),
        before,
        "a refused request stored nothing"
    );
    assert_eq!(
        admin.health().await.unwrap()["status"],
        "ok",
        "still serving"
    );

    // The CLI: a message and a non-zero exit, with codes scripts can tell apart.
    let refused = platform.cli(&["jobs", "run", "--memory", "lots", "--", "true"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("(at resources.memory)"),
        "{}",
        stderr(&refused)
    );
    let bad_env = platform.cli(&["jobs", "run", "--env", "NOEQUALS", "--", "true"]);
    assert_eq!(bad_env.status.code(), Some(1));
    assert!(stderr(&bad_env).contains("NAME=VALUE"));
    let usage = Command::new(BIN)
        .args(["jobs", "frobnicate"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let unreachable = Command::new(BIN)
        .args(["jobs", "list"])
        .env("LUTECE_URL", "http://127.0.0.1:9")
        .env("LUTECE_API_KEY", "x")
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(3));
    assert!(stderr(&unreachable).contains("could not reach"));
    let help = Command::new(BIN)
        .args(["jobs", "run", "--help"])
        .output()
        .unwrap();
    assert!(
        help.status.success() && String::from_utf8_lossy(&help.stdout).contains("--gpus-per-node")
    );
}
