//! Post-call webhooks. A finished call: telephony records the outcome, context stores the
//! transcript, analysis analyses it, lead applies the result, notification tells dashboards.
//! Its audio: stored and linked to the call. A call that never started: the call is marked
//! failed and the lead's last attempt updated.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use callmesh_proto::common::v1 as common;
use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1::EventType;
use callmesh_proto::telephony::v1 as telephony_pb;
use callmesh_runtime::timestamps;

use super::analysis::{Analysed, AnalysisRun, outcome_name, sentiment_name, tier_name};
use super::{FlowError, Flows, Handled, Party, unparseable};
use crate::elevenlabs::payload::{self, Audio, Envelope, InitiationFailure, Transcription};

/// A finished conversation's words, from whatever source.
pub(crate) struct Transcript {
    pub conversation_id: String,
    pub turns: Vec<common::TranscriptTurn>,
    pub summary: String,
    /// ElevenLabs' own `analysis` block (`Null` when there is none).
    pub provider_analysis: Value,
    pub duration_secs: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl Flows {
    pub(super) async fn post_call_transcription(&self, body: &[u8]) -> Result<Handled, FlowError> {
        let envelope: Envelope<Transcription> = payload::parse(body).map_err(unparseable)?;
        self.finished_call(envelope.data).await
    }

    /// The whole recipe for a finished call; also run for transcripts fetched from the API.
    pub(crate) async fn finished_call(
        &self,
        mut call: Transcription,
    ) -> Result<Handled, FlowError> {
        let conversation_id = call.conversation_id.clone();
        let phone = call.metadata.phone_call.clone().unwrap_or_default();
        let (party, lead) = self
            .identify_lead(
                phone.agent_number.as_deref(),
                phone.external_number.as_deref(),
                "voice_call",
            )
            .await?;
        let outbound = phone.direction.as_deref() == Some("outbound");
        let (from_number, to_number) = if outbound {
            (phone.agent_number.clone(), phone.external_number.clone())
        } else {
            (phone.external_number.clone(), phone.agent_number.clone())
        };
        let duration_secs = call.metadata.call_duration_secs.unwrap_or(0.0).max(0.0) as u32;
        let started_at = call
            .metadata
            .start_time_unix_secs
            .and_then(|t| DateTime::from_timestamp(t, 0));
        let ended_at = started_at.map(|s| s + chrono::Duration::seconds(i64::from(duration_secs)));
        // Taken, not copied: nothing after this reads it from `call`.
        let analysis_block = call.analysis.take().unwrap_or(Value::Null);
        let provider_summary = analysis_block
            .get("transcript_summary")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let turns = call.turns();

        let status = if call.status.as_deref() == Some("failed") {
            telephony_pb::CallStatus::Failed
        } else {
            telephony_pb::CallStatus::Completed
        };
        let recorded = self
            .clients
            .batched
            .record_call_outcome
            .call(telephony_pb::RecordCallOutcomeRequest {
                idempotency_key: format!("post_call:{conversation_id}"),
                organization_id: party.organization_id.clone(),
                lead_id: party.lead_id.clone(),
                conversation_id: conversation_id.clone(),
                call_sid: phone.call_sid.clone().unwrap_or_default(),
                agent_id: call.agent_id.clone().unwrap_or_default(),
                direction: if outbound {
                    telephony_pb::Direction::Outbound
                } else if phone.direction.is_some() {
                    telephony_pb::Direction::Inbound
                } else {
                    telephony_pb::Direction::Unspecified
                }
                .into(),
                status: status.into(),
                from_number: from_number.unwrap_or_default(),
                to_number: to_number.unwrap_or_default(),
                duration_secs,
                cost: call.metadata.cost.unwrap_or(0.0),
                termination_reason: call.metadata.termination_reason.clone().unwrap_or_default(),
                started_at: timestamps::to_proto_opt(started_at),
                ended_at: timestamps::to_proto_opt(ended_at),
            })
            .await?
            .call
            .unwrap_or_default();

        let transcript = Transcript {
            conversation_id: conversation_id.clone(),
            turns,
            summary: provider_summary,
            provider_analysis: analysis_block,
            duration_secs,
            started_at,
            ended_at,
        };
        let call_fields = json!({
            "call_id": recorded.id,
            "call_sid": recorded.call_sid,
            "status": if status == telephony_pb::CallStatus::Failed { "failed" } else { "completed" },
            "duration_secs": duration_secs,
        });
        let Analysed {
            analysis,
            interview_session,
            mut events,
        } = self
            .remember_and_analyse(&party, transcript, call_fields.clone())
            .await?;
        let mut payload = json!({
            "conversation_id": conversation_id,
            "score": analysis.lead_score,
            "tier": tier_name(analysis.tier),
            "sentiment": sentiment_name(analysis.sentiment),
            "summary": analysis.summary,
            "outcome": outcome_name(analysis.outcome),
        });
        if let (Some(payload), Value::Object(call)) = (payload.as_object_mut(), call_fields) {
            payload.extend(call);
        }
        events.push((
            format!("call_ended:{conversation_id}"),
            EventType::CallEnded,
            payload,
        ));
        // The last steps do not depend on each other: announce the analysis and the call (one
        // append), record it for the CRM and evaluate an interview at once.
        let summary = analysis.summary.clone();
        let screening = analysis.intents.iter().any(|i| i.name == "interview");
        tokio::try_join!(
            self.publish_all(&party, events),
            self.forward_to_crm(
                &party,
                &recorded,
                super::follow_up::crm_status(&recorded),
                &summary,
                lead.as_ref(),
            ),
            self.interview_after_call(&call, screening, interview_session),
        )?;
        Ok(Handled::Done)
    }

    /// Stores a finished conversation's transcript, analyses it and applies the result to
    /// the lead: the part of the recipe every transcript goes through, whatever its source.
    /// `context` adds fields to the `analysis_completed` event; the events are the caller's
    /// to publish.
    pub(crate) async fn remember_and_analyse(
        &self,
        party: &Party,
        transcript: Transcript,
        context: Value,
    ) -> Result<Analysed, FlowError> {
        let Transcript {
            conversation_id,
            turns,
            summary,
            provider_analysis,
            duration_secs,
            started_at,
            ended_at,
        } = transcript;
        self.clients
            .batched
            .append_transcript
            .call(context_pb::AppendTranscriptRequest {
                idempotency_key: format!("transcript:{conversation_id}"),
                organization_id: party.organization_id.clone(),
                lead_id: party.lead_id.clone(),
                conversation_id: conversation_id.clone(),
                channel: common::Channel::Voice.into(),
                turns: turns.clone(),
                summary,
                started_at: timestamps::to_proto_opt(started_at),
            })
            .await?;
        self.analyse(
            party,
            AnalysisRun {
                key: format!("analysis:{conversation_id}"),
                conversation_id,
                turns,
                provider_analysis_json: if provider_analysis.is_null() {
                    String::new()
                } else {
                    provider_analysis.to_string()
                },
                duration_secs,
                ended_at,
                revision: false,
                context,
            },
        )
        .await
    }

    /// A call by its callmesh id, and whose it is.
    pub(crate) async fn call_and_party(
        &self,
        call_id: &str,
    ) -> Result<(telephony_pb::Call, Party), FlowError> {
        let call = self
            .clients
            .telephony
            .clone()
            .get_call(telephony_pb::GetCallRequest {
                call_id: call_id.to_owned(),
                call_sid: String::new(),
                conversation_id: String::new(),
            })
            .await?
            .into_inner()
            .call
            .unwrap_or_default();
        let party = Party {
            organization_id: call.organization_id.clone(),
            lead_id: call.lead_id.clone(),
        };
        Ok((call, party))
    }

    pub(super) async fn post_call_audio(&self, body: &[u8]) -> Result<Handled, FlowError> {
        let envelope: Envelope<Audio> = payload::parse(body).map_err(unparseable)?;
        let audio = envelope.data;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(audio.full_audio.trim())
            .map_err(|e| FlowError::Permanent(format!("data.full_audio: not base64: {e}")))?;
        let recording = self
            .clients
            .telephony
            .clone()
            .record_recording(telephony_pb::RecordRecordingRequest {
                idempotency_key: format!("audio:{}", audio.conversation_id),
                call_sid: String::new(),
                conversation_id: audio.conversation_id.clone(),
                recording_sid: String::new(),
                source_url: String::new(),
                audio: bytes,
                content_type: "audio/mpeg".to_owned(),
                duration_secs: 0,
            })
            .await?
            .into_inner()
            .recording
            .unwrap_or_default();
        let (_, party) = self.call_and_party(&recording.call_id).await?;
        let payload = json!({
            "conversation_id": audio.conversation_id,
            "call_id": recording.call_id,
            "recording_id": recording.id,
            "content_type": recording.content_type,
        });
        self.publish(
            format!("recording:{}", audio.conversation_id),
            &party,
            EventType::RecordingAvailable,
            payload,
        )
        .await?;
        Ok(Handled::Done)
    }

    pub(super) async fn call_initiation_failure(&self, body: &[u8]) -> Result<Handled, FlowError> {
        let envelope: Envelope<InitiationFailure> = payload::parse(body).map_err(unparseable)?;
        let failure = envelope.data;
        let (business, lead_number, call_sid) = failure.numbers();
        let party = self
            .identify(business.as_deref(), lead_number.as_deref(), "outbound_call")
            .await?;
        let reason = failure.reason();
        let (status, outcome) = match reason {
            "busy" => (
                telephony_pb::CallStatus::Busy,
                lead_pb::ContactOutcome::Busy,
            ),
            "no-answer" => (
                telephony_pb::CallStatus::NoAnswer,
                lead_pb::ContactOutcome::NoAnswer,
            ),
            _ => (
                telephony_pb::CallStatus::Failed,
                lead_pb::ContactOutcome::Failed,
            ),
        };
        let occurred_at = envelope
            .event_timestamp
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .unwrap_or_else(Utc::now);
        let call = self
            .clients
            .telephony
            .clone()
            .record_call_outcome(telephony_pb::RecordCallOutcomeRequest {
                idempotency_key: format!("initiation_failure:{}", failure.conversation_id),
                organization_id: party.organization_id.clone(),
                lead_id: party.lead_id.clone(),
                conversation_id: failure.conversation_id.clone(),
                call_sid: call_sid.unwrap_or_default(),
                agent_id: failure.agent_id.clone().unwrap_or_default(),
                direction: telephony_pb::Direction::Outbound.into(),
                status: status.into(),
                from_number: business.unwrap_or_default(),
                to_number: lead_number.unwrap_or_default(),
                duration_secs: 0,
                cost: 0.0,
                termination_reason: reason.to_owned(),
                started_at: None,
                ended_at: Some(timestamps::to_proto(occurred_at)),
            })
            .await?
            .into_inner()
            .call
            .unwrap_or_default();
        if !party.lead_id.is_empty() {
            self.clients
                .lead
                .clone()
                .record_contact_attempt(lead_pb::RecordContactAttemptRequest {
                    idempotency_key: format!("initiation_failure:{}", failure.conversation_id),
                    lead_id: party.lead_id.clone(),
                    channel: common::Channel::Voice.into(),
                    outcome: outcome.into(),
                    attempted_at: Some(timestamps::to_proto(occurred_at)),
                    detail: format!("call did not start: {reason}"),
                })
                .await?;
        }
        let payload = json!({
            "conversation_id": failure.conversation_id,
            "call_id": call.id,
            "reason": reason,
        });
        self.publish(
            format!("call_failed:{}", failure.conversation_id),
            &party,
            EventType::CallFailed,
            payload,
        )
        .await?;
        let summary = format!("The call did not start: {reason}.");
        self.forward_to_crm(
            &party,
            &call,
            super::follow_up::crm_status(&call),
            &summary,
            None,
        )
        .await?;
        Ok(Handled::Done)
    }
}
