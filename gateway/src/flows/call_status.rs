//! `call.*` status updates. Not ElevenLabs events (see the provider spec, section 6): an
//! existing integration sends them, and callmesh maps them onto its call state machine, which
//! only moves forward. A completed call whose transcript never arrives gets it fetched.

use chrono::Utc;
use serde_json::json;
use tonic::Code;

use callmesh_proto::common::v1 as common;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1::EventType;
use callmesh_proto::telephony::v1 as telephony_pb;
use callmesh_runtime::timestamps;

use super::{FlowError, Flows, Handled, Party, kinds, unparseable};
use crate::elevenlabs::payload::{self, CallStatusUpdate};
use crate::inbox::{InboxState, NewItem};

/// The status names of the integration's `call.*` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStatusName {
    Initiated,
    Ringing,
    Answered,
    Completed,
    Ended,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
    Unreachable,
    Rejected,
    InitiationFailed,
}

impl CallStatusName {
    /// `call.ringing` → Ringing; `None` for names nobody defined.
    pub fn from_event(event_type: &str) -> Option<Self> {
        let name = event_type.trim().to_ascii_lowercase().replace('-', "_");
        Some(match name.strip_prefix("call.").unwrap_or(&name) {
            "initiated" => Self::Initiated,
            "ringing" => Self::Ringing,
            "answered" => Self::Answered,
            "completed" => Self::Completed,
            "ended" => Self::Ended,
            "busy" => Self::Busy,
            "no_answer" => Self::NoAnswer,
            "failed" => Self::Failed,
            "canceled" | "cancelled" => Self::Canceled,
            "unreachable" => Self::Unreachable,
            "rejected" => Self::Rejected,
            "call_initiation_failure" | "initiation_failed" => Self::InitiationFailed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initiated => "initiated",
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::Completed => "completed",
            Self::Ended => "ended",
            Self::Busy => "busy",
            Self::NoAnswer => "no_answer",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Unreachable => "unreachable",
            Self::Rejected => "rejected",
            Self::InitiationFailed => "initiation_failed",
        }
    }

    pub(crate) fn call_status(self) -> telephony_pb::CallStatus {
        use telephony_pb::CallStatus as S;
        match self {
            Self::Initiated => S::Initiated,
            Self::Ringing => S::Ringing,
            Self::Answered => S::InProgress,
            Self::Completed | Self::Ended => S::Completed,
            Self::Busy => S::Busy,
            Self::NoAnswer => S::NoAnswer,
            Self::Canceled => S::Canceled,
            Self::Failed | Self::Unreachable | Self::Rejected | Self::InitiationFailed => S::Failed,
        }
    }

    fn contact_outcome(self) -> Option<lead_pb::ContactOutcome> {
        use lead_pb::ContactOutcome as O;
        match self {
            Self::Answered => Some(O::Connected),
            Self::Busy => Some(O::Busy),
            Self::NoAnswer => Some(O::NoAnswer),
            Self::Failed | Self::Unreachable | Self::Rejected | Self::InitiationFailed => {
                Some(O::Failed)
            }
            _ => None,
        }
    }
}

/// The dedupe key of a status update: (call id, mapped status).
pub fn call_status_key(update: &CallStatusUpdate, name: CallStatusName) -> Option<String> {
    let call = update
        .call_sid
        .as_deref()
        .or(update.conversation_id.as_deref())
        .filter(|c| !c.trim().is_empty())?;
    Some(format!("call_status:{call}:{}", name.as_str()))
}

/// failure_reason, else error_message, else message, else what the event's name says.
fn failure_reason(update: &CallStatusUpdate, name: CallStatusName) -> String {
    [
        &update.failure_reason,
        &update.error_message,
        &update.message,
    ]
    .into_iter()
    .flatten()
    .find(|r| !r.trim().is_empty())
    .cloned()
    .unwrap_or_else(|| match name {
        CallStatusName::Busy => "busy".into(),
        CallStatusName::NoAnswer => "no answer".into(),
        CallStatusName::Unreachable => "unreachable".into(),
        CallStatusName::Rejected => "rejected".into(),
        CallStatusName::Failed | CallStatusName::InitiationFailed => "failed".into(),
        _ => String::new(),
    })
}

impl Flows {
    pub(super) async fn call_status(&self, key: &str, body: &[u8]) -> Result<Handled, FlowError> {
        let update: CallStatusUpdate = payload::parse(body).map_err(unparseable)?;
        let Some(name) = CallStatusName::from_event(&update.event_type) else {
            return Ok(Handled::Ignored(format!(
                "unknown status event {:?}",
                update.event_type
            )));
        };
        let status = name.call_status();
        let reason = if status == telephony_pb::CallStatus::Completed || !is_failure(status) {
            String::new()
        } else {
            failure_reason(&update, name)
        };
        let request = telephony_pb::UpdateCallStatusRequest {
            idempotency_key: key.to_owned(),
            call_sid: update.call_sid.clone().unwrap_or_default(),
            status: status.into(),
            sequence_number: 0,
            duration_secs: 0,
            answered_by: String::new(),
            raw_payload_json: String::from_utf8_lossy(body).into_owned(),
            occurred_at: Some(timestamps::to_proto(Utc::now())),
            conversation_id: update.conversation_id.clone().unwrap_or_default(),
            reason: reason.clone(),
        };
        let answer = match self
            .clients
            .telephony
            .clone()
            .update_call_status(request)
            .await
        {
            Ok(answer) => answer.into_inner(),
            Err(status) if status.code() == Code::NotFound => {
                return Ok(Handled::Ignored(
                    "status for a call callmesh does not know".into(),
                ));
            }
            Err(status) => return Err(status.into()),
        };
        let call = answer.call.unwrap_or_default();
        let party = Party {
            organization_id: call.organization_id.clone(),
            lead_id: call.lead_id.clone(),
        };
        if answer.transitioned {
            if let (Some(outcome), false) = (name.contact_outcome(), party.lead_id.is_empty()) {
                self.clients
                    .lead
                    .clone()
                    .record_contact_attempt(lead_pb::RecordContactAttemptRequest {
                        idempotency_key: key.to_owned(),
                        lead_id: party.lead_id.clone(),
                        channel: common::Channel::Voice.into(),
                        outcome: outcome.into(),
                        attempted_at: Some(timestamps::to_proto(Utc::now())),
                        detail: reason.clone(),
                    })
                    .await?;
            }
            let payload = json!({
                "call_id": call.id,
                "conversation_id": call.conversation_id,
                "call_sid": call.call_sid,
                "status": name.as_str(),
                "reason": reason,
            });
            self.publish(key.to_owned(), &party, EventType::CallStatus, payload)
                .await?;
        }
        if status == telephony_pb::CallStatus::Completed && !call.conversation_id.is_empty() {
            self.schedule_transcript_check(&call.conversation_id)
                .await?;
        }
        Ok(Handled::Done)
    }

