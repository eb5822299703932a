//! The operator API (the admin token, or an organization's token for its own leads): send an
//! SMS, start an agent call, take a conversation over from the AI and hand it back.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use bytes::Bytes;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::Code;

use callmesh_proto::common::v1 as common;
use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1::EventType;
use callmesh_proto::telephony::v1 as telephony_pb;

use crate::AppState;
use crate::auth::{Principal, authenticate};
use crate::elevenlabs::payload;
use crate::error::ApiError;
use crate::flows::Party;
use crate::policy::FollowUp;
use crate::routes::stream::lead_organization;
use crate::routes::twilio::xml_escape;

#[derive(Deserialize)]
struct SendSms {
    to: String,
    body: String,
    #[serde(default)]
    lead_id: Option<String>,
}

#[derive(Deserialize)]
struct OutboundCall {
    to: String,
    #[serde(default)]
    lead_id: Option<String>,
    #[serde(default)]
    agent_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct ControlNote {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    operator: Option<String>,
}

/// `Idempotency-Key`: a client retrying with the same key gets the first result, not a second
/// SMS or call. Without one, every request acts. Keys belong to the organization the request
/// acts for: another organization choosing the same key makes another request.
pub(crate) fn idempotency_key(headers: &HeaderMap, organization_id: &str, scope: &str) -> String {
    match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        Some(key) if !key.trim().is_empty() => {
            format!("api:{organization_id}:{scope}:{}", key.trim())
        }
        _ => format!("api:{organization_id}:{scope}:{}", uuid::Uuid::now_v7()),
    }
}

/// The organization and lead an operator request is about: the given lead, or the one the
/// number belongs to in the organization sending from the configured number.
async fn party_for(
    state: &AppState,
    principal: &Principal,
    to: &str,
    lead_id: Option<&str>,
) -> Result<(Party, FollowUp, String), ApiError> {
    let mut leads = state.clients.lead.clone();
    let lead = match lead_id.filter(|l| !l.trim().is_empty()) {
        Some(lead_id) => {
            lead_organization(state, principal, lead_id).await?;
            leads
                .get_lead(lead_pb::GetLeadRequest {
                    lead_id: lead_id.to_owned(),
                })
                .await?
                .into_inner()
                .lead
                .unwrap_or_default()
        }
        None => {
            let organization_id = match principal.organization() {
                Some(own) => own.to_owned(),
                None => sending_organization(state).await?,
            };
            let found = leads
                .find_or_create_lead(lead_pb::FindOrCreateLeadRequest {
                    idempotency_key: String::new(),
                    organization_id,
                    phone_number: to.to_owned(),
                    name: String::new(),
                    email: String::new(),
                    source: "operator".to_owned(),
                })
                .await
                .map_err(|s| match s.code() {
                    Code::InvalidArgument => ApiError::BadRequest(format!(
                        "to: {}",
                        s.message().trim_start_matches("phone_number: ")
                    )),
                    _ => ApiError::from(s),
                })?;
            found.into_inner().lead.unwrap_or_default()
        }
    };
    let organization = leads
        .get_organization(lead_pb::GetOrganizationRequest {
            organization_id: lead.organization_id.clone(),
        })
        .await?
        .into_inner()
        .organization
        .unwrap_or_default();
    let follow_up = FollowUp::of(
        &organization,
        &state.config.follow_up,
        state.config.twilio.phone_number.as_deref(),
    );
    let party = Party {
        organization_id: lead.organization_id,
        lead_id: lead.id,
    };
    Ok((party, follow_up, lead.phone_number))
}

/// The organization owning the configured sending number (the default one without it).
async fn sending_organization(state: &AppState) -> Result<String, ApiError> {
    let Some(business) = state.config.twilio.phone_number.clone() else {
        return Ok(callmesh_runtime::config::DEFAULT_ORGANIZATION_ID.to_owned());
    };
    Ok(state
        .clients
        .lead
        .clone()
        .resolve_organization(lead_pb::ResolveOrganizationRequest {
            phone_number: business,
        })
        .await?
        .into_inner()
        .organization
        .map(|o| o.id)
        .unwrap_or_default())
}

pub async fn send_sms(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    let request: SendSms = payload::parse(&body?).map_err(ApiError::BadRequest)?;
    if request.body.trim().is_empty() {
        return Err(ApiError::BadRequest("body: must not be empty".into()));
    }
    let (party, follow_up, number) =
        party_for(&state, &principal, &request.to, request.lead_id.as_deref()).await?;
    let key = idempotency_key(&headers, &party.organization_id, "send_sms");
    let sms = state
        .flows
        .reply_by_sms(
            &key,
            &party,
            &follow_up,
            &number,
            &request.body,
            common::Role::Operator,
        )
        .await?;
    Ok(Json(json!({
        "sms": {
            "id": sms.id,
            "message_sid": sms.message_sid,
            "to": sms.to_number,
            "from": sms.from_number,
            "status": telephony_pb::SmsStatus::try_from(sms.status).map(|s| s.as_str_name()).unwrap_or_default(),
            "lead_id": sms.lead_id,
        }
    })))
}

