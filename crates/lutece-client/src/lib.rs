//! A typed client of lutece's HTTP API, used by the CLI, the tests, and remote agents (it
//! implements [`lutece_api::ControlApi`] over HTTP).

mod control;
mod data;

pub use control::HttpControl;
pub use data::{ByteStream, FileUpload};
pub use reqwest::{Method, StatusCode};

use lutece_api::{
    ApiKey, CreateDeployment, CreateKey, CreateTenant, CreatedKey, Deployment, ErrorBody, GpuQuota,
    ImportModel, InferenceLimits, Job, JobSpec, Node, PlatformModel, ScaleDeployment, Tenant,
    TokenUsage, UsageRow, WhoAmI,
};
use reqwest::{RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{} ({status})", body.error.message)]
    Api { status: u16, body: ErrorBody },
    /// The server could not be reached, or the connection broke.
    #[error("could not reach {url}: {message}")]
    Transport { url: String, message: String },
    /// An answer that streams (a file's content, an audit export) broke off before its end:
    /// the server failed, or the connection dropped, while it was sent.
    #[error("the answer from {url} broke off: {message}")]
    Interrupted { url: String, message: String },
    /// The server answered something this client does not understand.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A join token for a new agent.
#[derive(Debug, Clone, serde::Deserialize, Serialize)]
pub struct JoinToken {
    pub id: String,
    pub token: String,
}

#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    /// `base` such as `http://127.0.0.1:7433`; `key` the bearer API key.
    pub fn new(base: &str, key: Option<String>) -> Result<Client> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Transport {
                url: base.to_owned(),
                message: e.to_string(),
            })?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    async fn send(&self, builder: RequestBuilder) -> Result<Response> {
        let response = builder.send().await.map_err(|e| self.transport(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| self.transport(e))?;
        let body = serde_json::from_str(&text).unwrap_or_else(|_| ErrorBody {
            error: lutece_api::ErrorDetail {
                code: "unknown".into(),
                message: text,
                field: None,
            },
        });
        Err(ClientError::Api { status, body })
    }

    fn transport(&self, error: reqwest::Error) -> ClientError {
        ClientError::Transport {
            url: self.base.clone(),
            message: causes(&error),
        }
    }

    async fn json<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T> {
        let response = self.send(builder).await?;
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.json(self.request(Method::GET, path)).await
    }

    pub async fn health(&self) -> Result<serde_json::Value> {
        self.get("/api/v1/health").await
    }

    pub async fn whoami(&self) -> Result<WhoAmI> {
        self.get("/api/v1/whoami").await
    }

    pub async fn create_tenant(&self, name: &str) -> Result<Tenant> {
        self.post(
            "/api/v1/tenants",
            &CreateTenant {
                name: name.to_owned(),
            },
        )
        .await
    }

    /// Sets a tenant's inference limits (operator); None is no limit.
    pub async fn set_tenant_limits(
        &self,
        tenant: &str,
        limits: &InferenceLimits,
    ) -> Result<InferenceLimits> {
        let path = format!("/api/v1/tenants/{}/limits", encode(tenant));
        self.json(self.request(Method::PUT, &path).json(limits))
            .await
    }

    /// Sets a tenant's GPU quota for jobs (operator).
    pub async fn set_gpu_quota(&self, tenant: &str, quota: &GpuQuota) -> Result<GpuQuota> {
        let path = format!("/api/v1/tenants/{}/gpu-quota", encode(tenant));
        self.json(self.request(Method::PUT, &path).json(quota))
            .await
    }

    pub async fn gpu_quota(&self, tenant: &str) -> Result<GpuQuota> {
        self.get(&format!("/api/v1/tenants/{}/gpu-quota", encode(tenant)))
            .await
    }

    pub async fn tenant_limits(&self, tenant: &str) -> Result<InferenceLimits> {
        self.get(&format!("/api/v1/tenants/{}/limits", encode(tenant)))
            .await
    }

    /// Sets one key's inference limits (its tenant's admin); None is no limit.
    pub async fn set_key_limits(
        &self,
        key_id: &str,
        limits: &InferenceLimits,
    ) -> Result<InferenceLimits> {
        let path = format!("/api/v1/keys/{}/limits", encode(key_id));
        self.json(self.request(Method::PUT, &path).json(limits))
            .await
    }

    pub async fn key_limits(&self, key_id: &str) -> Result<InferenceLimits> {
        self.get(&format!("/api/v1/keys/{}/limits", encode(key_id)))
            .await
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.get("/api/v1/tenants").await
    }

    pub async fn create_key(&self, request: &CreateKey) -> Result<CreatedKey> {
        self.post("/api/v1/keys", request).await
    }

    pub async fn list_keys(&self) -> Result<Vec<ApiKey>> {
        self.get("/api/v1/keys").await
    }

    pub async fn revoke_key(&self, id: &str) -> Result<()> {
        self.send(self.request(Method::DELETE, &format!("/api/v1/keys/{}", encode(id))))
            .await?;
        Ok(())
    }

    pub async fn create_deployment(&self, request: &CreateDeployment) -> Result<Deployment> {
        self.post("/api/v1/deployments", request).await
    }

    pub async fn list_deployments(&self) -> Result<Vec<Deployment>> {
        self.get("/api/v1/deployments").await
    }

    pub async fn deployment(&self, name: &str) -> Result<Deployment> {
        self.get(&format!("/api/v1/deployments/{}", encode(name)))
            .await
    }

    pub async fn scale_deployment(&self, name: &str, replicas: u32) -> Result<Deployment> {
        let path = format!("/api/v1/deployments/{}", encode(name));
        self.json(
            self.request(Method::PATCH, &path)
                .json(&ScaleDeployment { replicas }),
        )
        .await
    }

    pub async fn delete_deployment(&self, name: &str) -> Result<()> {
        let path = format!("/api/v1/deployments/{}", encode(name));
        self.send(self.request(Method::DELETE, &path)).await?;
        Ok(())
    }

    pub async fn import_model(&self, request: &ImportModel) -> Result<PlatformModel> {
        self.post("/api/v1/models", request).await
    }

    pub async fn list_models(&self) -> Result<Vec<PlatformModel>> {
        self.get("/api/v1/models").await
    }

    pub async fn remove_model(&self, name: &str) -> Result<()> {
        let path = format!("/api/v1/models/{}", encode(name));
        self.send(self.request(Method::DELETE, &path)).await?;
        Ok(())
    }

    pub async fn submit_job(&self, spec: &JobSpec) -> Result<Job> {
        self.post("/api/v1/jobs", spec).await
    }

    pub async fn list_jobs(&self, state: Option<&str>, limit: u32) -> Result<Vec<Job>> {
        let mut path = format!("/api/v1/jobs?limit={limit}");
        if let Some(state) = state {
            path.push_str(&format!("&state={}", encode(state)));
        }
        self.get(&path).await
    }

    pub async fn job(&self, id: &str) -> Result<Job> {
        self.get(&format!("/api/v1/jobs/{}", encode(id))).await
    }

    pub async fn cancel_job(&self, id: &str) -> Result<Job> {
        self.json(self.request(Method::POST, &format!("/api/v1/jobs/{}/cancel", encode(id))))
            .await
    }

    /// A job's output so far (`follow` false) or a stream of it until the job ends.
    pub async fn logs(&self, id: &str, rank: u32, follow: bool) -> Result<Response> {
        let path = format!(
            "/api/v1/jobs/{}/logs?rank={rank}&follow={follow}",
            encode(id)
        );
        self.send(self.request(Method::GET, &path)).await
    }

    /// One page of a job's output so far: the bytes from `offset`, at most `limit` of them
    /// (the server's default and cap, 8 MiB, when None). Read until a page comes back empty.
    pub async fn logs_page(
        &self,
        id: &str,
        rank: u32,
        offset: u64,
        limit: Option<u64>,
    ) -> Result<LogPage> {
        let mut path = format!(
            "/api/v1/jobs/{}/logs?rank={rank}&offset={offset}",
            encode(id)
        );
        if let Some(limit) = limit {
            path.push_str(&format!("&limit={limit}"));
        }
        let response = self.send(self.request(Method::GET, &path)).await?;
        let next = response
            .headers()
            .get(NEXT_OFFSET_HEADER)
            .map(|value| {
                value
                    .to_str()
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| ClientError::Decode(format!("{NEXT_OFFSET_HEADER}: {value:?}")))
            })
            .transpose()?;
        let data = response
            .bytes()
            .await
            .map_err(|e| self.transport(e))?
            .to_vec();
        Ok(LogPage {
            next_offset: next.unwrap_or(offset + data.len() as u64),
            data,
        })
    }

    pub async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.get("/api/v1/nodes").await
    }

    pub async fn create_join_token(&self) -> Result<JoinToken> {
        self.json(self.request(Method::POST, "/api/v1/nodes/join-tokens"))
            .await
    }

    pub async fn usage(&self) -> Result<Vec<UsageRow>> {
        self.get("/api/v1/usage").await
    }

    /// Tokens metered by the inference gateway, per tenant, key and model.
    pub async fn token_usage(&self) -> Result<Vec<TokenUsage>> {
        self.get("/api/v1/usage/tokens").await
    }

    /// A raw request, for tests that probe the API with arbitrary paths and bodies.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(StatusCode, String)> {
        let mut builder = self.request(method, path);
        if let Some(body) = body {
            builder = builder
                .header("content-type", "application/json")
                .body(body);
        }
        let response = builder.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.transport(e))?;
        Ok((status, text))
    }
}

