//! Twilio webhooks. Each is verified against `X-Twilio-Signature` (over `PUBLIC_BASE_URL` plus
//! the path and query exactly as received), committed to the inbox, and answered with TwiML at
//! once; the work happens from the inbox. Incoming voice calls are answered synchronously with
//! TwiML that connects the caller.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use tonic::Code;

use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::lead::v1 as lead_pb;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::flows::kinds;
use crate::inbox::{InboxState, NewItem};
use crate::policy::FollowUp;
use crate::verify::{Verified, twilio};

/// How long an incoming call may wait for the mesh before getting the default TwiML.
const VOICE_DEADLINE: Duration = Duration::from_secs(3);

/// `<Response/>`: "nothing to say", as TwiML (never `text/plain`, which would become an SMS).
pub fn empty_twiml() -> Response {
    twiml("<Response/>".to_owned())
}

fn twiml(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{body}"),
    )
        .into_response()
}

/// The form fields of a verified Twilio request (the last value of a repeated key).
pub fn form_fields(body: &[u8]) -> BTreeMap<String, String> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn verify(
    state: &AppState,
    uri: &OriginalUri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Verified<Bytes>, ApiError> {
    let twilio_config = &state.config.twilio;
    let base = twilio_config.public_base_url.as_deref().ok_or_else(|| {
        ApiError::NotConfigured(
            "PUBLIC_BASE_URL is not set: Twilio signatures cannot be checked".into(),
        )
    })?;
    if twilio_config.auth_tokens.is_empty() {
        return Err(ApiError::NotConfigured(
            "TWILIO_AUTH_TOKEN is not set".into(),
        ));
    }
    let target = uri.0.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let url = format!("{base}{target}");
    twilio::verify(&twilio_config.auth_tokens, &url, headers, body)
        .map_err(|e| ApiError::Forbidden(e.to_string()))
}

fn field<'a>(fields: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    fields
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::BadRequest(format!("{name}: is required")))
}

async fn admit(
    state: &AppState,
    event_type: &str,
    key: String,
    body: Bytes,
) -> Result<(), ApiError> {
    let admission = state
        .inbox
        .admit(NewItem {
            provider: kinds::TWILIO,
            event_type: event_type.to_owned(),
            idempotency_key: key,
            raw_body: body.to_vec(),
            state: InboxState::Pending,
            not_before: Utc::now(),
        })
        .await?;
    crate::observe::webhook_admitted(
        kinds::TWILIO,
        event_type,
        admission == crate::inbox::Admission::Duplicate,
    );
    Ok(())
}

/// The shape of every asynchronous Twilio webhook: verify, derive the deduplication key from
/// the form (400 naming a missing field), commit to the inbox, answer `<Response/>`.
async fn accept(
    state: &AppState,
    uri: &OriginalUri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    event_type: &str,
    key: impl FnOnce(&BTreeMap<String, String>) -> Result<String, ApiError>,
) -> Result<Response, ApiError> {
    let body = verify(state, uri, headers, body?)?.into_body();
    let key = key(&form_fields(&body))?;
    admit(state, event_type, key, body).await?;
    Ok(empty_twiml())
}

/// What every Twilio webhook may be refused with (described once for the OpenAPI document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum TwilioRefusal {
    #[response(status = 400, description = "A required form field is missing (named)")]
    BadRequest(ErrorBody),
    #[response(status = 403, description = "`X-Twilio-Signature` missing or wrong")]
    Forbidden(ErrorBody),
    #[response(status = 408, description = "The body did not arrive in time")]
    Timeout(ErrorBody),
    #[response(status = 413, description = "Body over `TWILIO_MAX_BODY_BYTES`")]
    TooLarge(ErrorBody),
    #[response(
        status = 503,
        description = "`PUBLIC_BASE_URL` or `TWILIO_AUTH_TOKEN` not set (`not_configured`), or the inbox cannot store it now (retry)"
    )]
    Unavailable(ErrorBody),
}

