//! Models fetched from a URL: `https://…` (or `http://…`, for a mirror without TLS) with the
//! SHA-256 the publisher lists, or a Hugging Face id `hf:ORG/REPO[@REVISION]/FILE` from the hub
//! or the mirror `HF_ENDPOINT` names, checked against the digest the hub sends for the file
//! (`X-Linked-Etag`) when none is given. The download is written into a staging folder of the
//! models directory, hashed on the way, and checked like any import before it appears.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use lutece_api::PlatformModel;
use lutece_core::validate_name;

use super::find;
use super::import::{Staged, Staging, import_download, internal, name_from_stem, parse_sha256};
use crate::error::ApiError;

/// The hub `hf:` ids resolve against unless `HF_ENDPOINT` names a mirror.
const HUGGING_FACE: &str = "https://huggingface.co";

/// Where a model comes from, once its source text is understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remote {
    pub(crate) url: reqwest::Url,
    /// The hub vouches for its files' digests: one need not be given.
    pub(crate) hub: bool,
    /// The last part of the path, which names the model by default.
    pub(crate) file_name: String,
}

/// Reads `https://…`, `http://…` or `hf:ORG/REPO[@REVISION]/PATH`.
pub(crate) fn parse(source: &str, hf_endpoint: Option<&str>) -> Result<Remote, ApiError> {
    let bad = |why: String| ApiError::invalid("url", why);
    if let Some(id) = source.strip_prefix("hf:") {
        let mut parts = id.splitn(3, '/');
        let (org, repo, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(org), Some(repo), Some(path)) if !org.is_empty() && !path.is_empty() => {
                (org, repo, path)
            }
            _ => {
                return Err(bad(format!(
                    "{source:?} is not a Hugging Face file: use hf:ORG/REPO[@REVISION]/FILE"
                )));
            }
        };
        let (repo, revision) = repo.split_once('@').unwrap_or((repo, "main"));
        // Names of letters, digits, '-', '_' and '.', never '.' or '..' (nor encoded ones).
        let plain = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        if ![org, repo, revision].into_iter().all(plain) || !path.split('/').all(plain) {
            return Err(bad(format!(
                "{source:?} is not a Hugging Face file id: its parts are letters, digits, '-', '_' and '.'"
            )));
        }
        let endpoint = hf_endpoint.unwrap_or(HUGGING_FACE).trim_end_matches('/');
        let text = format!("{endpoint}/{org}/{repo}/resolve/{revision}/{path}");
        let url = reqwest::Url::parse(&text).map_err(|e| {
            bad(format!(
                "{source:?} makes the URL {text:?}, which is not one: {e}"
            ))
        })?;
        return remote(url, true, source);
    }
    let url = reqwest::Url::parse(source).map_err(|e| bad(format!("{source:?}: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad(format!(
            "{source:?}: only https://, http:// and hf: sources can be fetched"
        )));
    }
    remote(url, false, source)
}

fn remote(url: reqwest::Url, hub: bool, source: &str) -> Result<Remote, ApiError> {
    let file_name = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid("url", format!("{source:?} names no file")))?;
    Ok(Remote {
        url,
        hub,
        file_name,
    })
}

/// Downloads `remote` into `staging`, hashing it; the digest it must have is `expected`, else
/// (from a hub) the one the hub sends.
pub(crate) async fn download(
    http: &reqwest::Client,
    remote: &Remote,
    expected: Option<String>,
    staging: Staging,
) -> Result<Staged, ApiError> {
    let url = remote.url.as_str();
    let failed = |why: String| ApiError::invalid("url", format!("cannot fetch {url}: {why}"));
    // Redirects are followed here, not by the client: a hub answers a large file's URL with a
    // redirect to its storage, and the file's digest and size come with that first answer.
    let mut at = remote.url.clone();
    let (mut vouched, mut declared) = (None, None);
    let mut redirects = 0;
    let response = loop {
        let response = http
            .get(at.clone())
            .send()
            .await
            .map_err(|e| failed(error_chain(&e)))?;
        if remote.hub && vouched.is_none() {
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim_matches('"').to_owned())
            };
            vouched = header("x-linked-etag").and_then(|v| parse_sha256(&v).ok());
            declared = header("x-linked-size").and_then(|v| v.parse::<u64>().ok());
        }
        if !response.status().is_redirection() {
            break response;
        }
        redirects += 1;
        let next = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| at.join(v).ok())
            .ok_or_else(|| failed("a redirect without a usable Location".to_owned()))?;
        // Never from https down to plain http.
        if redirects > 5 || (at.scheme() == "https" && next.scheme() != "https") {
            return Err(failed(format!("will not follow the redirect to {next}")));
        }
        at = next;
    };
    if !response.status().is_success() {
        return Err(failed(format!("the server answered {}", response.status())));
    }
    let declared = declared.or(response.content_length());
    let expected = expected.or(vouched).ok_or_else(|| {
        ApiError::invalid(
            "sha256",
            format!(
                "give the SHA-256 {url} must have{}: a download is checked before it is used",
                if remote.hub {
                    " (the hub sent none)"
                } else {
                    ""
                }
            ),
        )
    })?;
    let file = staging.path().join("model.gguf");
    let mut out = tokio::fs::File::create(&file).await.map_err(internal)?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| failed(format!("cut short: {}", error_chain(&e))))?;
        bytes += chunk.len() as u64;
        // A server that sends more than it announced is not trusted to ever stop.
        if declared.is_some_and(|size| bytes > size) {
            return Err(failed(format!(
                "more than the {} bytes announced",
                declared.unwrap_or(0)
            )));
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(internal)?;
    }
    out.sync_all().await.map_err(internal)?;
    Ok(Staged {
        staging,
        file,
        digest: hex::encode(hasher.finalize()),
        bytes,
        expected: Some(expected),
        origin: url.to_owned(),
        field: "url",
    })
}

