//! Routes and the layers every request passes: a request id (taken from `x-request-id` or
//! made), echoed in the response and carried by the request's log span; and per-route body
//! limits (post-call audio is large, everything else small), with a JSON 413 beyond.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{MethodRouter, get, post};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::routes::{
    admin, analysis, dashboard, initiation, metrics, operator, stream, twilio, webhooks,
};
use crate::{AppState, error, health};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let el = &state.config.elevenlabs;
    let large = DefaultBodyLimit::max(el.post_call_max_body_bytes);
    let small = DefaultBodyLimit::max(el.max_body_bytes);
    let twilio_limit = DefaultBodyLimit::max(state.config.twilio.max_body_bytes);
    let body_read_timeout = state.config.http.body_read_timeout;
    let counting = axum::middleware::from_fn_with_state(state.clone(), metrics::count_webhooks);
    let webhook = |handler: MethodRouter<AppState>, limit: DefaultBodyLimit| {
        handler
            .get(webhooks::health_check)
            .layer(limit)
            .layer(counting.clone())
    };
    // Only post-call carries audio, so only it may send 64 MiB, and only once its signature
    // header has passed every check that needs no body.
    let unsigned = axum::middleware::from_fn_with_state(state.clone(), webhooks::refuse_unsigned);
    let audio = |handler: MethodRouter<AppState>| webhook(handler.layer(unsigned.clone()), large);
    Router::new()
        .route("/api/health", get(health::health))
        .route("/api/live", get(health::live))
        .route("/api/ready", get(health::ready))
        .route(
            "/api/webhooks/elevenlabs/post-call",
            audio(post(webhooks::post_call)),
        )
        .route("/api/convai-webhook", audio(post(webhooks::post_call)))
        .route("/webhooks/elevenlabs", audio(post(webhooks::post_call)))
        .route(
            "/api/webhooks/elevenlabs/conversation-events",
            webhook(post(webhooks::conversation_events), small),
        )
        .route(
            "/api/webhooks/elevenlabs/call-status",
            webhook(post(webhooks::call_status), small),
        )
        .route(
            "/api/webhooks/elevenlabs/conversation-initiation",
            webhook(post(initiation::conversation_initiation), small),
        )
        .route(
            "/api/webhooks/twilio/sms/incoming",
            webhook(post(twilio::sms_incoming), twilio_limit),
        )
        .route(
            "/api/webhooks/twilio/sms/status",
            webhook(post(twilio::sms_status), twilio_limit),
        )
        .route(
            "/api/webhooks/twilio/voice/status",
            webhook(post(twilio::voice_status), twilio_limit),
        )
        .route(
            "/api/webhooks/twilio/voice/recording",
            webhook(post(twilio::voice_recording), twilio_limit),
        )
        .route(
            "/api/webhooks/twilio/voice/incoming",
            webhook(post(twilio::voice_incoming), twilio_limit),
        )
        .route(
            "/api/twilio/send-sms",
            post(operator::send_sms).layer(small),
        )
        .route(
            "/api/elevenlabs/outbound-call",
            post(operator::outbound_call).layer(small),
        )
        .route(
            "/api/conversations/{lead_id}/takeover",
            post(operator::takeover).layer(small),
        )
        .route(
            "/api/conversations/{lead_id}/release",
            post(operator::release).layer(small),
        )
        .route(
            "/api/conversations/{conversation_id}/analysis/run",
            post(analysis::rerun).layer(small),
        )
        .route(
            "/api/interviews",
            post(analysis::create_interview)
                .get(analysis::list_interviews)
                .layer(small),
        )
        .route(
            "/api/interviews/{session_id}/complete",
            post(analysis::complete_interview).layer(small),
        )
        .route(
            "/api/test-interview-analysis",
            post(analysis::test_interview).layer(small),
        )
        .route("/dashboard", get(dashboard::page))
        .route("/api/metrics/summary", get(metrics::summary))
        .route("/api/crm/deliveries", get(dashboard::crm_deliveries))
        .route("/api/leads", get(dashboard::leads))
        .route(
            "/api/conversations/{lead_id}/messages",
            get(dashboard::messages),
        )
        .route(
            "/api/stream/organization/{org_id}",
            get(stream::organization),
        )
        .route(
            "/api/stream/conversation/{lead_id}",
            get(stream::conversation),
        )
        .route("/api/inbox", get(admin::list_inbox))
        .route("/api/inbox/backlog", get(admin::inbox_backlog))
        .route("/api/inbox/{id}/replay", post(admin::replay_inbox_item))
        .route(
            "/api/agent-calls/status",
            post(admin::agent_call_status).layer(small),
        )
        .fallback(error::not_found)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(RequestBodyTimeoutLayer::new(body_read_timeout))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                        let request_id = request
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        tracing::info_span!(
                            "request",
                            method = %request.method(),
                            path = %request.uri().path(),
                            request_id,
                        )
                    }),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
}
