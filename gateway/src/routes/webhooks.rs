//! Asynchronous ElevenLabs webhooks: verify the raw body, check it is a payload we can work
//! with (400 naming the field if not), commit it to the inbox, answer 200. The work happens
//! later, from the inbox.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, OriginalUri, State};
use axum::http::HeaderMap;
use bytes::Bytes;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::AppState;
use crate::elevenlabs::payload::{
    self, Audio, CallStatusUpdate, ConversationEvent, Envelope, InitiationFailure, Routing,
    Transcription,
};
use crate::error::{ApiError, ErrorBody};
use crate::flows::{CallStatusName, call_status_key, kinds};
use crate::inbox::{Admission, InboxState, NewItem};
use crate::secret::Secret;
use crate::verify::{self, Verified, elevenlabs};

/// A webhook's answer once it is in the inbox.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookAck {
    /// `accepted`, or `duplicate` for a repeated delivery (stored once, processed once).
    #[schema(example = "accepted")]
    pub status: String,
}

/// The answer to `GET` on a webhook path.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookHealth {
    #[schema(example = "ok")]
    pub status: String,
    /// The path asked.
    pub endpoint: String,
}

/// `GET` on a webhook path: a health check for the provider's dashboard.
pub async fn health_check(OriginalUri(uri): OriginalUri) -> Json<WebhookHealth> {
    Json(WebhookHealth {
        status: "ok".into(),
        endpoint: uri.path().to_owned(),
    })
}

/// Post-call (also served at `/api/convai-webhook` and `/webhooks/elevenlabs`).
#[utoipa::path(
    post,
    path = "/api/webhooks/elevenlabs/post-call",
    tag = "webhooks",
    operation_id = "elevenlabs_post_call",
    summary = "ElevenLabs post-call webhook: transcript, audio or initiation failure",
    request_body(content = crate::routes::payloads::PostCallWebhook, content_type = "application/json"),
    params(crate::routes::payloads::ElevenLabsSignature),
    responses(
        (status = 200, description = "Stored in the inbox (or already there)", body = WebhookAck),
        (status = 400, description = "Not a payload callmesh can work with (the field is named)", body = ErrorBody),
        (status = 401, description = "Signature missing, wrong or stale", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody),
        (status = 413, description = "Body over `ELEVENLABS_POST_CALL_MAX_BODY_BYTES`", body = ErrorBody),
        (status = 503, description = "No secret configured (`not_configured`), or the inbox cannot store it now (retry)", body = ErrorBody),
    ),
)]
pub async fn post_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookAck>, ApiError> {
    let secrets = &state.config.elevenlabs.post_call_secrets;
    let verified = verify_hmac(
        secrets,
        "ELEVENLABS_POST_CALL_WEBHOOK_SECRET",
        &headers,
        body?,
    )?;
    let body = verified.into_body();
    let routing: Envelope<Routing> = payload::parse(&body).map_err(ApiError::BadRequest)?;
    let kind = routing.kind.clone();
    // Known types are checked whole at the door, so a bad payload is refused, not dead-lettered.
    let (state_, conversation) = match kind.as_str() {
        kinds::POST_CALL_TRANSCRIPTION => {
            let parsed: Envelope<Transcription> =
                payload::parse(&body).map_err(ApiError::BadRequest)?;
            (InboxState::Pending, Some(parsed.data.conversation_id))
        }
        kinds::POST_CALL_AUDIO => {
            let parsed: Envelope<Audio> = payload::parse(&body).map_err(ApiError::BadRequest)?;
            (InboxState::Pending, Some(parsed.data.conversation_id))
        }
        kinds::CALL_INITIATION_FAILURE => {
            let parsed: Envelope<InitiationFailure> =
                payload::parse(&body).map_err(ApiError::BadRequest)?;
            (InboxState::Pending, Some(parsed.data.conversation_id))
        }
        other => {
            tracing::info!(
                event_type = other,
                "post-call webhook of a type callmesh does not handle; stored and ignored"
            );
            (InboxState::Ignored, routing.data.conversation_id.clone())
        }
    };
    let key = match conversation {
        Some(conversation_id) => format!("{kind}:{conversation_id}"),
        None => format!("{kind}:{}", digest(&body)),
    };
    admit(&state, kind, key, body, state_).await
}

