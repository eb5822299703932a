//! The ElevenLabs REST API, at a configurable base URL (residency hosts, and fakes in tests).

use std::time::Duration;

use serde_json::Value;

use crate::secret::Secret;

#[derive(Clone)]
pub struct ElevenLabsApi {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("ELEVENLABS_API_KEY is not set")]
    NotConfigured,
    #[error("ElevenLabs API: {0}")]
    Transport(String),
    #[error("ElevenLabs API answered {status}: {body}")]
    Status { status: u16, body: String },
}

impl ElevenLabsApi {
    pub fn new(base_url: &str, api_key: Option<Secret>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        ElevenLabsApi {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
        }
    }

    /// `GET /v1/convai/conversations/{id}`: `None` when ElevenLabs does not know it.
    pub async fn conversation(&self, conversation_id: &str) -> Result<Option<Value>, ApiError> {
        let key = self.api_key.as_ref().ok_or(ApiError::NotConfigured)?;
        let url = format!(
            "{}/v1/convai/conversations/{conversation_id}",
            self.base_url
        );
        let response = self
            .http
            .get(url)
            .header("xi-api-key", key.expose())
            .send()
            .await
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ApiError::Status {
                status: status.as_u16(),
                body: body.chars().take(300).collect(),
            });
        }
        response
            .json()
            .await
            .map(Some)
            .map_err(|e| ApiError::Transport(e.to_string()))
    }
}
