//! Flows: what happens to an accepted webhook, one file per kind, each reading like a recipe.
//! Every RPC a flow makes carries a key derived from the event, so running a flow again (a
//! retry, a replay) changes nothing that already happened.

mod analysis;
mod call_status;
mod conversation_events;
pub(crate) mod directory;
mod follow_up;
mod interview;
mod post_call;
mod transcript_check;
mod twilio_sms;
mod twilio_voice;

use std::sync::Arc;

use serde_json::Value;
use tonic::Code;

use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1 as notification_pb;
use callmesh_runtime::config::DEFAULT_ORGANIZATION_ID;

use crate::clients::Clients;
use crate::config::GatewayConfig;
use crate::elevenlabs::api::ElevenLabsApi;
use crate::inbox::{Inbox, InboxRow};

pub(crate) use analysis::{AnalysisRun, analyzer_name, outcome_name, sentiment_name, tier_name};
pub use call_status::{CallStatusName, call_status_key};
pub(crate) use interview::StoredConversation;

/// Inbox providers and event types the dispatcher knows.
pub mod kinds {
    pub const ELEVENLABS: &str = "elevenlabs";
    pub const TWILIO: &str = "twilio";
    pub const CALLMESH: &str = "callmesh";
    pub const SMS_INCOMING: &str = "sms_incoming";
    pub const SMS_STATUS: &str = "sms_status";
    pub const VOICE_STATUS: &str = "voice_status";
    pub const VOICE_INCOMING: &str = "voice_incoming";
    pub const RECORDING: &str = "recording";
    pub const CALL_RETRY: &str = "call_retry";
    pub const POST_CALL_TRANSCRIPTION: &str = "post_call_transcription";
    pub const POST_CALL_AUDIO: &str = "post_call_audio";
    pub const CALL_INITIATION_FAILURE: &str = "call_initiation_failure";
    pub const CONVERSATION_EVENT: &str = "conversation_event";
    pub const CALL_STATUS: &str = "call_status";
    pub const TRANSCRIPT_CHECK: &str = "transcript_check";
}

/// How an attempt ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Done,
    /// Nothing to do, and why.
    Ignored(String),
}

/// How an attempt ended badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowError {
    /// A dependency is down or slow: try again later.
    Retryable(String),
    /// No retry can fix it (the payload or the request is wrong): dead-letter it.
    Permanent(String),
}

impl From<tonic::Status> for FlowError {
    fn from(status: tonic::Status) -> Self {
        // Kept with the inbox item and logged: the numbers a service quotes are masked.
        let message = format!(
            "{:?}: {}",
            status.code(),
            callmesh_runtime::redact::mask_numbers(status.message())
        );
        match status.code() {
            Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::PermissionDenied
            | Code::Unimplemented
            | Code::OutOfRange
            // A message over the limit stays over it; a limit reached is not waited out here.
            | Code::ResourceExhausted => FlowError::Permanent(message),
            _ => FlowError::Retryable(message),
        }
    }
}

pub struct Flows {
    pub(crate) clients: Clients,
    pub(crate) api: ElevenLabsApi,
    pub(crate) inbox: Inbox,
    pub(crate) config: Arc<GatewayConfig>,
    /// Spaces the automatic follow-ups of inbound SMS per lead, across replicas.
    pub(crate) sms_follow_up: callmesh_runtime::limits::Cooldown,
    /// Organizations and the numbers they own, briefly remembered.
    pub(crate) directory: directory::Directory,
}

/// Who a call was with, as the lead service knows them.
#[derive(Debug, Clone)]
pub struct Party {
    pub organization_id: String,
    /// Empty when the other side's number is unknown or withheld.
    pub lead_id: String,
}

impl Flows {
    pub async fn run(&self, row: &InboxRow) -> Result<Handled, FlowError> {
        use kinds::*;
        match (row.provider.as_str(), row.event_type.as_str()) {
            (ELEVENLABS, POST_CALL_TRANSCRIPTION) => {
                self.post_call_transcription(&row.raw_body).await
            }
            (ELEVENLABS, POST_CALL_AUDIO) => self.post_call_audio(&row.raw_body).await,
            (ELEVENLABS, CALL_INITIATION_FAILURE) => {
                self.call_initiation_failure(&row.raw_body).await
            }
            (ELEVENLABS, CONVERSATION_EVENT) => {
                self.conversation_event(&row.idempotency_key, &row.raw_body)
                    .await
            }
            (ELEVENLABS, CALL_STATUS) => {
                self.call_status(&row.idempotency_key, &row.raw_body).await
            }
            (CALLMESH, TRANSCRIPT_CHECK) => self.transcript_check(&row.raw_body).await,
            (CALLMESH, CALL_RETRY) => self.call_retry(&row.raw_body).await,
            (TWILIO, SMS_INCOMING) => self.sms_incoming(&row.raw_body).await,
            (TWILIO, SMS_STATUS) => {
                self.sms_status(&row.idempotency_key, &row.raw_body, row.received_at)
                    .await
            }
            (TWILIO, VOICE_STATUS) => self.voice_status(&row.idempotency_key, &row.raw_body).await,
            (TWILIO, VOICE_INCOMING) => self.voice_incoming(&row.raw_body).await,
            (TWILIO, RECORDING) => self.recording(&row.raw_body).await,
            (provider, kind) => Ok(Handled::Ignored(format!("no flow for {provider} {kind}"))),
        }
    }