#[utoipa::path(
    post,
    path = "/api/webhooks/twilio/sms/incoming",
    tag = "webhooks",
    operation_id = "twilio_sms_incoming",
    summary = "Twilio: an SMS from a lead",
    request_body(content = crate::routes::payloads::TwilioSmsIncoming, content_type = "application/x-www-form-urlencoded"),
    params(crate::routes::payloads::TwilioSignature),
    responses(
        (status = 200, description = "Stored in the inbox; TwiML `<Response/>` (replies go out through the API)", content_type = "text/xml", body = String),
        TwilioRefusal,
    ),
)]
pub async fn sms_incoming(
    State(state): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    accept(
        &state,
        &uri,
        &headers,
        body,
        kinds::SMS_INCOMING,
        |fields| {
            field(fields, "From")?;
            field(fields, "To")?;
            Ok(format!("sms:{}", field(fields, "MessageSid")?))
        },
    )
    .await
}

#[utoipa::path(
    post,
    path = "/api/webhooks/twilio/sms/status",
    tag = "webhooks",
    operation_id = "twilio_sms_status",
    summary = "Twilio: an SMS's delivery status",
    request_body(content = crate::routes::payloads::TwilioSmsStatus, content_type = "application/x-www-form-urlencoded"),
    params(crate::routes::payloads::TwilioSignature),
    responses(
        (status = 200, description = "Stored in the inbox; TwiML `<Response/>`", content_type = "text/xml", body = String),
        TwilioRefusal,
    ),
)]
pub async fn sms_status(
    State(state): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    accept(&state, &uri, &headers, body, kinds::SMS_STATUS, |fields| {
        let sid = field(fields, "MessageSid")?;
        Ok(format!(
            "sms_status:{sid}:{}",
            field(fields, "MessageStatus")?
        ))
    })
    .await
}

#[utoipa::path(
    post,
    path = "/api/webhooks/twilio/voice/status",
    tag = "webhooks",
    operation_id = "twilio_voice_status",
    summary = "Twilio: a call's status",
    request_body(content = crate::routes::payloads::TwilioVoiceStatus, content_type = "application/x-www-form-urlencoded"),
    params(crate::routes::payloads::TwilioSignature),
    responses(
        (status = 200, description = "Stored in the inbox; TwiML `<Response/>`", content_type = "text/xml", body = String),
        TwilioRefusal,
    ),
)]
pub async fn voice_status(
    State(state): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    accept(
        &state,
        &uri,
        &headers,
        body,
        kinds::VOICE_STATUS,
        |fields| {
            let sid = field(fields, "CallSid")?;
            let status = field(fields, "CallStatus")?;
            // (CallSid, SequenceNumber) identifies a callback; without a sequence, its status does.
            Ok(
                match fields.get("SequenceNumber").filter(|s| !s.is_empty()) {
                    Some(sequence) => format!("voice_status:{sid}:{sequence}"),
                    None => format!("voice_status:{sid}:{status}"),
                },
            )
        },
    )
    .await
}

#[utoipa::path(
    post,
    path = "/api/webhooks/twilio/voice/recording",
    tag = "webhooks",
    operation_id = "twilio_voice_recording",
    summary = "Twilio: a call's recording",
    request_body(content = crate::routes::payloads::TwilioRecording, content_type = "application/x-www-form-urlencoded"),
    params(crate::routes::payloads::TwilioSignature),
    responses(
        (status = 200, description = "Stored in the inbox; TwiML `<Response/>`", content_type = "text/xml", body = String),
        TwilioRefusal,
    ),
)]
pub async fn voice_recording(
    State(state): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    accept(&state, &uri, &headers, body, kinds::RECORDING, |fields| {
        let sid = field(fields, "RecordingSid")?;
        Ok(format!(
            "recording:{sid}:{}",
            field(fields, "RecordingStatus")?
        ))
    })
    .await
}

