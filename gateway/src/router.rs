//! Routes and the layers every request passes: a request id (taken from `x-request-id` or
//! made), echoed in the response and carried by the request's log span; and per-route body
//! limits (post-call audio is large, everything else small), with a JSON 413 beyond.
//!
//! Routes are registered through `utoipa_axum`: `.routes(routes!(handler))` serves the handler
//! and adds its `#[utoipa::path]` operation to the OpenAPI document (`crate::openapi`), so
//! the document describes what is served.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{MethodRouter, get, post};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::routes::{
    admin, analysis, dashboard, initiation, metrics, operator, stream, twilio, webhooks,
};
use crate::{AppState, error, health, openapi};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let body_read_timeout = state.config.http.body_read_timeout;
    let (routes, document) = routes(&Guards::of(&state)).split_for_parts();
    routes
        .merge(openapi::docs_router(openapi::finish(document)))
        .route("/metrics", get(crate::observe::scrape))
        .fallback(error::not_found)
        // After routing, so each answer is labelled with the route that matched.
        .layer(axum::middleware::from_fn(crate::observe::http_metrics))
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
                        let span = tracing::info_span!(
                            "request",
                            method = %request.method(),
                            path = %request.uri().path(),
                            request_id,
                            otel.kind = "server",
                            trace_id = tracing::field::Empty,
                        );
                        // A webhook's `traceparent` makes its handling (and, through the
                        // inbox, its flow) part of the sender's trace.
                        let traceparent = request
                            .headers()
                            .get("traceparent")
                            .and_then(|v| v.to_str().ok());
                        callmesh_runtime::telemetry::continue_trace(&span, traceparent);
                        span
                    }),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
}

/// The gateway's OpenAPI document, as `GET /api/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(routes(&Guards::default()).into_openapi())
}

/// Which body limit a route has.
#[derive(Clone, Copy)]
enum Limit {
    /// `ELEVENLABS_MAX_BODY_BYTES`: JSON webhooks and the APIs.
    Small,
    /// `ELEVENLABS_POST_CALL_MAX_BODY_BYTES`: post-call, which may carry audio.
    Audio,
    /// `TWILIO_MAX_BODY_BYTES`.
    Twilio,
}

/// The per-route layers, which need the running gateway's state; without one (the document
/// alone) routes are registered bare.
#[derive(Default)]
struct Guards {
    state: Option<AppState>,
}

impl Guards {
    fn of(state: &AppState) -> Self {
        Guards {
            state: Some(state.clone()),
        }
    }

    fn limit(&self, route: MethodRouter<AppState>, limit: Limit) -> MethodRouter<AppState> {
        let Some(state) = &self.state else {
            return route;
        };
        let bytes = match limit {
            Limit::Small => state.config.elevenlabs.max_body_bytes,
            Limit::Audio => state.config.elevenlabs.post_call_max_body_bytes,
            Limit::Twilio => state.config.twilio.max_body_bytes,
        };
        route.layer(DefaultBodyLimit::max(bytes))
    }

    /// A webhook: its POST handler, a GET health check, the body limit, and counting.
    fn webhook(&self, route: MethodRouter<AppState>, limit: Limit) -> MethodRouter<AppState> {
        let route = self.limit(route.get(webhooks::health_check), limit);
        match &self.state {
            Some(state) => route.layer(axum::middleware::from_fn_with_state(
                state.clone(),
                metrics::count_webhooks,
            )),
            None => route,
        }
    }

    /// Post-call: may send 64 MiB, and only once its signature header has passed every check
    /// that needs no body.
    fn audio(&self, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
        let route = match &self.state {
            Some(state) => route.layer(axum::middleware::from_fn_with_state(
                state.clone(),
                webhooks::refuse_unsigned,
            )),
            None => route,
        };
        self.webhook(route, Limit::Audio)
    }
}

/// Every route, each registered with its OpenAPI operation.
fn routes(guards: &Guards) -> OpenApiRouter<AppState> {
    let small = |route| guards.limit(route, Limit::Small);
    OpenApiRouter::with_openapi(<openapi::ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .route(
            "/api/webhooks/elevenlabs/post-call",
            guards.audio(post(webhooks::post_call)),
        )
        .route(
            "/api/convai-webhook",
            guards.audio(post(webhooks::post_call)),
        )
        .route(
            "/webhooks/elevenlabs",
            guards.audio(post(webhooks::post_call)),
        )
        .route(
            "/api/webhooks/elevenlabs/conversation-events",
            guards.webhook(post(webhooks::conversation_events), Limit::Small),
        )
        .route(
            "/api/webhooks/elevenlabs/call-status",
            guards.webhook(post(webhooks::call_status), Limit::Small),
        )
        .route(
            "/api/webhooks/elevenlabs/conversation-initiation",
            guards.webhook(post(initiation::conversation_initiation), Limit::Small),
        )
        .route(
            "/api/webhooks/twilio/sms/incoming",
            guards.webhook(post(twilio::sms_incoming), Limit::Twilio),
        )
        .route(
            "/api/webhooks/twilio/sms/status",
            guards.webhook(post(twilio::sms_status), Limit::Twilio),
        )
        .route(
            "/api/webhooks/twilio/voice/status",
            guards.webhook(post(twilio::voice_status), Limit::Twilio),
        )
        .route(
            "/api/webhooks/twilio/voice/recording",
            guards.webhook(post(twilio::voice_recording), Limit::Twilio),
        )
        .route(
            "/api/webhooks/twilio/voice/incoming",
            guards.webhook(post(twilio::voice_incoming), Limit::Twilio),
        )
        .route("/api/twilio/send-sms", small(post(operator::send_sms)))
        .route(
            "/api/elevenlabs/outbound-call",
            small(post(operator::outbound_call)),
        )
        .route(
            "/api/conversations/{lead_id}/takeover",
            small(post(operator::takeover)),
        )
        .route(
            "/api/conversations/{lead_id}/release",
            small(post(operator::release)),
        )
        .route(
            "/api/conversations/{conversation_id}/analysis/run",
            small(post(analysis::rerun)),
        )
        .route(
            "/api/interviews",
            small(post(analysis::create_interview).get(analysis::list_interviews)),
        )
        .route(
            "/api/interviews/{session_id}/complete",
            small(post(analysis::complete_interview)),
        )
        .route(
            "/api/test-interview-analysis",
            small(post(analysis::test_interview)),
        )
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/assets/{name}", get(dashboard::asset))
        .route("/api/metrics/summary", get(metrics::summary))
        .route("/api/crm/deliveries", get(dashboard::crm_deliveries))
        .route("/api/leads", get(dashboard::leads))
        .routes(routes!(dashboard::lead))
        .routes(routes!(dashboard::analyses))
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
            small(post(admin::agent_call_status)),
        )
}
