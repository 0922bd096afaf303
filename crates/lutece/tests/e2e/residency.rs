//! Residency through the platform: a tenant's policy keeps its data off storage locations, its
//! jobs off nodes, and its inference requests off replicas, in jurisdictions the policy does
//! not allow; each refusal says why, and the first two are in the tenant's audit trail.

use crate::platform::{Platform, eventually, json, scratch, stderr};
use crate::sovereignty::{canary_file, files_under, key_for, upload_as};
use lutece_api::{CreateDeployment, JobSpec, Quantity, ResourceRequest, Role};
use lutece_client::Method;
use std::path::PathBuf;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn residency_refuses_writes_and_placements_outside_the_policy() {
    let base = scratch("residency-stores");
    let storage = format!(
        "paris=file://{}@FR,virginia=file://{}@US",
        base.join("paris").display(),
        base.join("virginia").display()
    );
    // The only node stands in the US.
    let platform = Platform::start(
        "residency",
        &["--storage", &storage, "--jurisdiction", "US"],
    );
    let admin = platform.admin();
    admin.create_tenant("gaul").await.unwrap();
    let gaul_key = key_for(&admin, "gaul", Role::Admin).await;
    let set = platform.cli(&["tenants", "residency", "gaul", "--allow", "FR"]);
    assert!(set.status.success(), "{}", stderr(&set));
    let file = canary_file(&base, "data.txt", "RESIDENT", 5_000);
    let path = file.to_str().unwrap();

    let refused = platform.cli_as(
        &gaul_key,
        &[
            "files",
            "upload",
            path,
            "--purpose",
            "fine-tune",
            "--location",
            "virginia",
        ],
    );
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("US"), "{}", stderr(&refused));
    assert_eq!(files_under(&base.join("virginia")), Vec::<PathBuf>::new());
    let id = upload_as(&platform, &gaul_key, path, "fine-tune");
    let stored = platform
        .client(&gaul_key)
        .raw(Method::GET, &format!("/v1/files/{id}"), None)
        .await
        .unwrap()
        .1;
    assert!(stored.contains("\"jurisdiction\":\"FR\""), "{stored}");

    let gaul = platform.client(&gaul_key);
    let job = gaul
        .submit_job(&JobSpec {
            command: vec!["true".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let reason = eventually("a residency reason", Duration::from_secs(20), || async {
        let job = gaul.job(&job.id).await.ok()?;
        job.reason.filter(|r| r.contains("runs only in"))
    })
    .await;
    assert!(reason.contains("FR"), "{reason}");

    let report = platform.cli(&["residency", "report", "--tenant", "gaul", "-o", "json"]);
    let report = json(&report);
    assert_eq!(report["data"][0]["location"], "paris", "{report}");
    assert_eq!(report["data"][0]["allowed"], true, "{report}");
    assert_eq!(report["workloads"][0]["state"], "queued", "{report}");

    // Both refusals are in the tenant's own audit trail.
    let trail = base.join("gaul.audit");
    let export = platform.cli_as(
        &gaul_key,
        &["audit", "export", "--output", trail.to_str().unwrap()],
    );
    assert!(export.status.success(), "{}", stderr(&export));
    let text = std::fs::read_to_string(&trail).unwrap();
    assert!(text.contains("residency.refused write"), "{text}");
    let placement = eventually(
        "the placement refusal in the log",
        Duration::from_secs(10),
        || async {
            let export = platform.cli_as(
                &gaul_key,
                &["audit", "export", "--output", trail.to_str().unwrap()],
            );
            let text = std::fs::read_to_string(&trail).ok()?;
            (export.status.success() && text.contains("residency.refused placement"))
                .then_some(text)
        },
    )
    .await;
    assert!(placement.contains(&job.id));
    let verified = platform.cli_as(
        &gaul_key,
        &["audit", "verify", "--file", trail.to_str().unwrap()],
    );
    assert!(verified.status.success(), "{}", stderr(&verified));
    let _ = std::fs::remove_dir_all(&base);
}

/// An OpenAI-compatible server in a few lines: `/health`, and one fixed chat completion.
const ECHO_ENGINE: &str = r#"
import http.server, json, os
ANSWER = json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": "echo",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "bonjour"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}).encode()
class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, body):
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply(b"{}")
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.reply(ANSWER)
    def log_message(self, *args):
        pass
address = (os.environ["LUTECE_NODE_ADDRESS"], int(os.environ["PORT"]))
http.server.ThreadingHTTPServer(address, Handler).serve_forever()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn inference_is_served_only_where_the_tenant_allows() {
    // The only node, and so the shared model's replica, stands in the US.
    let platform = Platform::start("inference-residency", &["--jurisdiction", "US"]);
    let admin = platform.admin();
    admin
        .create_deployment(&CreateDeployment {
            name: Some("echo".into()),
            command: Some(vec!["python3".into(), "-c".into(), ECHO_ENGINE.into()]),
            replicas: Some(1),
            resources: ResourceRequest {
                cpus: Some(Quantity("100m".into())),
                memory: Some(Quantity("64Mi".into())),
                gpus_per_node: None,
            },
            shared: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    admin.create_tenant("gaul").await.unwrap();
    admin.create_tenant("yankee").await.unwrap();
    let gaul = platform.client(&key_for(&admin, "gaul", Role::Admin).await);
    let yankee = platform.client(&key_for(&admin, "yankee", Role::Admin).await);
    let set = platform.cli(&["tenants", "residency", "gaul", "--allow", "EU"]);
    assert!(set.status.success(), "{}", stderr(&set));
    let ask = r#"{"model": "echo", "messages": [{"role": "user", "content": "salut"}]}"#;
    // A tenant without a policy is served once the replica is up.
    eventually(
        "the echo replica to answer",
        Duration::from_secs(60),
        || async {
            let (status, _) = yankee
                .raw(Method::POST, "/v1/chat/completions", Some(ask.into()))
                .await
                .ok()?;
            (status == 200).then_some(())
        },
    )
    .await;
    let (status, body) = gaul
        .raw(Method::POST, "/v1/chat/completions", Some(ask.into()))
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("residency"), "{body}");
    // Nor is the model listed to it.
    let (_, listed) = gaul.raw(Method::GET, "/v1/models", None).await.unwrap();
    assert!(!listed.contains("\"echo\""), "{listed}");
    // Allowed in the US, it is served there.
    let set = platform.cli(&["tenants", "residency", "gaul", "--allow", "EU,US"]);
    assert!(set.status.success(), "{}", stderr(&set));
    let (status, body) = gaul
        .raw(Method::POST, "/v1/chat/completions", Some(ask.into()))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("bonjour"), "{body}");
    let (_, listed) = gaul.raw(Method::GET, "/v1/models", None).await.unwrap();
    assert!(listed.contains("\"echo\""), "{listed}");
}
