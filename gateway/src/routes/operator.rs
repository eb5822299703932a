//! The operator API (the admin token, or an organization's token for its own leads): send an
//! SMS, start an agent call, take a conversation over from the AI and hand it back.

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use bytes::Bytes;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tonic::Code;
use utoipa::ToSchema;

use callmesh_proto::common::v1 as common;
use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1::EventType;
use callmesh_proto::telephony::v1 as telephony_pb;

use crate::AppState;
use crate::auth::{Principal, authenticate};
use crate::elevenlabs::payload;
use crate::error::{ApiError, ErrorBody};
use crate::flows::Party;
use crate::policy::FollowUp;
use crate::routes::admin::path;
use crate::routes::stream::lead_organization;
use crate::routes::twilio::xml_escape;

/// An SMS from the business's number.
#[derive(Deserialize, ToSchema)]
pub struct SendSms {
    /// The lead's number (E.164 or national); ignored when `lead_id` is given.
    to: String,
    /// The text; must not be empty.
    body: String,
    /// The lead to text (its own number is used).
    #[serde(default)]
    lead_id: Option<String>,
}

/// An agent call to a lead.
#[derive(Deserialize, ToSchema)]
pub struct OutboundCall {
    /// The lead's number; ignored when `lead_id` is given.
    to: String,
    #[serde(default)]
    lead_id: Option<String>,
    /// The ElevenLabs agent; the organization's (or `ELEVENLABS_AGENT_ID`) when absent.
    #[serde(default)]
    agent_id: Option<String>,
}

