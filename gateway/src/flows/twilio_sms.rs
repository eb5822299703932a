//! SMS from Twilio. An inbound text: the lead is found or created, the message joins the
//! conversation memory (so the next call knows it), dashboards hear of it, and — unless a human
//! has taken over — the organization's follow-up policy runs: an auto-reply, and an agent call
//! when the text is urgent or the lead is hot, within business hours. A status callback moves
//! the message forward; a failed message triggers the configured alternative.

use chrono::Utc;
use serde_json::json;
use tonic::Code;

use callmesh_proto::common::v1 as common;
use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1::EventType;
use callmesh_proto::telephony::v1 as telephony_pb;
use callmesh_runtime::timestamps;

use super::{FlowError, Flows, Handled, Party};
use crate::routes::twilio::form_fields;

impl Flows {
    pub(super) async fn sms_incoming(&self, body: &[u8]) -> Result<Handled, FlowError> {
        let fields = form_fields(body);
        let text = |name: &str| fields.get(name).cloned().unwrap_or_default();
        let (sid, from, to, message) = (text("MessageSid"), text("From"), text("To"), text("Body"));
        let party = self.identify(Some(&to), Some(&from), "sms").await?;
        if party.lead_id.is_empty() {
            return Ok(Handled::Ignored(format!(
                "sender {from:?} is not a phone number"
            )));
        }
        self.clients
            .telephony
            .clone()
            .record_sms(telephony_pb::RecordSmsRequest {
                idempotency_key: format!("sms:{sid}"),
                organization_id: party.organization_id.clone(),
                lead_id: party.lead_id.clone(),
                message_sid: sid.clone(),
                direction: telephony_pb::Direction::Inbound.into(),
                status: telephony_pb::SmsStatus::Received.into(),
                from_number: from.clone(),
                to_number: to.clone(),
                body: message.clone(),
            })
            .await?;
        self.clients
            .context
            .clone()
            .append_message(context_pb::AppendMessageRequest {
                idempotency_key: format!("sms:{sid}"),
                organization_id: party.organization_id.clone(),
                lead_id: party.lead_id.clone(),
                channel: common::Channel::Sms.into(),
                role: common::Role::User.into(),
                content: if message.trim().is_empty() {
                    "(no text)".to_owned()
                } else {
                    message.clone()
                },
                conversation_id: String::new(),
                external_id: sid.clone(),
                occurred_at: Some(timestamps::to_proto(Utc::now())),
            })
            .await?;
        let payload = json!({"message_sid": sid, "from": from, "to": to, "body": message});
        self.publish(
            format!("sms_received:{sid}"),
            &party,
            EventType::SmsReceived,
            payload,
        )
        .await?;

        let human = self
            .clients
            .context
            .clone()
            .get_human_control(context_pb::GetHumanControlRequest {
                lead_id: party.lead_id.clone(),
            })
            .await?
            .into_inner()
            .state
            .is_some_and(|s| s.enabled);
        if human {
            return Ok(Handled::Ignored(
                "a human has this conversation: notified only".into(),
            ));
        }

        let follow_up = self.follow_up(&party.organization_id).await?;
        let lead = self
            .clients
            .lead
            .clone()
            .get_lead(lead_pb::GetLeadRequest {
                lead_id: party.lead_id.clone(),
            })
            .await?
            .into_inner()
            .lead
            .unwrap_or_default();
        let lead_number = if lead.phone_number.is_empty() {
            from.clone()
        } else {
            lead.phone_number.clone()
        };
        if let Some(reply) = follow_up.auto_reply(&lead.name)
            && self.follow_up_due("reply", &party, &sid).await?
        {
            match self
                .reply_by_sms(
                    &format!("auto_reply:{sid}"),
                    &party,
                    &follow_up,
                    &lead_number,
                    &reply,
                    common::Role::Agent,
                )
                .await
            {
                Ok(_) => {}
                // Over the per-lead limit: skipping the reply is the point of the limit.
                Err(status) if status.code() == Code::ResourceExhausted => {
                    tracing::warn!(lead_id = %party.lead_id, "sms limit reached: no auto-reply");
                }
                Err(status) => return Err(status.into()),
            }
        }

        let urgent = follow_up.urgency(&message);
        let hot = lead.score > i32::from(follow_up.call_score_threshold);
        if urgent.is_empty() && !hot {
            return Ok(Handled::Done);
        }
        if !follow_up.is_open(Utc::now()) {
            tracing::info!(lead_id = %party.lead_id, "would call back, but it is outside business hours");
            return Ok(Handled::Done);
        }
        if follow_up.agent_id.is_empty() || follow_up.agent_phone_number_id.is_empty() {
            tracing::warn!(lead_id = %party.lead_id, "would call back, but no agent is configured");
            return Ok(Handled::Done);
        }
        if !self.follow_up_due("call", &party, &sid).await? {
            tracing::info!(lead_id = %party.lead_id, "would call back, but a follow-up call is cooling down");
            return Ok(Handled::Done);
        }
        tracing::info!(lead_id = %party.lead_id, ?urgent, score = lead.score, "calling the lead back");
        self.call_lead(
            &format!("sms_call:{sid}"),
            &party,
            &follow_up,
            &lead_number,
            None,
        )
        .await?;
        Ok(Handled::Done)
    }

