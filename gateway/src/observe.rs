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

/// A webhook answered with a 4xx: refused before anything was kept. The event is the route's
/// (the body was not trusted enough to read its type); the reason is the error's code.
pub fn webhook_refused(route: &str, response: &Response) {
    let provider = if route.contains("twilio") {
        "twilio"
    } else {
        "elevenlabs"
    };
    let reason = response
        .extensions()
        .get::<ErrorCode>()
        .and_then(|code| serde_json::to_value(code).ok())
        .and_then(|code| code.as_str().map(str::to_owned))
        .unwrap_or_else(|| response.status().as_u16().to_string());
    let event = route.rsplit('/').next().unwrap_or_default().to_owned();
    metrics::counter!(
        "callmesh_webhooks_total",
        "provider" => provider,
        "event" => event,
        "outcome" => "refused",
        "reason" => reason
    )
    .increment(1);
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
pub async fn scrape(State(state): State<AppState>) -> Response {
    refresh_inbox(&state).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        callmesh_runtime::metrics::render(),
    )
        .into_response()
}

/// Sets the inbox gauges from the database. Every replica reads the same shared inbox, so the
/// gauges agree across replicas (aggregate them with `max`, not `sum`).
async fn refresh_inbox(state: &AppState) {
    match state.inbox.backlog().await {
        Ok(backlog) => {
            for inbox_state in InboxState::ALL {
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
