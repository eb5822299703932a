//! ElevenLabs' REST API: outbound agent calls over Twilio, and speech-to-text.

use callmesh_runtime::metrics::SendObserved;
use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::ProviderError;

const PROVIDER: &str = "elevenlabs";

#[derive(Clone)]
pub struct ElevenLabsApi {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    /// Full URL of the speech-to-text endpoint; transcription is off without it.
    stt_url: Option<String>,
    stt_model: String,
}

/// `{success, message, conversation_id, callSid}`.
#[derive(Debug, Clone, Deserialize)]
pub struct OutboundCall {
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default, rename = "callSid", alias = "call_sid")]
    pub call_sid: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Transcription {
    pub text: String,
    #[serde(default)]
    pub language_code: Option<String>,
}

impl ElevenLabsApi {
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        stt_url: Option<String>,
        stt_model: String,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        ElevenLabsApi {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            stt_url,
            stt_model,
        }
    }

    fn key(&self) -> Result<&str, ProviderError> {
        self.api_key
            .as_deref()
            .ok_or(ProviderError::NotConfigured("ELEVENLABS_API_KEY"))
    }

    /// `POST /v1/convai/twilio/outbound-call`. An HTTP error, `success: false` or a null
    /// `conversation_id` all mean the call did not start.
    pub async fn start_call(
        &self,
        agent_id: &str,
        agent_phone_number_id: &str,
        to_number: &str,
        dynamic_variables: &HashMap<String, String>,
    ) -> Result<OutboundCall, ProviderError> {
        let key = self.key()?;
        let body = json!({
            "agent_id": agent_id,
            "agent_phone_number_id": agent_phone_number_id,
            "to_number": to_number,
            "conversation_initiation_client_data": {"dynamic_variables": dynamic_variables},
        });
        let response = self
            .http
            .post(format!("{}/v1/convai/twilio/outbound-call", self.base_url))
            .header("xi-api-key", key)
            .json(&body)
            .send_observed("elevenlabs", "outbound_call")
            .await
            .map_err(|e| ProviderError::from_transport(PROVIDER, e))?;
        let status = response.status();
        if let Some(busy) = ProviderError::busy(PROVIDER, status, response.headers()) {
            return Err(busy);
        }
        let text = response.text().await.unwrap_or_default();
        let parsed: Option<OutboundCall> = serde_json::from_str(&text).ok();
        match parsed {
            Some(call) if status.is_success() && call.success && call.conversation_id.is_some() => {
                Ok(call)
            }
            Some(call) => Err(ProviderError::Rejected {
                provider: PROVIDER,
                code: status.as_u16().to_string(),
                message: call
                    .message
                    .unwrap_or_else(|| "the call did not start".to_owned()),
                http_status: status.as_u16(),
            }),
            None => Err(ProviderError::Rejected {
                provider: PROVIDER,
                code: status.as_u16().to_string(),
                message: text.chars().take(300).collect(),
                http_status: status.as_u16(),
            }),
        }
    }

    /// Transcribes audio with the configured speech-to-text endpoint.
    pub async fn transcribe(
        &self,
        audio: Vec<u8>,
        content_type: &str,
    ) -> Result<Transcription, ProviderError> {
        let url = self
            .stt_url
            .as_deref()
            .ok_or(ProviderError::NotConfigured("SPEECH_TO_TEXT_URL"))?;
        let key = self.key()?;
        let file = reqwest::multipart::Part::bytes(audio)
            .file_name("recording")
            .mime_str(content_type)
            .map_err(|e| ProviderError::NotSent {
                provider: PROVIDER,
                message: e.to_string(),
            })?;
        let form = reqwest::multipart::Form::new()
            .text("model_id", self.stt_model.clone())
            .part("file", file);
        let response = self
            .http
            .post(url)
            .header("xi-api-key", key)
            .multipart(form)
            .send_observed("elevenlabs", "speech_to_text")
            .await
            .map_err(|e| ProviderError::from_transport(PROVIDER, e))?;
        let status = response.status();
        if let Some(busy) = ProviderError::busy(PROVIDER, status, response.headers()) {
            return Err(busy);
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(ProviderError::Rejected {
                provider: PROVIDER,
                code: status.as_u16().to_string(),
                message: text.chars().take(300).collect(),
                http_status: status.as_u16(),
            });
        }
        response.json().await.map_err(|e| ProviderError::Unknown {
            provider: PROVIDER,
            message: format!("unreadable transcription: {e}"),
        })
    }
}
