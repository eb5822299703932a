//! The gateway's Prometheus metrics: every HTTP answer by method, matched route and status;
//! webhooks by provider, event type and outcome; the inbox's backlog, read from the database
//! when `/metrics` is scraped. The exposition itself is `callmesh_runtime::metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use crate::AppState;
use crate::error::ErrorCode;
use crate::inbox::InboxState;

/// Counts and times every answer. The route is the router's pattern (`/api/leads/{id}`), never
/// the path itself, so ids stay out of the labels; what matched no route is `unmatched`.
pub async fn http_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "http_server_request_duration_seconds",
        "method" => method, "route" => route.clone(), "status" => status.clone()
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "http_server_requests_total",
        "method" => method, "route" => route, "status" => status
    )
    .increment(1);
    response
}

/// Methods outside the standard ones are one label, so a client cannot mint new series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A webhook committed to the inbox (`duplicate`: it was already there).
pub fn webhook_admitted(provider: &'static str, event_type: &str, duplicate: bool) {
    let outcome = if duplicate { "duplicate" } else { "accepted" };
    metrics::counter!(
        "callmesh_webhooks_total",
        "provider" => provider,
        "event" => event_label(event_type),
        "outcome" => outcome,
        "reason" => ""
    )
    .increment(1);
}

/// A webhook answered without going through the inbox: refused with a 4xx before anything
/// was kept (the reason is the error's code), or a conversation initiation answered at once.
/// The event is the route's, since a refused body was not trusted enough to read its type.
pub fn webhook_answered(route: &str, response: &Response) {
    let (provider, event) = route_event(route);
    let status = response.status();
    let (outcome, reason) = if status.is_client_error() {
        let reason = response
            .extensions()
            .get::<ErrorCode>()
            .and_then(|code| serde_json::to_value(code).ok())
            .and_then(|code| code.as_str().map(str::to_owned))
            .unwrap_or_else(|| status.as_u16().to_string());
        ("refused", reason)
    } else if status.is_success() && event == "conversation_initiation" {
        ("accepted", String::new())
    } else {
        return;
    };
    metrics::counter!(
        "callmesh_webhooks_total",
        "provider" => provider,
        "event" => event,
        "outcome" => outcome,
        "reason" => reason
    )
    .increment(1);
}

/// The provider and event type a webhook route receives.
fn route_event(route: &str) -> (&'static str, &'static str) {
    use crate::flows::kinds;
    let tail = route.rsplit("/webhooks/").next().unwrap_or(route);
    match tail {
        "twilio/sms/incoming" => ("twilio", kinds::SMS_INCOMING),
        "twilio/sms/status" => ("twilio", kinds::SMS_STATUS),
        "twilio/voice/status" => ("twilio", kinds::VOICE_STATUS),
        "twilio/voice/recording" => ("twilio", kinds::RECORDING),
        "twilio/voice/incoming" => ("twilio", kinds::VOICE_INCOMING),
        "elevenlabs/conversation-events" => ("elevenlabs", kinds::CONVERSATION_EVENT),
        "elevenlabs/call-status" => ("elevenlabs", kinds::CALL_STATUS),
        "elevenlabs/conversation-initiation" => ("elevenlabs", "conversation_initiation"),
        // The post-call paths carry transcriptions, audio and initiation failures alike.
        _ => ("elevenlabs", "post_call"),
    }
}

/// Event types are the providers' words; anything else a signed sender invents is `other`.
fn event_label(event_type: &str) -> &'static str {
    use crate::flows::kinds;
    const KNOWN: [&str; 10] = [
        kinds::POST_CALL_TRANSCRIPTION,
        kinds::POST_CALL_AUDIO,
        kinds::CALL_INITIATION_FAILURE,
        kinds::CONVERSATION_EVENT,
        kinds::CALL_STATUS,
        kinds::SMS_INCOMING,
        kinds::SMS_STATUS,
        kinds::VOICE_STATUS,
        kinds::VOICE_INCOMING,
        kinds::RECORDING,
    ];
    KNOWN
        .iter()
        .find(|known| **known == event_type)
        .copied()
        .unwrap_or("other")
}

/// `GET /metrics`: the process's metrics, with the inbox's backlog read now.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    operation_id = "metrics",
    summary = "Prometheus metrics of this gateway process (text exposition format)",
    responses((status = 200, description = "The metrics", content_type = "text/plain", body = String)),
)]
pub async fn scrape(State(state): State<AppState>) -> Response {
    refresh_inbox(&state).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        callmesh_runtime::metrics::render(),
    )
        .into_response()
}

/// Sets the inbox gauges from the database: items still to do (pending, processing) and dead,
/// and the oldest unfinished item's age. Finished items are counted by
/// `callmesh_inbox_attempts_total` instead, so a scrape never reads them. Every replica reads the
/// same shared inbox, so the gauges agree across replicas (aggregate them with `max`, not `sum`).
async fn refresh_inbox(state: &AppState) {
    match state.inbox.waiting().await {
        Ok(backlog) => {
            for inbox_state in [
                InboxState::Pending,
                InboxState::Processing,
                InboxState::Dead,
            ] {
                let items = backlog
                    .by_state
                    .iter()
                    .find(|(s, _)| *s == inbox_state)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("callmesh_inbox_items", "state" => inbox_state.as_str())
                    .set(items as f64);
            }
            let age = backlog.oldest_waiting_received_at.map_or(0.0, |received| {
                (Utc::now() - received).num_milliseconds().max(0) as f64 / 1000.0
            });
            metrics::gauge!("callmesh_inbox_oldest_pending_age_seconds").set(age);
        }
        Err(error) => tracing::warn!(%error, "cannot read the inbox backlog for metrics"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_webhook_route_names_its_provider_and_event() {
        for (route, expected) in [
            (
                "/api/webhooks/elevenlabs/post-call",
                ("elevenlabs", "post_call"),
            ),
            ("/api/convai-webhook", ("elevenlabs", "post_call")),
            ("/webhooks/elevenlabs", ("elevenlabs", "post_call")),
            (
                "/api/webhooks/elevenlabs/call-status",
                ("elevenlabs", "call_status"),
            ),
            (
                "/api/webhooks/elevenlabs/conversation-initiation",
                ("elevenlabs", "conversation_initiation"),
            ),
            ("/api/webhooks/twilio/sms/status", ("twilio", "sms_status")),
            (
                "/api/webhooks/twilio/voice/status",
                ("twilio", "voice_status"),
            ),
        ] {
            assert_eq!(route_event(route), expected, "{route}");
        }
        assert_eq!(
            event_label("post_call_transcription"),
            "post_call_transcription"
        );
        assert_eq!(event_label("made_up_by_a_sender"), "other");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").unwrap_or_default()),
            "other"
        );
    }
}