/// The header of a log read that tells where the next page starts.
const NEXT_OFFSET_HEADER: &str = "lutece-next-offset";

/// A page of a task's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    pub data: Vec<u8>,
    /// The offset to read the next page from.
    pub next_offset: u64,
}

/// Whether `base` names a server on this machine: `localhost` or a loopback address, as the
/// HTTP client itself parses the URL (so `http://127.0.0.1@example.com` is not local).
pub fn is_loopback_url(base: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `error` and each error that caused it, from the outermost.
fn causes(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message = format!("{message}: {inner}");
        source = inner.source();
    }
    message
}

/// Percent-encodes a path segment or query value.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machine_is_loopback() {
        for local in [
            "http://127.0.0.1:7433",
            "http://localhost:7433/",
            "http://LOCALHOST",
            "https://[::1]:7433",
            "http://127.0.0.2:80",
        ] {
            assert!(is_loopback_url(local), "{local}");
        }
        for remote in [
            "http://10.0.0.5:7433",
            "https://lutece.example.com",
            "http://localhost.example.com:7433",
            "http://127.0.0.1@example.com/",
            "http://example.com\\@127.0.0.1/",
            "http://[::ffff:8.8.8.8]:7433",
            "not a url",
            "",
        ] {
            assert!(!is_loopback_url(remote), "{remote}");
        }
    }
}
