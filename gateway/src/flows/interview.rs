//! Interviews and re-runs: a finished interview call gets a hiring evaluation, and any stored
//! conversation can be read back (from callmesh, or from the ElevenLabs API when callmesh never
//! got its transcript) to be analysed again.

use serde_json::Value;
use tonic::Code;

use callmesh_proto::analysis::v1 as analysis_pb;
use callmesh_proto::common::v1 as common;
use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::telephony::v1 as telephony_pb;

use super::{FlowError, Flows};
use crate::elevenlabs::api::ApiError;
use crate::elevenlabs::payload::Transcription;

/// A conversation as callmesh (or ElevenLabs) knows it, ready to analyse again.
#[derive(Debug, Clone)]
pub(crate) struct StoredConversation {
    /// Empty when only ElevenLabs knew the conversation.
    pub organization_id: String,
    pub lead_id: String,
    pub turns: Vec<common::TranscriptTurn>,
    pub provider_analysis_json: String,
    pub duration_secs: u32,
}

/// Turns read back per request, and at most this many in all.
const PAGE: i32 = 500;
const MAX_TURNS: usize = 20_000;

impl Flows {
    /// The conversation's transcript from the context service, else from the ElevenLabs API;
    /// `None` when neither has it.
    pub(crate) async fn stored_conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Option<StoredConversation>, FlowError> {
        let request = context_pb::GetTranscriptRequest {
            conversation_id: conversation_id.to_owned(),
        };
        let transcript = match self.clients.context.clone().get_transcript(request).await {
            Ok(answer) => answer.into_inner().transcript.unwrap_or_default(),
            Err(status) if status.code() == Code::NotFound => {
                return self.conversation_from_elevenlabs(conversation_id).await;
            }
            Err(status) => return Err(status.into()),
        };
        let mut turns = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .clients
                .context
                .clone()
                .list_messages(context_pb::ListMessagesRequest {
                    lead_id: String::new(),
                    page: Some(common::PageRequest {
                        page_size: PAGE,
                        page_token: page_token.clone(),
                    }),
                    conversation_id: conversation_id.to_owned(),
                })
                .await?
                .into_inner();
            turns.extend(page.messages.into_iter().map(|m| common::TranscriptTurn {
                role: m.role,
                message: m.content,
                time_in_call_secs: 0.0,
            }));
            if page.next_page_token.is_empty() || turns.len() >= MAX_TURNS {
                break;
            }
            page_token = page.next_page_token;
        }
        let call = self
            .clients
            .telephony
            .clone()
            .get_call(telephony_pb::GetCallRequest {
                call_id: String::new(),
                call_sid: String::new(),
                conversation_id: conversation_id.to_owned(),
            })
            .await;
        let call = match call {
            Ok(answer) => answer.into_inner().call.unwrap_or_default(),
            Err(status) if status.code() == Code::NotFound => telephony_pb::Call::default(),
            Err(status) => return Err(status.into()),
        };
        // ElevenLabs' own verdict, as the first analysis received it.
        let provider_analysis_json = match self
            .clients
            .analysis
            .clone()
            .get_analysis(analysis_pb::GetAnalysisRequest {
                conversation_id: conversation_id.to_owned(),
                version: 1,
            })
            .await
        {
            Ok(answer) => answer
                .into_inner()
                .analysis
                .map(|a| a.provider_analysis_json)
                .unwrap_or_default(),
            Err(status) if status.code() == Code::NotFound => String::new(),
            Err(status) => return Err(status.into()),
        };
        Ok(Some(StoredConversation {
            organization_id: transcript.organization_id,
            lead_id: transcript.lead_id,
            turns,
            provider_analysis_json,
            duration_secs: call.duration_secs,
        }))
    }

    async fn conversation_from_elevenlabs(
        &self,
        conversation_id: &str,
    ) -> Result<Option<StoredConversation>, FlowError> {
        let conversation = match self.api.conversation(conversation_id).await {
            Ok(Some(conversation)) => conversation,
            Ok(None) | Err(ApiError::NotConfigured) => return Ok(None),
            Err(error) => return Err(FlowError::Retryable(error.to_string())),
        };
        let call: Transcription = serde_json::from_value(conversation)
            .map_err(|e| FlowError::Permanent(format!("ElevenLabs conversation: {e}")))?;
        tracing::info!(%conversation_id, "transcript read from the ElevenLabs API");
        Ok(Some(StoredConversation {
            organization_id: String::new(),
            lead_id: String::new(),
            turns: call.turns(),
            provider_analysis_json: call
                .analysis
                .as_ref()
                .filter(|a| a.is_object())
                .map(Value::to_string)
                .unwrap_or_default(),
            duration_secs: call.metadata.call_duration_secs.unwrap_or(0.0).max(0.0) as u32,
        }))
    }

    /// After a finished call: when it belongs to an interview (its `interview_session_id`
    /// variable, `linked`: the session linked to the conversation, which its analysis
    /// answered with, an interviewer agent, or `screening`: the analysis recognised a
    /// screening interview, intent `interview`), the candidate is evaluated. A named session
    /// that does not exist is logged, not retried.
    pub(super) async fn interview_after_call(
        &self,
        call: &Transcription,
        screening: bool,
        linked: Option<analysis_pb::InterviewSession>,
    ) -> Result<(), FlowError> {
        let conversation_id = call.conversation_id.as_str();
        let variables = call
            .conversation_initiation_client_data
            .as_ref()
            .and_then(|data| data.get("dynamic_variables"));
        let variable = |name: &str| {
            variables
                .and_then(|variables| variables.get(name))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let mut analysis = self.clients.analysis.clone();
        let session = match (variable("interview_session_id"), linked) {
            (Some(session_id), _) => {
                let lookup = analysis_pb::GetInterviewSessionRequest {
                    session_id: session_id.clone(),
                    conversation_id: String::new(),
                };
                match analysis.get_interview_session(lookup).await {
                    Ok(answer) => answer.into_inner().session.unwrap_or_default(),
                    Err(status)
                        if matches!(status.code(), Code::NotFound | Code::InvalidArgument) =>
                    {
                        tracing::warn!(%session_id, %conversation_id, "interview session not found; the call is not evaluated");
                        return Ok(());
                    }
                    Err(status) => return Err(status.into()),
                }
            }
            (None, Some(session)) => session,
            (None, None) => {
                let interviewer = screening
                    || call
                        .agent_id
                        .as_ref()
                        .is_some_and(|a| self.config.elevenlabs.interview_agent_ids.contains(a));
                if !interviewer {
                    return Ok(());
                }
                // An interviewer agent's call with no session: one is opened for it from the
                // call's variables.
                analysis
                    .create_interview_session(analysis_pb::CreateInterviewSessionRequest {
                        idempotency_key: format!("interview_session:{conversation_id}"),
                        candidate_name: variable("candidate_name")
                            .unwrap_or_else(|| "Unknown candidate".into()),
                        job_role: variable("job_role").unwrap_or_else(|| "Unspecified".into()),
                        job_id: variable("job_id").unwrap_or_else(|| "unassigned".into()),
                        conversation_id: conversation_id.to_owned(),
                    })
                    .await?
                    .into_inner()
                    .session
                    .unwrap_or_default()
            }
        };
        let evaluation = analysis
            .analyze_interview(analysis_pb::AnalyzeInterviewRequest {
                idempotency_key: format!("interview:{conversation_id}"),
                session_id: session.id.clone(),
                conversation_id: conversation_id.to_owned(),
                turns: call.turns(),
            })
            .await?
            .into_inner()
            .evaluation
            .unwrap_or_default();
        tracing::info!(session_id = %session.id, %conversation_id, overall = evaluation.overall_score, "interview evaluated after the call");
        Ok(())
    }
}
