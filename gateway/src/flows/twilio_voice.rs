//! Voice from Twilio: an inbound call gets its record, status callbacks move calls forward by
//! `SequenceNumber` and trigger the retry policy when an outbound call fails, and a completed
//! recording is fetched, stored, and — when speech-to-text is configured — transcribed and
//! analysed like any call.

use chrono::Utc;
use serde_json::json;
use tonic::Code;

use callmesh_proto::common::v1 as common;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1::EventType;
use callmesh_proto::telephony::v1 as telephony_pb;
use callmesh_runtime::timestamps;

use super::follow_up::CallRetry;
use super::post_call::Transcript;
use super::{FlowError, Flows, Handled, Party};
use crate::routes::twilio::form_fields;

impl Flows {
    pub(super) async fn voice_incoming(&self, body: &[u8]) -> Result<Handled, FlowError> {
        let fields = form_fields(body);
        let text = |name: &str| fields.get(name).cloned().unwrap_or_default();
        let (sid, from, to) = (text("CallSid"), text("From"), text("To"));
        let party = self
            .identify(Some(&to), Some(&from), "inbound_call")
            .await?;
        let call = self
            .create_call(&party, &sid, telephony_pb::Direction::Inbound, &from, &to)
            .await?;
        let payload = json!({"call_id": call.id, "call_sid": sid, "from": from, "to": to, "direction": "inbound"});
        self.publish(
            format!("call_started:{sid}"),
            &party,
            EventType::CallStarted,
            payload,
        )
        .await?;
        Ok(Handled::Done)
    }

    pub(super) async fn voice_status(&self, key: &str, body: &[u8]) -> Result<Handled, FlowError> {
        let fields = form_fields(body);
        let text = |name: &str| fields.get(name).cloned().unwrap_or_default();
        let sid = text("CallSid");
        let status_name = text("CallStatus");
        let Some(status) = call_status(&status_name) else {
            return Ok(Handled::Ignored(format!(
                "unknown CallStatus {status_name:?} kept raw"
            )));
        };
        let outbound = text("Direction").starts_with("outbound");
        let raw: serde_json::Map<String, serde_json::Value> =
            fields.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let request = telephony_pb::UpdateCallStatusRequest {
            idempotency_key: key.to_owned(),
            call_sid: sid.clone(),
            status: status.into(),
            sequence_number: text("SequenceNumber").parse().unwrap_or(0),
            duration_secs: text("CallDuration").parse().unwrap_or(0),
            answered_by: text("AnsweredBy"),
            raw_payload_json: serde_json::Value::Object(raw).to_string(),
            occurred_at: Some(timestamps::to_proto(Utc::now())),
            conversation_id: String::new(),
            reason: text("SipResponseCode"),
        };
        let mut telephony = self.clients.telephony.clone();
        let answer = match telephony.update_call_status(request.clone()).await {
            Ok(answer) => answer.into_inner(),
            Err(s) if s.code() == Code::NotFound => {
                // A call callmesh has not seen yet (placed elsewhere, or its first callback).
                let (from, to) = (text("From"), text("To"));
                let (business, lead) = if outbound { (&from, &to) } else { (&to, &from) };
                let party = self
                    .identify(Some(business), Some(lead), "voice_call")
                    .await?;
                let direction = if outbound {
                    telephony_pb::Direction::Outbound
                } else {
                    telephony_pb::Direction::Inbound
                };
                self.create_call(&party, &sid, direction, &from, &to)
                    .await?;
                telephony.update_call_status(request).await?.into_inner()
            }
            Err(s) => return Err(s.into()),
        };
        if !answer.transitioned {
            return Ok(Handled::Done);
        }
        let call = answer.call.unwrap_or_default();
        let party = Party {
            organization_id: call.organization_id.clone(),
            lead_id: call.lead_id.clone(),
        };
        let payload = json!({"call_id": call.id, "call_sid": sid, "status": status_name,
            "duration_secs": call.duration_secs, "answered_by": call.answered_by});
        self.publish(key.to_owned(), &party, EventType::CallStatus, payload)
            .await?;
        if party.lead_id.is_empty() {
            return Ok(Handled::Done);
        }
        if let Some(outcome) = contact_outcome(status, &call.answered_by) {
            self.clients
                .lead
                .clone()
                .record_contact_attempt(lead_pb::RecordContactAttemptRequest {
                    idempotency_key: key.to_owned(),
                    lead_id: party.lead_id.clone(),
                    channel: common::Channel::Voice.into(),
                    outcome: outcome.into(),
                    attempted_at: Some(timestamps::to_proto(Utc::now())),
                    detail: status_name.clone(),
                })
                .await?;
        }
        let unanswered = matches!(
            status,
            telephony_pb::CallStatus::Busy
                | telephony_pb::CallStatus::NoAnswer
                | telephony_pb::CallStatus::Failed
        );
        if unanswered && outbound {
            self.maybe_retry(&party, &call).await?;
        }
        Ok(Handled::Done)
    }

    /// Retries an unanswered outbound call while the lead's run of failures is within policy.
    async fn maybe_retry(&self, party: &Party, call: &telephony_pb::Call) -> Result<(), FlowError> {
        let calls = self
            .clients
            .telephony
            .clone()
            .list_calls(telephony_pb::ListCallsRequest {
                organization_id: party.organization_id.clone(),
                lead_id: party.lead_id.clone(),
                page: None,
            })
            .await?
            .into_inner()
            .calls;
        use telephony_pb::CallStatus as S;
        let failures = calls
            .iter()
            .take_while(|c| {
                c.direction == telephony_pb::Direction::Outbound as i32
                    && matches!(S::try_from(c.status), Ok(S::Busy | S::NoAnswer | S::Failed))
            })
            .count();
        let allowed = self.config.twilio.call_retry_attempts as usize;
        if failures > allowed {
            tracing::info!(lead_id = %party.lead_id, failures, "no more call retries");
            return Ok(());
        }
        self.schedule_call_retry(CallRetry {
            organization_id: party.organization_id.clone(),
            lead_id: party.lead_id.clone(),
            to_number: call.to_number.clone(),
            failed_call_sid: call.call_sid.clone(),
        })
        .await
    }

