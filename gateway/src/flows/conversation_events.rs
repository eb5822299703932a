//! Live conversation events relayed to callmesh: kept in the conversation's event log and
//! pushed to dashboards. The call they belong to tells whose they are; an event ahead of any
//! call record belongs to the default organization.

use chrono::{DateTime, Utc};
use serde_json::json;
use tonic::Code;

use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::notification::v1::EventType;
use callmesh_proto::telephony::v1 as telephony_pb;
use callmesh_runtime::config::DEFAULT_ORGANIZATION_ID;
use callmesh_runtime::timestamps;

use super::{FlowError, Flows, Handled, Party, unparseable};
use crate::elevenlabs::payload::{self, ConversationEvent};

impl Flows {
    pub(super) async fn conversation_event(
        &self,
        key: &str,
        body: &[u8],
    ) -> Result<Handled, FlowError> {
        let event: ConversationEvent = payload::parse(body).map_err(unparseable)?;
        let party = self.party_of_conversation(&event.conversation_id).await?;
        let occurred_at = event
            .timestamp
            .and_then(|t| {
                // Seconds or milliseconds since the epoch, whichever the relay sends.
                let millis = if t > 1e11 { t } else { t * 1000.0 };
                DateTime::from_timestamp_millis(millis as i64)
            })
            .unwrap_or_else(Utc::now);
        let data = event.data.clone().unwrap_or(serde_json::Value::Null);
        self.clients
            .context
            .clone()
            .record_conversation_event(context_pb::RecordConversationEventRequest {
                idempotency_key: key.to_owned(),
                organization_id: party.organization_id.clone(),
                lead_id: party.lead_id.clone(),
                conversation_id: event.conversation_id.clone(),
                event_type: event.kind.clone(),
                data_json: if data.is_null() {
                    String::new()
                } else {
                    data.to_string()
                },
                occurred_at: Some(timestamps::to_proto(occurred_at)),
            })
            .await?;
        let payload = json!({
            "conversation_id": event.conversation_id,
            "event_type": event.kind,
            "data": data,
            "occurred_at": occurred_at.to_rfc3339(),
        });
        self.publish(
            key.to_owned(),
            &party,
            EventType::ConversationEvent,
            payload,
        )
        .await?;
        Ok(Handled::Done)
    }

    /// Whose conversation this is, from its call record.
    pub(crate) async fn party_of_conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Party, FlowError> {
        let request = telephony_pb::GetCallRequest {
            call_id: String::new(),
            call_sid: String::new(),
            conversation_id: conversation_id.to_owned(),
        };
        match self.clients.telephony.clone().get_call(request).await {
            Ok(answer) => {
                let call = answer.into_inner().call.unwrap_or_default();
                Ok(Party {
                    organization_id: if call.organization_id.is_empty() {
                        DEFAULT_ORGANIZATION_ID.to_owned()
                    } else {
                        call.organization_id
                    },
                    lead_id: call.lead_id,
                })
            }
            Err(status) if status.code() == Code::NotFound => Ok(Party {
                organization_id: DEFAULT_ORGANIZATION_ID.to_owned(),
                lead_id: String::new(),
            }),
            Err(status) => Err(status.into()),
        }
    }
}