pub async fn outbound_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    let request: OutboundCall = payload::parse(&body?).map_err(ApiError::BadRequest)?;
    let (party, follow_up, number) =
        party_for(&state, &principal, &request.to, request.lead_id.as_deref()).await?;
    if request
        .agent_id
        .as_deref()
        .unwrap_or(&follow_up.agent_id)
        .is_empty()
    {
        return Err(ApiError::NotConfigured(
            "agent_id: none given and ELEVENLABS_AGENT_ID is not set".into(),
        ));
    }
    if follow_up.agent_phone_number_id.is_empty() {
        return Err(ApiError::NotConfigured(
            "ELEVENLABS_AGENT_PHONE_NUMBER_ID is not set".into(),
        ));
    }
    let key = idempotency_key(&headers, &party.organization_id, "outbound_call");
    let call = state
        .flows
        .call_lead(
            &key,
            &party,
            &follow_up,
            &number,
            request.agent_id.as_deref(),
        )
        .await?;
    Ok(Json(json!({
        "call": {
            "id": call.id,
            "conversation_id": call.conversation_id,
            "call_sid": call.call_sid,
            "to": call.to_number,
            "lead_id": call.lead_id,
        }
    })))
}

pub async fn takeover(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(lead_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    set_control(state, headers, lead_id, body?, true).await
}

pub async fn release(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(lead_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    set_control(state, headers, lead_id, body?, false).await
}

async fn set_control(
    state: AppState,
    headers: HeaderMap,
    lead_id: String,
    body: Bytes,
    enabled: bool,
) -> Result<Json<Value>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    let note: ControlNote = if body.is_empty() {
        ControlNote::default()
    } else {
        payload::parse(&body).map_err(ApiError::BadRequest)?
    };
    let (party, follow_up, _) = party_for(&state, &principal, "", Some(&lead_id)).await?;
    let text = if enabled { note.reason } else { note.summary }.unwrap_or_default();
    let operator = note.operator.unwrap_or_else(|| "operator".to_owned());
    let changed = state
        .clients
        .context
        .clone()
        .set_human_control(context_pb::SetHumanControlRequest {
            idempotency_key: format!(
                "control:{lead_id}:{enabled}:{}",
                Utc::now().timestamp_millis()
            ),
            organization_id: party.organization_id.clone(),
            lead_id: lead_id.clone(),
            enabled,
            operator: operator.clone(),
            note: text.clone(),
        })
        .await?
        .into_inner();
    let mut redirected = Value::Null;
    if enabled && !follow_up.human_number.is_empty() {
        redirected = redirect_live_call(&state, &party, &follow_up.human_number).await?;
    }
    if changed.changed {
        let (kind, name) = if enabled {
            (EventType::HumanTakeover, "human_takeover")
        } else {
            (EventType::HumanReleased, "human_released")
        };
        let payload = json!({"lead_id": lead_id, "operator": operator, "note": text, "redirected_call": redirected});
        state
            .flows
            .publish(
                format!("{name}:{lead_id}:{}", Utc::now().timestamp_millis()),
                &party,
                kind,
                payload,
            )
            .await
            .map_err(|e| ApiError::Unavailable(format!("{e:?}")))?;
    }
    Ok(Json(json!({
        "lead_id": lead_id,
        "human_control": enabled,
        "changed": changed.changed,
        "redirected_call": redirected,
    })))
}

/// Hands a live call of the lead to the human number through Twilio's call-update API.
async fn redirect_live_call(
    state: &AppState,
    party: &Party,
    human_number: &str,
) -> Result<Value, ApiError> {
    use telephony_pb::CallStatus as S;
    let calls = state
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
    let Some(live) = calls.into_iter().find(|c| {
        !c.call_sid.is_empty() && matches!(S::try_from(c.status), Ok(S::InProgress | S::Ringing))
    }) else {
        return Ok(Value::Null);
    };
    let twiml = format!(
        "<Response><Dial>{}</Dial></Response>",
        xml_escape(human_number)
    );
    state
        .clients
        .telephony
        .clone()
        .redirect_call(telephony_pb::RedirectCallRequest {
            idempotency_key: format!("takeover:{}", live.call_sid),
            call_sid: live.call_sid.clone(),
            twiml,
        })
        .await?;
    Ok(json!({"call_id": live.id, "call_sid": live.call_sid, "to": human_number}))
}
