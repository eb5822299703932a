//! Follow-ups shared by the flows and the operator API: the organization's policy, a reply by
//! SMS, and an agent call that starts from the lead's history.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use serde_json::json;

use callmesh_proto::common::v1 as common;
use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1::EventType;
use callmesh_proto::telephony::v1 as telephony_pb;

use super::{FlowError, Flows, Party, kinds};
use crate::inbox::{InboxState, NewItem};
use crate::policy::FollowUp;

/// A scheduled retry of a failed outbound call.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct CallRetry {
    pub organization_id: String,
    pub lead_id: String,
    pub to_number: String,
    pub failed_call_sid: String,
}

impl Flows {
    /// The follow-up settings of an organization, over the mesh's defaults.
    pub(crate) async fn follow_up(&self, organization_id: &str) -> Result<FollowUp, FlowError> {
        let organization = match self.directory.organization(organization_id) {
            Some(known) => known,
            None => {
                let organization = self
                    .clients
                    .lead
                    .clone()
                    .get_organization(lead_pb::GetOrganizationRequest {
                        organization_id: organization_id.to_owned(),
                    })
                    .await?
                    .into_inner()
                    .organization
                    .unwrap_or_default();
                self.directory.remember_organization(&organization);
                organization
            }
        };
        Ok(FollowUp::of(
            &organization,
            &self.config.follow_up,
            self.config.twilio.phone_number.as_deref(),
        ))
    }

    /// Sends `body` to the lead once per key, keeps it in the conversation, tells dashboards.
    pub(crate) async fn reply_by_sms(
        &self,
        key: &str,
        party: &Party,
        follow_up: &FollowUp,
        to: &str,
        body: &str,
        role: common::Role,
    ) -> Result<telephony_pb::Sms, tonic::Status> {
        let sms = self
            .clients
            .telephony
            .clone()
            .send_sms(telephony_pb::SendSmsRequest {
                idempotency_key: key.to_owned(),
                organization_id: party.organization_id.clone(),
                lead_id: party.lead_id.clone(),
                to_number: to.to_owned(),
                from_number: follow_up.own_number.clone(),
                body: body.to_owned(),
            })
            .await?
            .into_inner()
            .sms
            .unwrap_or_default();
        if !party.lead_id.is_empty() {
            self.clients
                .context
                .clone()
                .append_message(context_pb::AppendMessageRequest {
                    idempotency_key: key.to_owned(),
                    organization_id: party.organization_id.clone(),
                    lead_id: party.lead_id.clone(),
                    channel: common::Channel::Sms.into(),
                    role: role.into(),
                    content: body.to_owned(),
                    conversation_id: String::new(),
                    external_id: sms.message_sid.clone(),
                    occurred_at: Some(callmesh_runtime::timestamps::to_proto(Utc::now())),
                })
                .await?;
        }
        let payload =
            json!({"sms_id": sms.id, "message_sid": sms.message_sid, "to": to, "body": body});
        self.publish(
            format!("sms_sent:{key}"),
            party,
            EventType::SmsSent,
            payload,
        )
        .await
        .map_err(|e| tonic::Status::unavailable(format!("{e:?}")))?;
        Ok(sms)
    }

    /// Starts an agent call to the lead, with the variables its history gives, once per key.
    pub(crate) async fn call_lead(
        &self,
        key: &str,
        party: &Party,
        follow_up: &FollowUp,
        to: &str,
        agent_id: Option<&str>,
    ) -> Result<telephony_pb::Call, tonic::Status> {
        let agent_id = agent_id
            .filter(|a| !a.is_empty())
            .unwrap_or(&follow_up.agent_id)
            .to_owned();
        let data = self
            .clients
            .context
            .clone()
            .build_initiation_data(context_pb::BuildInitiationDataRequest {
                caller_number: to.to_owned(),
                called_number: follow_up.own_number.clone(),
                agent_id: agent_id.clone(),
                call_sid: String::new(),
            })
            .await?
            .into_inner()
            .data
            .unwrap_or_default();
        let call = self
            .clients
            .telephony
            .clone()
            .start_outbound_call(telephony_pb::StartOutboundCallRequest {
                idempotency_key: key.to_owned(),
                organization_id: party.organization_id.clone(),
                lead_id: party.lead_id.clone(),
                to_number: to.to_owned(),
                agent_id,
                agent_phone_number_id: follow_up.agent_phone_number_id.clone(),
                dynamic_variables: dynamic_variables(&data),
            })
            .await?
            .into_inner()
            .call
            .unwrap_or_default();
        let payload = json!({"call_id": call.id, "conversation_id": call.conversation_id, "to": to, "reason": key});
        self.publish(
            format!("call_started:{key}"),
            party,
            EventType::CallStarted,
            payload,
        )
        .await
        .map_err(|e| tonic::Status::unavailable(format!("{e:?}")))?;
        Ok(call)
    }

