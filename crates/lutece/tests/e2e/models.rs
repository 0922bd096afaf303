//! `lutece models import`, as an air-gapped operator uses it: a model file copied in, checked
//! (structure and digest) before it appears, then deployed like the default model. Bad files
//! and wrong digests are refused with the reason and leave nothing behind.

use std::path::Path;
use std::time::Duration;

use crate::platform::{Platform, eventually, json, stderr};

/// The default chat model's SHA-256 (as `lutece up` pins it).
const SMOL_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// Names under the models directory, hidden ones (imports in progress) included.
pub(crate) fn entries(models: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(models)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub(crate) async fn models_are_imported_checked_and_served(platform: &Platform) {
    let models = platform.data_dir.join("models");
    let smol = models.join("smollm2-135m-instruct.gguf");
    let minilm = models.join("all-minilm-l6-v2");
    let before = entries(&models);
    let scratch = platform.data_dir.with_file_name("import");
    std::fs::create_dir_all(&scratch).unwrap();

    // Refusals, each with its reason, none leaving a file behind.
    let refused = |args: &[&str], reason: &str| assert_refused(platform, &before, args, reason);
    let smol_path = smol.to_str().unwrap();
    let wrong = "0".repeat(64);
    refused(
        &[
            "models", "import", smol_path, "--name", "copy", "--sha256", &wrong,
        ],
        &format!("has SHA-256 {SMOL_SHA256}, not {wrong}"),
    );
    refused(
        &["models", "import", smol_path, "--sha256", "abc"],
        "not a SHA-256 digest",
    );
    let bytes = std::fs::read(&smol).unwrap();
    let truncated = scratch.join("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refused(
        &["models", "import", truncated.to_str().unwrap()],
        "is truncated: its tensors need",
    );
    let text = scratch.join("notes.gguf");
    std::fs::write(&text, "not a model at all").unwrap();
    refused(
        &["models", "import", text.to_str().unwrap()],
        "is not a GGUF file",
    );
    refused(
        &["models", "import", scratch.to_str().unwrap()],
        "a directory without config.json, model.safetensors, tokenizer.json",
    );
    refused(
        &["models", "import", smol_path, "--name", "Bad Name"],
        "contains 'B' at position 0; use lowercase letters, digits and '-' (at name)",
    );
    refused(
        &[
            "models",
            "import",
            smol_path,
            "--name",
            "smollm2-135m-instruct",
        ],
        "already exists",
    );
    // Read by the control plane, which says what is wrong with the path.
    refused(
        &["models", "import", "/no/such/model.gguf"],
        "cannot read /no/such/model.gguf: No such file or directory (os error 2) (at path)",
    );
    refused(
        &["models", "import", "/dev/null"],
        "is neither a file nor a directory",
    );
    // Only operators import.
    let created = json(&platform.cli(&["tenants", "create", "importer", "--output", "json"]));
    assert_eq!(created[0]["name"], "importer");
    let key = json(&platform.cli(&[
        "keys", "create", "--tenant", "importer", "--role", "admin", "--output", "json",
    ]))["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for args in [
        &["models", "import", smol_path, "--name", "mine"][..],
        &["models", "rm", "smollm2-135m-instruct"],
    ] {
        let output = platform.cli_as(&key, args);
        assert!(!output.status.success());
        assert!(stderr(&output).contains("operator"), "{}", stderr(&output));
    }
    // A path is not a model name: nothing outside the models directory is looked at (here
    // a .gguf file in the scratch folder).
    let outside = text
        .with_extension("")
        .display()
        .to_string()
        .replace('/', "%2F");
    let probe = reqwest::Client::new()
        .get(format!("{}/api/v1/models/{outside}", platform.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 404);

    // Imported with its digest checked, listed, served, and removed once nothing serves it.
    let imported = json(&platform.cli(&[
        "models",
        "import",
        smol_path,
        "--name",
        "imported-smol",
        "--sha256",
        SMOL_SHA256,
        "--output",
        "json",
    ]));
    assert_eq!(imported[0]["kind"], "generative");
    assert_eq!(imported[0]["sha256"], SMOL_SHA256);
    assert_eq!(imported[0]["bytes"], bytes.len());
    let embedding = json(&platform.cli(&[
        "models",
        "import",
        minilm.to_str().unwrap(),
        "--name",
        "minilm-copy",
        "--output",
        "json",
    ]));
    assert_eq!(embedding[0]["kind"], "embedding");
    let listed = json(&platform.cli(&["models", "list", "--output", "json"]));
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "all-minilm-l6-v2",
            "imported-smol",
            "minilm-copy",
            "smollm2-135m-instruct"
        ]
    );
    let deployed = json(&platform.cli(&[
        "deploy",
        "create",
        "--model",
        "imported-smol",
        "--cpus",
        "0.25",
        "--memory",
        "512Mi",
        "--wait",
        "--output",
        "json",
    ]));
    assert_eq!(deployed["ready"], 1);
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("{}/v1/completions", platform.url))
        .bearer_auth(&platform.admin_key)
        .json(
            &serde_json::json!({"model": "imported-smol", "prompt": "The sky is", "max_tokens": 4}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let output = platform.cli(&["models", "rm", "imported-smol"]);
    assert!(
        stderr(&output).contains("served by the deployments default/imported-smol"),
        "{}",
        stderr(&output)
    );
    assert!(
        platform
            .cli(&["deploy", "delete", "imported-smol"])
            .status
            .success()
    );
    for name in ["imported-smol", "minilm-copy"] {
        let output = platform.cli(&["models", "rm", name]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    eventually(
        "the imported model to leave",
        Duration::from_secs(10),
        || async { (entries(&models) == before).then_some(()) },
    )
    .await;
    let output = platform.cli(&["models", "rm", "imported-smol"]);
    assert!(stderr(&output).contains("not found"), "{}", stderr(&output));
}

/// `lutece ARGS` fails saying `reason`, and the models directory holds what it held `before`.
pub(crate) fn assert_refused(platform: &Platform, before: &[String], args: &[&str], reason: &str) {
    let output = platform.cli(args);
    assert!(!output.status.success(), "{args:?} was accepted");
    assert!(
        stderr(&output).contains(reason),
        "{args:?}: {}",
        stderr(&output)
    );
    let models = platform.data_dir.join("models");
    assert_eq!(entries(&models), before, "{args:?} left something behind");
}
