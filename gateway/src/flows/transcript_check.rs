//! A completed call whose transcript has not arrived gets it from the ElevenLabs API, and then
//! goes through the same recipe as a delivered transcript.

use serde_json::Value;
use tonic::Code;

use callmesh_proto::context::v1 as context_pb;

use super::{FlowError, Flows, Handled};
use crate::elevenlabs::api::ApiError;
use crate::elevenlabs::payload::Transcription;

impl Flows {
    pub(super) async fn transcript_check(&self, body: &[u8]) -> Result<Handled, FlowError> {
        let conversation_id = String::from_utf8_lossy(body).trim().to_owned();
        let request = context_pb::GetTranscriptRequest {
            conversation_id: conversation_id.clone(),
        };
        match self.clients.context.clone().get_transcript(request).await {
            Ok(_) => return Ok(Handled::Ignored("transcript already stored".into())),
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => return Err(status.into()),
        }
        let conversation = match self.api.conversation(&conversation_id).await {
            Ok(Some(conversation)) => conversation,
            Ok(None) => {
                return Ok(Handled::Ignored(
                    "ElevenLabs does not know the conversation".into(),
                ));
            }
            Err(ApiError::NotConfigured) => {
                return Ok(Handled::Ignored(
                    "ELEVENLABS_API_KEY is not set; cannot fetch the transcript".into(),
                ));
            }
            Err(error) => return Err(FlowError::Retryable(error.to_string())),
        };
        match conversation.get("status").and_then(Value::as_str) {
            Some("done") => {}
            Some("failed") => {
                return Ok(Handled::Ignored(
                    "the conversation failed; no transcript".into(),
                ));
            }
            other => {
                return Err(FlowError::Retryable(format!(
                    "transcript not ready yet (status {})",
                    other.unwrap_or("unknown")
                )));
            }
        }
        let call: Transcription = serde_json::from_value(conversation)
            .map_err(|e| FlowError::Permanent(format!("ElevenLabs conversation: {e}")))?;
        tracing::info!(%conversation_id, "transcript fetched from the ElevenLabs API");
        self.finished_call(call).await
    }
}