    /// Schedules another attempt at a failed outbound call.
    pub(crate) async fn schedule_call_retry(&self, retry: CallRetry) -> Result<(), FlowError> {
        let spacing = Duration::from_std(self.config.twilio.call_retry_spacing)
            .unwrap_or(Duration::minutes(15));
        let body = serde_json::to_vec(&retry).map_err(|e| FlowError::Permanent(e.to_string()))?;
        self.inbox
            .admit(NewItem {
                provider: kinds::CALLMESH,
                event_type: kinds::CALL_RETRY.to_owned(),
                idempotency_key: format!("call_retry:{}", retry.failed_call_sid),
                raw_body: body,
                state: InboxState::Pending,
                not_before: Utc::now() + spacing,
            })
            .await
            .map_err(|e| FlowError::Retryable(e.to_string()))?;
        tracing::info!(lead_id = %retry.lead_id, call_sid = %retry.failed_call_sid, "call retry scheduled");
        Ok(())
    }

    pub(super) async fn call_retry(&self, body: &[u8]) -> Result<super::Handled, FlowError> {
        let retry: CallRetry =
            serde_json::from_slice(body).map_err(|e| FlowError::Permanent(e.to_string()))?;
        let follow_up = self.follow_up(&retry.organization_id).await?;
        if !follow_up.is_open(Utc::now()) {
            return Ok(super::Handled::Ignored(
                "outside business hours: retry dropped".into(),
            ));
        }
        let party = Party {
            organization_id: retry.organization_id.clone(),
            lead_id: retry.lead_id.clone(),
        };
        self.call_lead(
            &format!("retry:{}", retry.failed_call_sid),
            &party,
            &follow_up,
            &retry.to_number,
            None,
        )
        .await?;
        Ok(super::Handled::Done)
    }
}

/// The initiation variables as ElevenLabs' outbound-call API takes them.
pub(crate) fn dynamic_variables(data: &context_pb::InitiationData) -> HashMap<String, String> {
    [
        ("conversation_context", data.conversation_context.clone()),
        ("customer_name", data.customer_name.clone()),
        ("organization_name", data.organization_name.clone()),
        ("organization_id", data.organization_id.clone()),
        ("lead_status", data.lead_status.clone()),
        ("previous_summary", data.previous_summary.clone()),
        ("caller_type", data.caller_type.clone()),
        (
            "has_conversation_history",
            data.has_conversation_history.to_string(),
        ),
        ("total_messages", data.total_messages.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Flows {
    /// Hands a finished call's outcome to the notification service for the CRM (once per
    /// call). Without any CRM configured this does nothing.
    pub(crate) async fn forward_to_crm(
        &self,
        party: &Party,
        call: &telephony_pb::Call,
        status: &str,
        summary: &str,
        known_lead: Option<&lead_pb::Lead>,
    ) -> Result<(), FlowError> {
        use callmesh_proto::notification::v1 as notification_pb;
        if party.lead_id.is_empty() || call.id.is_empty() {
            return Ok(());
        }
        let lead = match known_lead.filter(|lead| lead.id == party.lead_id) {
            Some(lead) => lead.clone(),
            None => self
                .clients
                .lead
                .clone()
                .get_lead(lead_pb::GetLeadRequest {
                    lead_id: party.lead_id.clone(),
                })
                .await?
                .into_inner()
                .lead
                .unwrap_or_default(),
        };
        let follow_up = self.follow_up(&party.organization_id).await?;
        let who = if lead.name.is_empty() {
            lead.phone_number.clone()
        } else {
            lead.name.clone()
        };
        let direction = if call.direction == telephony_pb::Direction::Outbound as i32 {
            "Outbound"
        } else {
            "Inbound"
        };
        let request = notification_pb::ForwardToCrmRequest {
            idempotency_key: format!("crm:{}", call.id),
            organization_id: party.organization_id.clone(),
            lead_id: party.lead_id.clone(),
            call_id: call.id.clone(),
            record: Some(notification_pb::CrmRecord {
                subject: format!("{direction} AI call with {who}"),
                to: lead.phone_number.clone(),
                name: lead.name.clone(),
                summary: summary.to_owned(),
                status: status.to_owned(),
                duration_secs: call.duration_secs,
            }),
            webhook_url: follow_up.crm_webhook_url.clone(),
        };
        match self.clients.batched.forward_to_crm.call(request).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                tracing::debug!("no CRM webhook configured; outcome not forwarded");
                Ok(())
            }
            Err(s) => Err(s.into()),
        }
    }
}

/// The CRM's word for how a call went.
pub(crate) fn crm_status(call: &telephony_pb::Call) -> &'static str {
    use telephony_pb::CallStatus as S;
    match S::try_from(call.status) {
        _ if call.answered_by.starts_with("machine") => "voicemail",
        Ok(S::Completed | S::InProgress) => "held",
        Ok(S::Busy | S::NoAnswer | S::Canceled) => "no answer",
        _ => "failed",
    }
}