/// Imports the GGUF file at `source` (a URL or `hf:` id) as model `name` (by default named
/// after the file), with `place` holding the models lock while it takes its name.
pub(crate) async fn import_url(
    models_dir: &Path,
    source: &str,
    name: Option<String>,
    sha256: Option<&str>,
    place: impl FnOnce(&dyn Fn() -> Result<(), ApiError>) -> Result<(), ApiError> + Send + 'static,
) -> Result<PlatformModel, ApiError> {
    let remote = parse(source, std::env::var("HF_ENDPOINT").ok().as_deref())?;
    let expected = sha256.map(parse_sha256).transpose()?;
    if expected.is_none() && !remote.hub {
        return Err(ApiError::invalid(
            "sha256",
            format!("give the SHA-256 {source} must have: a download is checked before it is used"),
        ));
    }
    let name = match name {
        Some(name) => name,
        None => {
            let stem = Path::new(&remote.file_name)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            name_from_stem(&stem).ok_or_else(|| {
                ApiError::invalid(
                    "name",
                    format!("cannot make a model name from {source}: give one"),
                )
            })?
        }
    };
    validate_name(&name).map_err(|e| ApiError::invalid("name", e.to_string()))?;
    if find(models_dir, &name).is_some() {
        return Err(ApiError::Conflict(format!("model {name} already exists")));
    }
    let http = client()?;
    let staging = {
        let (dir, name) = (models_dir.to_owned(), name.clone());
        tokio::task::spawn_blocking(move || Staging::create(&dir, &name))
            .await
            .map_err(|e| ApiError::Internal(format!("the import stopped: {e}")))??
    };
    let staged = download(&http, &remote, expected, staging).await?;
    let dir = models_dir.to_owned();
    tokio::task::spawn_blocking(move || import_download(&dir, &name, staged, place))
        .await
        .map_err(|e| ApiError::Internal(format!("the import stopped: {e}")))?
}

/// The client downloads use: no overall deadline (models are large) but a stalled connection
/// fails. Besides the system's certificate authorities it trusts those of the PEM file
/// `LUTECE_CA_FILE` names (a site's own, for an internal mirror).
fn client() -> Result<reqwest::Client, ApiError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60));
    if let Some(file) = std::env::var_os("LUTECE_CA_FILE") {
        let unusable = |why: String| {
            ApiError::Internal(format!(
                "LUTECE_CA_FILE={}: {why}",
                Path::new(&file).display()
            ))
        };
        let pem = std::fs::read(&file).map_err(|e| unusable(e.to_string()))?;
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| unusable(e.to_string()))?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build()
        .map_err(|e| ApiError::Internal(format!("cannot make an HTTP client: {e}")))
}

/// An error with its causes, which name what really went wrong (a certificate, a refusal).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_urls_or_hugging_face_ids() {
        let hf = parse(
            "hf:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smol.Q4.gguf",
            None,
        )
        .unwrap();
        assert_eq!(
            hf.url.as_str(),
            "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/resolve/main/smol.Q4.gguf"
        );
        assert!(hf.hub);
        assert_eq!(hf.file_name, "smol.Q4.gguf");
        let mirror = parse(
            "hf:org/repo@v1.0/sub/m.gguf",
            Some("http://mirror.lan:8080/"),
        )
        .unwrap();
        assert_eq!(
            mirror.url.as_str(),
            "http://mirror.lan:8080/org/repo/resolve/v1.0/sub/m.gguf"
        );
        let plain = parse("https://models.example.eu/m/x.gguf?download=1", None).unwrap();
        assert!(!plain.hub);
        assert_eq!(plain.file_name, "x.gguf");
        for bad in [
            "hf:org/repo",
            "hf:org//x.gguf",
            "hf:org/repo@/x.gguf",
            "hf:org/repo/../../etc/passwd",
            "hf:org/repo/%2e%2e/x.gguf",
            "hf:org/re po/x.gguf",
            "ftp://host/x.gguf",
            "file:///etc/passwd",
            "https://host/",
            "not a url",
        ] {
            assert!(parse(bad, None).is_err(), "{bad}");
        }
    }
}