    /// The organization owning `business_number` (the default one when unknown) and the lead
    /// with `lead_number` in it, created when new.
    pub(crate) async fn identify(
        &self,
        business_number: Option<&str>,
        lead_number: Option<&str>,
        source: &str,
    ) -> Result<Party, FlowError> {
        Ok(self
            .identify_lead(business_number, lead_number, source)
            .await?
            .0)
    }

    /// `identify`, with the lead as the lead service answered it (`None` when there is none).
    pub(crate) async fn identify_lead(
        &self,
        business_number: Option<&str>,
        lead_number: Option<&str>,
        source: &str,
    ) -> Result<(Party, Option<lead_pb::Lead>), FlowError> {
        let mut lead = self.clients.lead.clone();
        let organization_id = match business_number.filter(|n| !n.trim().is_empty()) {
            Some(number) => match self.directory.owner(number) {
                Some(owner) => owner,
                None => {
                    let request = lead_pb::ResolveOrganizationRequest {
                        phone_number: number.to_owned(),
                    };
                    match lead.resolve_organization(request).await {
                        Ok(answer) => {
                            let owner = answer
                                .into_inner()
                                .organization
                                .map(|o| o.id)
                                .unwrap_or_else(|| DEFAULT_ORGANIZATION_ID.to_owned());
                            self.directory.remember_owner(number, &owner);
                            owner
                        }
                        Err(status) if status.code() == Code::InvalidArgument => {
                            tracing::warn!(
                                number = %last_four(number),
                                "business number is not a phone number; using the default organization"
                            );
                            DEFAULT_ORGANIZATION_ID.to_owned()
                        }
                        Err(status) => return Err(status.into()),
                    }
                }
            },
            None => DEFAULT_ORGANIZATION_ID.to_owned(),
        };
        let found = match lead_number.filter(|n| !n.trim().is_empty()) {
            Some(number) => {
                let request = lead_pb::FindOrCreateLeadRequest {
                    idempotency_key: String::new(),
                    organization_id: organization_id.clone(),
                    phone_number: number.to_owned(),
                    name: String::new(),
                    email: String::new(),
                    source: source.to_owned(),
                };
                match self.clients.batched.find_or_create_lead.call(request).await {
                    Ok(answer) => answer.lead,
                    Err(status) if status.code() == Code::InvalidArgument => {
                        tracing::warn!(
                            number = %last_four(number),
                            "caller number is not a phone number; no lead"
                        );
                        None
                    }
                    Err(status) => return Err(status.into()),
                }
            }
            None => None,
        };
        let party = Party {
            organization_id,
            lead_id: found.as_ref().map(|l| l.id.clone()).unwrap_or_default(),
        };
        Ok((party, found))
    }

    /// Appends an event to the log (once per key) for live dashboards.
    pub(crate) async fn publish(
        &self,
        key: String,
        party: &Party,
        kind: notification_pb::EventType,
        payload: Value,
    ) -> Result<(), FlowError> {
        self.clients
            .notification
            .clone()
            .publish(publish_request(key, party, kind, payload))
            .await?;
        Ok(())
    }

    /// Appends several events (each once per key), in order, with one call.
    pub(crate) async fn publish_all(
        &self,
        party: &Party,
        events: Vec<Announcement>,
    ) -> Result<(), FlowError> {
        let events = events
            .into_iter()
            .map(|(key, kind, payload)| publish_request(key, party, kind, payload))
            .collect();
        self.clients
            .batched
            .publish_batch
            .call(notification_pb::PublishBatchRequest { events })
            .await?;
        Ok(())
    }
}

/// An event to publish: its idempotency key, its type and its payload.
pub(crate) type Announcement = (String, notification_pb::EventType, Value);

/// An event of `party` (the default organization's when it has none), occurring now.
fn publish_request(
    key: String,
    party: &Party,
    kind: notification_pb::EventType,
    payload: Value,
) -> notification_pb::PublishRequest {
    let organization_id = if party.organization_id.is_empty() {
        DEFAULT_ORGANIZATION_ID.to_owned()
    } else {
        party.organization_id.clone()
    };
    notification_pb::PublishRequest {
        idempotency_key: key,
        organization_id,
        lead_id: party.lead_id.clone(),
        r#type: kind.into(),
        payload_json: payload.to_string(),
        occurred_at: Some(callmesh_runtime::timestamps::to_proto(chrono::Utc::now())),
    }
}

/// A phone number as logs show it: its last four digits only.
pub(crate) fn last_four(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

/// A stored payload that no longer parses is not going to parse on a retry either.
pub(crate) fn unparseable(error: String) -> FlowError {
    FlowError::Permanent(format!("payload: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_too_large_is_not_retried() {
        for status in [
            tonic::Status::resource_exhausted("message too large"),
            tonic::Status::out_of_range("decoded message length too large"),
        ] {
            assert!(
                matches!(FlowError::from(status.clone()), FlowError::Permanent(_)),
                "{status:?}"
            );
        }
        assert!(matches!(
            FlowError::from(tonic::Status::unavailable("down")),
            FlowError::Retryable(_)
        ));
    }
}