/// Answers an inbound call: a human who has taken the conversation over, else the
/// organization's agent, else its forward number. The call record follows from the inbox.
#[utoipa::path(
    post,
    path = "/api/webhooks/twilio/voice/incoming",
    tag = "webhooks",
    operation_id = "twilio_voice_incoming",
    summary = "Twilio: an incoming call, answered with TwiML",
    request_body(content = crate::routes::payloads::TwilioVoiceIncoming, content_type = "application/x-www-form-urlencoded"),
    params(crate::routes::payloads::TwilioSignature),
    responses(
        (status = 200, description = "TwiML connecting the caller: the human who took the conversation over, the organization's agent, its forward number, or an apology", content_type = "text/xml", body = String),
        TwilioRefusal,
    ),
)]
pub async fn voice_incoming(
    State(state): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = verify(&state, &uri, &headers, body?)?.into_body();
    let fields = form_fields(&body);
    let sid = field(&fields, "CallSid")?.to_owned();
    let from = fields.get("From").cloned().unwrap_or_default();
    let to = fields.get("To").cloned().unwrap_or_default();
    admit(
        &state,
        kinds::VOICE_INCOMING,
        format!("voice_incoming:{sid}"),
        body,
    )
    .await?;
    let plan = tokio::time::timeout(VOICE_DEADLINE, route_call(&state, &from, &to)).await;
    let (follow_up, human) = match plan {
        Ok(Ok(plan)) => plan,
        Ok(Err(error)) => {
            tracing::warn!(call_sid = %sid, %error, "cannot look the caller up; default routing");
            (None, false)
        }
        Err(_) => {
            tracing::warn!(call_sid = %sid, "caller lookup too slow; default routing");
            (None, false)
        }
    };
    let defaults = &state.config.follow_up;
    let (human_number, agent_id, forward) = match &follow_up {
        Some(f) => (
            f.human_number.clone(),
            f.agent_id.clone(),
            f.forward_number.clone(),
        ),
        None => (
            defaults.human_number.clone(),
            defaults.agent_id.clone(),
            defaults.forward_number.clone(),
        ),
    };
    let answer = if human && !human_number.is_empty() {
        format!(
            "<Response><Dial>{}</Dial></Response>",
            xml_escape(&human_number)
        )
    } else if !agent_id.is_empty() {
        let url = format!(
            "{}?agent_id={}",
            state.config.twilio.agent_stream_url, agent_id
        );
        format!(
            "<Response><Connect><Stream url=\"{}\"/></Connect></Response>",
            xml_escape(&url)
        )
    } else if !forward.is_empty() {
        format!("<Response><Dial>{}</Dial></Response>", xml_escape(&forward))
    } else {
        "<Response><Say>Sorry, nobody can take your call right now. Please try again later.</Say><Hangup/></Response>".to_owned()
    };
    Ok(twiml(answer))
}

/// The called organization's follow-up settings, and whether a human has the caller.
async fn route_call(
    state: &AppState,
    from: &str,
    to: &str,
) -> Result<(Option<FollowUp>, bool), tonic::Status> {
    let mut lead = state.clients.lead.clone();
    let organization = match lead
        .resolve_organization(lead_pb::ResolveOrganizationRequest {
            phone_number: to.to_owned(),
        })
        .await
    {
        Ok(answer) => answer.into_inner().organization.unwrap_or_default(),
        Err(status) if status.code() == Code::InvalidArgument => return Ok((None, false)),
        Err(status) => return Err(status),
    };
    let follow_up = FollowUp::of(
        &organization,
        &state.config.follow_up,
        state.config.twilio.phone_number.as_deref(),
    );
    let found = lead
        .find_or_create_lead(lead_pb::FindOrCreateLeadRequest {
            idempotency_key: String::new(),
            organization_id: organization.id.clone(),
            phone_number: from.to_owned(),
            name: String::new(),
            email: String::new(),
            source: "inbound_call".to_owned(),
        })
        .await;
    let lead_id = match found {
        Ok(answer) => answer.into_inner().lead.map(|l| l.id).unwrap_or_default(),
        Err(status) if status.code() == Code::InvalidArgument => {
            return Ok((Some(follow_up), false));
        }
        Err(status) => return Err(status),
    };
    let control = state
        .clients
        .context
        .clone()
        .get_human_control(context_pb::GetHumanControlRequest { lead_id })
        .await?
        .into_inner()
        .state
        .is_some_and(|s| s.enabled);
    Ok((Some(follow_up), control))
}

pub fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