#[utoipa::path(
    post,
    path = "/api/webhooks/elevenlabs/conversation-events",
    tag = "webhooks",
    operation_id = "elevenlabs_conversation_events",
    summary = "Relayed live agent events",
    request_body(content = crate::routes::payloads::ConversationEventWebhook, content_type = "application/json"),
    params(crate::routes::payloads::ElevenLabsSignature),
    responses(
        (status = 200, description = "Stored in the inbox (or already there)", body = WebhookAck),
        (status = 400, description = "Not an event (the field is named)", body = ErrorBody),
        (status = 401, description = "Signature missing, wrong or stale", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody),
        (status = 413, description = "Body over `ELEVENLABS_MAX_BODY_BYTES`", body = ErrorBody),
        (status = 503, description = "No secret configured (`not_configured`), or the inbox cannot store it now (retry)", body = ErrorBody),
    ),
)]
pub async fn conversation_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookAck>, ApiError> {
    let secrets = &state.config.elevenlabs.conversation_events_secrets;
    let verified = verify_hmac(
        secrets,
        "ELEVENLABS_CONVERSATION_EVENTS_WEBHOOK_SECRET",
        &headers,
        body?,
    )?;
    let body = verified.into_body();
    let event: ConversationEvent = payload::parse(&body).map_err(ApiError::BadRequest)?;
    // The context service cannot store an event without a type: refused here, not
    // dead-lettered later.
    if event.kind.trim().is_empty() {
        return Err(ApiError::BadRequest("type: must not be empty".into()));
    }
    // A retry repeats the body byte for byte.
    let key = format!("{}:{}", kinds::CONVERSATION_EVENT, digest(&body));
    admit(
        &state,
        kinds::CONVERSATION_EVENT.to_owned(),
        key,
        body,
        InboxState::Pending,
    )
    .await
}

