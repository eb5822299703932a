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
use axum::routing::{MethodRouter, post};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
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
        .fallback(error::not_found)
        // After routing, so each answer is labelled with the route that matched.
        .layer(axum::middleware::from_fn(crate::observe::http_metrics))
        .with_state(state)
        .layer(axum::middleware::from_fn(error::json_errors))
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
        .routes(routes!(crate::observe::scrape))
        .routes(routes!(webhooks::post_call).map(|r| guards.audio(r)))
        // Aliases of post-call; `openapi::finish` describes them.
        .route(
            "/api/convai-webhook",
            guards.audio(post(webhooks::post_call)),
        )
        .route(
            "/webhooks/elevenlabs",
            guards.audio(post(webhooks::post_call)),
        )
        .routes(routes!(webhooks::conversation_events).map(|r| guards.webhook(r, Limit::Small)))
        .routes(routes!(webhooks::call_status).map(|r| guards.webhook(r, Limit::Small)))
        .routes(
            routes!(initiation::conversation_initiation).map(|r| guards.webhook(r, Limit::Small)),
        )
        .routes(routes!(twilio::sms_incoming).map(|r| guards.webhook(r, Limit::Twilio)))
        .routes(routes!(twilio::sms_status).map(|r| guards.webhook(r, Limit::Twilio)))
        .routes(routes!(twilio::voice_status).map(|r| guards.webhook(r, Limit::Twilio)))
        .routes(routes!(twilio::voice_recording).map(|r| guards.webhook(r, Limit::Twilio)))
        .routes(routes!(twilio::voice_incoming).map(|r| guards.webhook(r, Limit::Twilio)))
        .routes(routes!(operator::send_sms).map(small))
        .routes(routes!(operator::outbound_call).map(small))
        .routes(routes!(operator::takeover).map(small))
        .routes(routes!(operator::release).map(small))
        .routes(routes!(analysis::rerun).map(small))
        .routes(routes!(analysis::create_interview, analysis::list_interviews).map(small))
        .routes(routes!(analysis::complete_interview).map(small))
        .routes(routes!(analysis::test_interview).map(small))
        .routes(routes!(dashboard::page))
        .routes(routes!(metrics::summary))
        .routes(routes!(dashboard::crm_deliveries))
        .routes(routes!(dashboard::leads))
        .routes(routes!(dashboard::messages))
        .routes(routes!(dashboard::asset))
        .routes(routes!(dashboard::lead))
        .routes(routes!(dashboard::analyses))
        .routes(routes!(stream::organization))
        .routes(routes!(stream::conversation))
        .routes(routes!(admin::list_inbox))
        .routes(routes!(admin::inbox_backlog))
        .routes(routes!(admin::replay_inbox_item))
        .routes(routes!(admin::agent_call_status).map(small))
}
