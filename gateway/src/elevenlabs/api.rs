//! The ElevenLabs REST API, at a configurable base URL (residency hosts, and fakes in tests).

use callmesh_runtime::metrics::SendObserved;
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
        // Dots alone would be read as "this" or "the parent" directory even encoded.
        if conversation_id.is_empty() || conversation_id.bytes().all(|b| b == b'.') {
            return Ok(None);
        }
        let url = format!(
            "{}/v1/convai/conversations/{}",
            self.base_url,
            path_segment(conversation_id)
        );
        let response = self
            .http
            .get(url)
            .header("xi-api-key", key.expose())
            .send_observed("elevenlabs", "conversations")
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

/// `text` as one URL path segment: every byte but letters, digits, `-`, `_`, `.` and `~`
/// percent-encoded, so `/`, `?` and `#` cannot leave the segment.
fn path_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