/// Signed like the other ElevenLabs webhooks when `ELEVENLABS_CALL_STATUS_WEBHOOK_SECRET` (or
/// `ELEVENLABS_WEBHOOK_SECRET`) is set; otherwise only the allowed addresses may post.
#[utoipa::path(
    post,
    path = "/api/webhooks/elevenlabs/call-status",
    tag = "webhooks",
    operation_id = "elevenlabs_call_status",
    summary = "Call status updates (`call.*` events)",
    request_body(content = crate::routes::payloads::CallStatusWebhook, content_type = "application/json"),
    params(crate::routes::payloads::ElevenLabsSignature),
    responses(
        (status = 200, description = "Stored in the inbox (or already there)", body = WebhookAck),
        (status = 400, description = "Not a status update, or neither `conversation_id` nor `callSid`", body = ErrorBody),
        (status = 401, description = "Signature missing, wrong or stale, or an address not allowed", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody),
        (status = 413, description = "Body over `ELEVENLABS_MAX_BODY_BYTES`", body = ErrorBody),
        (status = 503, description = "The inbox cannot store it now (retry)", body = ErrorBody),
    ),
)]
pub async fn call_status(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookAck>, ApiError> {
    let el = &state.config.elevenlabs;
    let body = body?;
    let verified = if el.call_status_secrets.is_empty() {
        let address = client_address(peer, &headers, el.trusted_proxies);
        verify::allowed_address(address, &el.allowed_ips, body)?
    } else {
        verify_hmac(
            &el.call_status_secrets,
            "ELEVENLABS_CALL_STATUS_WEBHOOK_SECRET",
            &headers,
            body,
        )?
    };
    let body = verified.into_body();
    let update: CallStatusUpdate = payload::parse(&body).map_err(ApiError::BadRequest)?;
    let Some(name) = CallStatusName::from_event(&update.event_type) else {
        tracing::info!(event_type = %update.event_type, "unknown call status event; stored and ignored");
        let key = format!("{}:unknown:{}", kinds::CALL_STATUS, digest(&body));
        return admit(
            &state,
            kinds::CALL_STATUS.to_owned(),
            key,
            body,
            InboxState::Ignored,
        )
        .await;
    };
    let key = call_status_key(&update, name).ok_or_else(|| {
        ApiError::BadRequest("conversation_id: a conversation_id or callSid is required".into())
    })?;
    admit(
        &state,
        kinds::CALL_STATUS.to_owned(),
        key,
        body,
        InboxState::Pending,
    )
    .await
}

fn verify_hmac(
    secrets: &[Secret],
    variable: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Verified<Bytes>, ApiError> {
    if secrets.is_empty() {
        return Err(ApiError::NotConfigured(format!(
            "{variable} (or ELEVENLABS_WEBHOOK_SECRET) is not set"
        )));
    }
    Ok(elevenlabs::verify(
        secrets,
        headers,
        body,
        Utc::now().timestamp(),
    )?)
}

async fn admit(
    state: &AppState,
    event_type: String,
    key: String,
    body: Bytes,
    item_state: InboxState,
) -> Result<Json<WebhookAck>, ApiError> {
    let admission = state
        .inbox
        .admit(NewItem {
            provider: kinds::ELEVENLABS,
            event_type: event_type.clone(),
            idempotency_key: key.clone(),
            raw_body: body.to_vec(),
            state: item_state,
            not_before: Utc::now(),
        })
        .await?;
    crate::observe::webhook_admitted(
        kinds::ELEVENLABS,
        &event_type,
        admission == Admission::Duplicate,
    );
    let status = match admission {
        Admission::Accepted => "accepted",
        Admission::Duplicate => {
            tracing::info!(%event_type, event_key = %key, "repeated delivery; already in the inbox");
            "duplicate"
        }
    };
    Ok(Json(WebhookAck {
        status: status.to_owned(),
    }))
}

/// Refuses a post-call request whose signature header is missing, malformed or stale before
/// its body (up to the audio limit) is read. With no secret configured the handler answers.
pub async fn refuse_unsigned(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if request.method() == axum::http::Method::POST
        && !state.config.elevenlabs.post_call_secrets.is_empty()
        && let Err(error) = elevenlabs::precheck(request.headers(), Utc::now().timestamp())
    {
        return ApiError::from(error).into_response();
    }
    next.run(request).await
}

/// The client's address: the socket peer, or, behind `trusted_proxies` proxies that each
/// append the address they were reached from to `X-Forwarded-For`, the entry the outermost
/// proxy added. Entries to its left were written by the client and prove nothing.
fn client_address(
    peer: SocketAddr,
    headers: &HeaderMap,
    trusted_proxies: usize,
) -> std::net::IpAddr {
    if trusted_proxies == 0 {
        return peer.ip();
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    entries
        .len()
        .checked_sub(trusted_proxies)
        .and_then(|index| entries[index].parse().ok())
        .unwrap_or_else(|| peer.ip())
}

fn digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().expect("header"));
        headers
    }

    #[test]
    fn only_the_entry_a_trusted_proxy_added_is_believed() {
        let proxy: SocketAddr = "10.0.0.2:443".parse().expect("addr");
        // The client wrote the first entry; the one proxy in front of us added the last.
        let headers = forwarded("34.67.146.145, 198.51.100.9");
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        assert_eq!(client_address(proxy, &headers, 1), ip("198.51.100.9"));
        // Two proxies: the outer one added the client, the inner one the outer proxy.
        let two = forwarded("34.67.146.145, 198.51.100.9, 10.0.0.1");
        assert_eq!(client_address(proxy, &two, 2), ip("198.51.100.9"));
        // No trusted proxy, or fewer entries than proxies: the socket peer.
        assert_eq!(client_address(proxy, &headers, 0), ip("10.0.0.2"));
        assert_eq!(
            client_address(proxy, &forwarded("34.67.146.145"), 2),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(proxy, &forwarded("garbage"), 1),
            ip("10.0.0.2")
        );
    }
}
