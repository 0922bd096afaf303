//! The agent protocol over HTTP, for agents that run on another machine than the server.

use crate::{Client, ClientError};
use lutece_api::{
    ControlApi, ControlError, Heartbeat, HeartbeatReply, LogAck, LogChunk, RegisterNode,
    Registered, TaskReport,
};
use reqwest::Method;
use std::sync::RwLock;
use std::time::Duration;

/// A [`ControlApi`] that talks to a remote control plane. Registration presents the join
/// token; every later call the node credential it received.
pub struct HttpControl {
    client: Client,
    credential: RwLock<Option<String>>,
}

impl HttpControl {
    pub fn new(base: &str, join_token: Option<String>) -> Result<HttpControl, ClientError> {
        Ok(HttpControl {
            client: Client::new(base, join_token)?,
            credential: RwLock::new(None),
        })
    }

    fn node_client(&self) -> Client {
        let credential = self
            .credential
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Client {
            key: credential.or_else(|| self.client.key.clone()),
            ..self.client.clone()
        }
    }
}

fn to_control(error: ClientError) -> ControlError {
    match error {
        ClientError::Api { status, body } if status < 500 && status != 429 => {
            ControlError::Rejected {
                status,
                message: body.error.message,
            }
        }
        other => ControlError::Unavailable(other.to_string()),
    }
}

impl ControlApi for HttpControl {
    async fn register(&self, request: RegisterNode) -> Result<Registered, ControlError> {
        let registered: Registered = self
            .client
            .post("/api/v1/agent/register", &request)
            .await
            .map_err(to_control)?;
        *self.credential.write().unwrap_or_else(|p| p.into_inner()) =
            Some(registered.credential.clone());
        Ok(registered)
    }

    async fn heartbeat(&self, request: Heartbeat) -> Result<HeartbeatReply, ControlError> {
        let client = self.node_client();
        let timeout = Duration::from_millis(request.wait_ms) + Duration::from_secs(30);
        let builder = client
            .request(Method::POST, "/api/v1/agent/heartbeat")
            .json(&request)
            .timeout(timeout);
        client.json(builder).await.map_err(to_control)
    }

    async fn report(&self, report: TaskReport) -> Result<(), ControlError> {
        let client = self.node_client();
        let builder = client
            .request(Method::POST, "/api/v1/agent/report")
            .json(&report)
            .timeout(Duration::from_secs(30));
        client.send(builder).await.map_err(to_control)?;
        Ok(())
    }

    async fn append_log(&self, chunk: LogChunk) -> Result<LogAck, ControlError> {
        let client = self.node_client();
        let path = format!(
            "/api/v1/agent/logs/{}/{}?node_id={}&offset={}",
            crate::encode(&chunk.task.job_id),
            chunk.task.rank,
            crate::encode(&chunk.node_id),
            chunk.offset
        );
        let builder = client
            .request(Method::POST, &path)
            .body(chunk.data)
            .timeout(Duration::from_secs(60));
        client.json(builder).await.map_err(to_control)
    }
}