    /// After the grace period, makes sure the call's transcript arrived (fetching it if not).
    async fn schedule_transcript_check(&self, conversation_id: &str) -> Result<(), FlowError> {
        let grace = chrono::Duration::from_std(self.config.elevenlabs.transcript_grace)
            .unwrap_or(chrono::Duration::seconds(120));
        self.inbox
            .admit(NewItem {
                provider: kinds::CALLMESH,
                event_type: kinds::TRANSCRIPT_CHECK.to_owned(),
                idempotency_key: format!("transcript_check:{conversation_id}"),
                raw_body: conversation_id.as_bytes().to_vec(),
                state: InboxState::Pending,
                not_before: Utc::now() + grace,
            })
            .await
            .map_err(|e| FlowError::Retryable(e.to_string()))?;
        Ok(())
    }
}

fn is_failure(status: telephony_pb::CallStatus) -> bool {
    use telephony_pb::CallStatus as S;
    matches!(status, S::Busy | S::NoAnswer | S::Canceled | S::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_as_the_integration_sends_them() {
        assert_eq!(
            CallStatusName::from_event("call.ringing"),
            Some(CallStatusName::Ringing)
        );
        assert_eq!(
            CallStatusName::from_event("call.no_answer"),
            Some(CallStatusName::NoAnswer)
        );
        assert_eq!(
            CallStatusName::from_event("call.no-answer"),
            Some(CallStatusName::NoAnswer)
        );
        assert_eq!(
            CallStatusName::from_event("call_initiation_failure"),
            Some(CallStatusName::InitiationFailed)
        );
        assert_eq!(CallStatusName::from_event("call.teleported"), None);
        assert_eq!(
            CallStatusName::Answered.call_status(),
            telephony_pb::CallStatus::InProgress
        );
        assert_eq!(
            CallStatusName::Unreachable.call_status(),
            telephony_pb::CallStatus::Failed
        );
    }

    #[test]
    fn failure_reasons_follow_the_priority() {
        let update =
            |failure: Option<&str>, error: Option<&str>, message: Option<&str>| CallStatusUpdate {
                event_type: "call.failed".into(),
                conversation_id: Some("c".into()),
                call_sid: None,
                failure_reason: failure.map(Into::into),
                error_message: error.map(Into::into),
                message: message.map(Into::into),
            };
        let failed = CallStatusName::Failed;
        assert_eq!(
            failure_reason(&update(Some("a"), Some("b"), Some("c")), failed),
            "a"
        );
        assert_eq!(
            failure_reason(&update(None, Some("b"), Some("c")), failed),
            "b"
        );
        assert_eq!(failure_reason(&update(None, None, Some("c")), failed), "c");
        assert_eq!(
            failure_reason(&update(None, None, None), CallStatusName::Busy),
            "busy"
        );
        assert_eq!(
            call_status_key(&update(None, None, None), failed).as_deref(),
            Some("call_status:c:failed")
        );
    }
}