    async fn create_call(
        &self,
        party: &Party,
        call_sid: &str,
        direction: telephony_pb::Direction,
        from: &str,
        to: &str,
    ) -> Result<telephony_pb::Call, FlowError> {
        let call = self
            .clients
            .telephony
            .clone()
            .record_call_outcome(telephony_pb::RecordCallOutcomeRequest {
                idempotency_key: format!("twilio_call:{call_sid}"),
                organization_id: party.organization_id.clone(),
                lead_id: party.lead_id.clone(),
                conversation_id: String::new(),
                call_sid: call_sid.to_owned(),
                agent_id: String::new(),
                direction: direction.into(),
                status: telephony_pb::CallStatus::Queued.into(),
                from_number: from.to_owned(),
                to_number: to.to_owned(),
                duration_secs: 0,
                cost: 0.0,
                termination_reason: String::new(),
                started_at: Some(timestamps::to_proto(Utc::now())),
                ended_at: None,
            })
            .await?
            .into_inner()
            .call
            .unwrap_or_default();
        Ok(call)
    }

    pub(super) async fn recording(&self, body: &[u8]) -> Result<Handled, FlowError> {
        let fields = form_fields(body);
        let text = |name: &str| fields.get(name).cloned().unwrap_or_default();
        let (recording_sid, call_sid, status) = (
            text("RecordingSid"),
            text("CallSid"),
            text("RecordingStatus"),
        );
        if status != "completed" {
            return Ok(Handled::Ignored(format!(
                "recording {status}: nothing to fetch"
            )));
        }
        let url = text("RecordingUrl");
        let recording = self
            .clients
            .telephony
            .clone()
            .record_recording(telephony_pb::RecordRecordingRequest {
                idempotency_key: format!("recording:{recording_sid}"),
                call_sid: call_sid.clone(),
                conversation_id: String::new(),
                recording_sid: recording_sid.clone(),
                // The bare URL answers WAV; `.mp3` is a tenth of the size.
                source_url: format!("{url}.mp3"),
                audio: Vec::new(),
                content_type: "audio/mpeg".to_owned(),
                duration_secs: text("RecordingDuration").parse().unwrap_or(0),
            })
            .await?
            .into_inner()
            .recording
            .unwrap_or_default();
        let (call, party) = self.call_and_party(&recording.call_id).await?;
        let payload = json!({"call_id": call.id, "call_sid": call_sid, "recording_id": recording.id,
            "recording_sid": recording_sid});
        self.publish(
            format!("recording:{recording_sid}"),
            &party,
            EventType::RecordingAvailable,
            payload,
        )
        .await?;

        let transcription = self
            .clients
            .telephony
            .clone()
            .transcribe_recording(telephony_pb::TranscribeRecordingRequest {
                recording_id: recording.id.clone(),
            })
            .await;
        let text = match transcription {
            Ok(answer) => answer.into_inner().text,
            Err(s) if s.code() == Code::FailedPrecondition => {
                return Ok(Handled::Done);
            }
            Err(s) => return Err(s.into()),
        };
        if text.trim().is_empty() {
            return Ok(Handled::Done);
        }
        let conversation_id = if call.conversation_id.is_empty() {
            format!("recording:{recording_sid}")
        } else {
            call.conversation_id.clone()
        };
        let transcript = Transcript {
            conversation_id: conversation_id.clone(),
            turns: vec![common::TranscriptTurn {
                role: common::Role::User.into(),
                message: text,
                time_in_call_secs: 0.0,
            }],
            summary: String::new(),
            provider_analysis: serde_json::Value::Null,
            duration_secs: recording.duration_secs,
            started_at: None,
            ended_at: Some(Utc::now()),
        };
        let analysed = self
            .remember_and_analyse(
                &party,
                transcript,
                json!({"call_id": call.id, "source": "recording"}),
            )
            .await?;
        self.publish_all(&party, analysed.events).await?;
        Ok(Handled::Done)
    }
}

fn call_status(name: &str) -> Option<telephony_pb::CallStatus> {
    use telephony_pb::CallStatus as S;
    Some(match name {
        "queued" => S::Queued,
        "initiated" => S::Initiated,
        "ringing" => S::Ringing,
        "in-progress" | "answered" => S::InProgress,
        "completed" => S::Completed,
        "busy" => S::Busy,
        "no-answer" => S::NoAnswer,
        "canceled" => S::Canceled,
        "failed" => S::Failed,
        _ => return None,
    })
}

fn contact_outcome(
    status: telephony_pb::CallStatus,
    answered_by: &str,
) -> Option<lead_pb::ContactOutcome> {
    use lead_pb::ContactOutcome as O;
    use telephony_pb::CallStatus as S;
    Some(match status {
        S::Completed if answered_by.starts_with("machine") => O::Voicemail,
        S::Completed | S::InProgress => O::Connected,
        S::Busy => O::Busy,
        S::NoAnswer => O::NoAnswer,
        S::Failed | S::Canceled => O::Failed,
        _ => return None,
    })
}