    /// Whether an automatic follow-up of `kind` ("reply", "call") to the sender of message
    /// `sid` may go now: no other text from the lead took it within the cooldown. The message
    /// that took it keeps it, so a retried flow still sends what its first attempt began.
    async fn follow_up_due(&self, kind: &str, party: &Party, sid: &str) -> Result<bool, FlowError> {
        let key = format!("{kind}:{}", party.lead_id);
        let due = self
            .sms_follow_up
            .take(&key, sid)
            .await
            .map_err(|e| FlowError::Retryable(format!("sms follow-up cooldown: {e}")))?;
        if !due {
            tracing::info!(lead_id = %party.lead_id, kind, "sms follow-up cooling down: skipped");
        }
        Ok(due)
    }

    /// `received_at`: when the callback reached us, which orders a message's endings.
    pub(super) async fn sms_status(
        &self,
        key: &str,
        body: &[u8],
        received_at: chrono::DateTime<Utc>,
    ) -> Result<Handled, FlowError> {
        let fields = form_fields(body);
        let text = |name: &str| fields.get(name).cloned().unwrap_or_default();
        let status_name = text("MessageStatus");
        let Some(status) = sms_status(&status_name) else {
            return Ok(Handled::Ignored(format!(
                "unknown MessageStatus {status_name:?} kept raw"
            )));
        };
        let raw: serde_json::Map<String, serde_json::Value> =
            fields.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let request = telephony_pb::UpdateSmsStatusRequest {
            idempotency_key: key.to_owned(),
            message_sid: text("MessageSid"),
            status: status.into(),
            error_code: text("ErrorCode"),
            error_message: text("ErrorMessage"),
            raw_payload_json: serde_json::Value::Object(raw).to_string(),
            occurred_at: Some(timestamps::to_proto(received_at)),
        };
        let answer = match self
            .clients
            .telephony
            .clone()
            .update_sms_status(request)
            .await
        {
            Ok(answer) => answer.into_inner(),
            Err(s) if s.code() == Code::NotFound => {
                return Ok(Handled::Ignored(
                    "status of a message callmesh did not send".into(),
                ));
            }
            Err(s) => return Err(s.into()),
        };
        if !answer.transitioned {
            return Ok(Handled::Done);
        }
        let sms = answer.sms.unwrap_or_default();
        let party = Party {
            organization_id: sms.organization_id.clone(),
            lead_id: sms.lead_id.clone(),
        };
        let payload = json!({"sms_id": sms.id, "message_sid": sms.message_sid, "status": status_name,
            "error_code": sms.error_code});
        self.publish(key.to_owned(), &party, EventType::SmsStatus, payload)
            .await?;
        let failed = matches!(
            status,
            telephony_pb::SmsStatus::Failed | telephony_pb::SmsStatus::Undelivered
        );
        if failed && self.config.twilio.call_on_sms_failure && !party.lead_id.is_empty() {
            let follow_up = self.follow_up(&party.organization_id).await?;
            if follow_up.is_open(Utc::now()) && !follow_up.agent_id.is_empty() {
                tracing::info!(lead_id = %party.lead_id, "sms not delivered: calling instead");
                self.call_lead(
                    &format!("sms_failed:{}", sms.message_sid),
                    &party,
                    &follow_up,
                    &sms.to_number,
                    None,
                )
                .await?;
            }
        }
        Ok(Handled::Done)
    }
}

fn sms_status(name: &str) -> Option<telephony_pb::SmsStatus> {
    use telephony_pb::SmsStatus as S;
    Some(match name {
        "accepted" => S::Accepted,
        "scheduled" => S::Scheduled,
        "queued" => S::Queued,
        "sending" => S::Sending,
        "sent" => S::Sent,
        "delivered" => S::Delivered,
        "read" => S::Read,
        "undelivered" => S::Undelivered,
        "failed" => S::Failed,
        "canceled" => S::Canceled,
        "receiving" => S::Receiving,
        "received" => S::Received,
        "partially_delivered" => S::PartiallyDelivered,
        _ => return None,
    })
}