/// An optional note on a takeover (`reason`) or a release (`summary`); the body may be empty.
#[derive(Deserialize, Default, ToSchema)]
pub struct ControlNote {
    /// Why the human takes over (takeover).
    #[serde(default)]
    reason: Option<String>,
    /// What the human did (release).
    #[serde(default)]
    summary: Option<String>,
    /// Who; `operator` when absent.
    #[serde(default)]
    operator: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SentSms {
    pub sms: SmsRecord,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SmsRecord {
    pub id: String,
    /// Twilio's MessageSid.
    pub message_sid: String,
    pub to: String,
    pub from: String,
    /// `SMS_STATUS_QUEUED`, `SMS_STATUS_SENT`, ...
    pub status: String,
    pub lead_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StartedCall {
    pub call: CallRecord,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallRecord {
    pub id: String,
    pub conversation_id: String,
    pub call_sid: String,
    pub to: String,
    pub lead_id: String,
}

/// Who has the conversation now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ControlChange {
    pub lead_id: String,
    /// Whether a human has the conversation (the AI stays quiet).
    pub human_control: bool,
    /// False when it already was so.
    pub changed: bool,
    /// A live call handed to the human number on takeover; null when none was.
    pub redirected_call: Option<RedirectedCall>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RedirectedCall {
    pub call_id: String,
    pub call_sid: String,
    pub to: String,
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

#[utoipa::path(
    post,
    path = "/api/twilio/send-sms",
    tag = "operator",
    operation_id = "send_sms",
    summary = "Texts a lead from the business's number (kept in its conversation)",
    request_body(content = SendSms, content_type = "application/json"),
    params(IdempotencyKey),
    security(("admin_token" = []), ("organization_token" = [])),
    responses(
        (status = 200, description = "The SMS, handed to Twilio", body = SentSms),
        (status = 400, description = "A field is missing or wrong (named in the message)", body = ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = ErrorBody),
        (status = 403, description = "The lead belongs to another organization", body = ErrorBody),
        (status = 404, description = "No such lead", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 429, description = "Too many texts to this lead", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 502, description = "Twilio refused the SMS (its code in `provider_code`)", body = ErrorBody),
        (status = 503, description = "Twilio is not configured, or a service is down", body = ErrorBody),
    ),
)]
pub async fn send_sms(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SentSms>, ApiError> {
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
    Ok(Json(SentSms {
        sms: SmsRecord {
            status: telephony_pb::SmsStatus::try_from(sms.status)
                .map(|s| s.as_str_name())
                .unwrap_or_default()
                .to_owned(),
            id: sms.id,
            message_sid: sms.message_sid,
            to: sms.to_number,
            from: sms.from_number,
            lead_id: sms.lead_id,
        },
    }))
}

/// `Idempotency-Key`, as a documented header parameter.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub(crate) struct IdempotencyKey {
    /// A client retrying with the same key gets the first result instead of acting twice.
    #[param(rename = "Idempotency-Key")]
    idempotency_key: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/elevenlabs/outbound-call",
    tag = "operator",
    operation_id = "outbound_call",
    summary = "Starts an agent call to a lead through ElevenLabs",
    request_body(content = OutboundCall, content_type = "application/json"),
    params(IdempotencyKey),
    security(("admin_token" = []), ("organization_token" = [])),
    responses(
        (status = 200, description = "The call, started", body = StartedCall),
        (status = 400, description = "A field is missing or wrong (named in the message)", body = ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = ErrorBody),
        (status = 403, description = "The lead belongs to another organization", body = ErrorBody),
        (status = 404, description = "No such lead", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 429, description = "Too many calls to this lead", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 502, description = "ElevenLabs refused the call", body = ErrorBody),
        (status = 503, description = "No agent or agent phone number configured (`not_configured`), or a service is down", body = ErrorBody),
    ),
)]
pub async fn outbound_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<StartedCall>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    let mut request: OutboundCall = payload::parse(&body?).map_err(ApiError::BadRequest)?;
    // An empty agent id is no choice: the organization's (or the configured) agent calls.
    request.agent_id = request.agent_id.filter(|a| !a.trim().is_empty());
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
    Ok(Json(StartedCall {
        call: CallRecord {
            id: call.id,
            conversation_id: call.conversation_id,
            call_sid: call.call_sid,
            to: call.to_number,
            lead_id: call.lead_id,
        },
    }))
}

#[utoipa::path(
    post,
    path = "/api/conversations/{lead_id}/takeover",
    tag = "operator",
    operation_id = "takeover",
    summary = "A human takes the lead's conversation over from the AI",
    request_body(content = Option<ControlNote>, content_type = "application/json"),
    params(("lead_id" = String, Path, description = "The lead")),
    security(("admin_token" = []), ("organization_token" = [])),
    responses(
        (status = 200, description = "The conversation is the human's", body = ControlChange),
        (status = 400, description = "The body is not a note", body = ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = ErrorBody),
        (status = 403, description = "The lead belongs to another organization", body = ErrorBody),
        (status = 404, description = "No such lead", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 502, description = "Twilio refused to redirect the live call", body = ErrorBody),
        (status = 503, description = "A service is down", body = ErrorBody),
    ),
)]
pub async fn takeover(
    State(state): State<AppState>,
    headers: HeaderMap,
    lead_id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ControlChange>, ApiError> {
    set_control(state, headers, path(lead_id)?, body?, true).await
}

#[utoipa::path(
    post,
    path = "/api/conversations/{lead_id}/release",
    tag = "operator",
    operation_id = "release",
    summary = "The human hands the lead's conversation back to the AI",
    request_body(content = Option<ControlNote>, content_type = "application/json"),
    params(("lead_id" = String, Path, description = "The lead")),
    security(("admin_token" = []), ("organization_token" = [])),
    responses(
        (status = 200, description = "The conversation is the AI's", body = ControlChange),
        (status = 400, description = "The body is not a note", body = ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = ErrorBody),
        (status = 403, description = "The lead belongs to another organization", body = ErrorBody),
        (status = 404, description = "No such lead", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 503, description = "A service is down", body = ErrorBody),
    ),
)]
pub async fn release(
    State(state): State<AppState>,
    headers: HeaderMap,
    lead_id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ControlChange>, ApiError> {
    set_control(state, headers, path(lead_id)?, body?, false).await
}

async fn set_control(
    state: AppState,
    headers: HeaderMap,
    lead_id: String,
    body: Bytes,
    enabled: bool,
) -> Result<Json<ControlChange>, ApiError> {
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
    let mut redirected = None;
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
    Ok(Json(ControlChange {
        lead_id,
        human_control: enabled,
        changed: changed.changed,
        redirected_call: redirected,
    }))
}

/// Hands a live call of the lead to the human number through Twilio's call-update API.
async fn redirect_live_call(
    state: &AppState,
    party: &Party,
    human_number: &str,
) -> Result<Option<RedirectedCall>, ApiError> {
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
        return Ok(None);
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
    Ok(Some(RedirectedCall {
        call_id: live.id,
        call_sid: live.call_sid,
        to: human_number.to_owned(),
    }))
}
