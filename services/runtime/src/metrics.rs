//! Prometheus metrics: one recorder per process (`metrics` + `metrics-exporter-prometheus`),
//! rendered by the gateway at `/metrics` and by each service on its own metrics port
//! (`<NAME>_METRICS_ADDR`, default `0.0.0.0:9091`–`9095`).
//!
//! Every histogram has the same explicit buckets, so a family aggregates across replicas.
//! Labels are bounded by construction: routes are the router's patterns, gRPC methods the
//! proto's, outcomes and reasons fixed words. No phone number, id or free text is a label.
//!
//! Without an installed recorder (the in-process test meshes) every recording is a no-op.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body::{Body, Frame, SizeHint};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Component;
use crate::config::{ConfigError, env_var};

/// Bucket bounds (seconds) of every duration histogram: from half a millisecond (a cached
/// gRPC read) to a minute (an LLM analysis, a stalled provider).
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// How often histograms and summaries are compacted.
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs this process's recorder (once; later calls answer the same handle). `None` when
/// another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = match PrometheusBuilder::new().set_buckets(DURATION_BUCKETS) {
                Ok(builder) => builder,
                Err(error) => {
                    tracing::warn!(%error, "metrics are off");
                    return None;
                }
            };
            match builder.install_recorder() {
                Ok(handle) => {
                    let upkeep = handle.clone();
                    std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(UPKEEP);
                                upkeep.run_upkeep();
                            }
                        })
                        .ok()?;
                    describe();
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics are off");
                    None
                }
            }
        })
        .clone()
}

/// The current text exposition, or an empty one when no recorder is installed.
pub fn render() -> String {
    HANDLE
        .get()
        .and_then(|handle| handle.as_ref())
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// `<NAME>_METRICS_ADDR`, e.g. `LEAD_METRICS_ADDR`.
pub fn addr_var(component: Component) -> String {
    format!("{}_METRICS_ADDR", component.env_prefix())
}

/// The port a service's metrics listen on by default: lead 9091 … notification 9095.
pub fn default_port(component: Component) -> Option<u16> {
    Some(match component {
        Component::Gateway => return None,
        Component::Lead => 9091,
        Component::Context => 9092,
        Component::Analysis => 9093,
        Component::Telephony => 9094,
        Component::Notification => 9095,
    })
}

/// Where a service's metrics listen: `<NAME>_METRICS_ADDR`, else all interfaces on its
/// default port. `None` for the gateway (its metrics are on its own port, at `/metrics`).
pub fn listen_addr(component: Component) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(port) = default_port(component) else {
        return Ok(None);
    };
    let var = addr_var(component);
    match env_var(&var) {
        Some(value) => value
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::invalid(&var, "expected host:port, e.g. 0.0.0.0:9091")),
        None => Ok(Some(SocketAddr::from(([0, 0, 0, 0], port)))),
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                render(),
            )
        }),
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Help text of every family, so a scrape explains itself.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "http_server_requests_total",
        "HTTP requests answered, by method, matched route and status"
    );
    describe_histogram!(
        "http_server_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request (to its headers for streams)"
    );
    describe_counter!(
        "grpc_server_handled_total",
        "gRPC calls served, by service, method and status code"
    );
    describe_histogram!(
        "grpc_server_handling_seconds",
        Unit::Seconds,
        "Time to serve a gRPC call, to its final status"
    );
    describe_counter!(
        "grpc_client_handled_total",
        "gRPC calls made to other services, by service, method and status code"
    );
    describe_histogram!(
        "grpc_client_handling_seconds",
        Unit::Seconds,
        "Time a gRPC call to another service took, to its final status"
    );
    describe_counter!(
        "callmesh_webhooks_total",
        "Webhooks received, by provider, event type and outcome (accepted, duplicate, refused) \
         with the reason for refusals"
    );
    describe_gauge!(
        "callmesh_inbox_items",
        "Inbox items by state (read from the shared database: take the max across replicas)"
    );
    describe_gauge!(
        "callmesh_inbox_oldest_pending_age_seconds",
        Unit::Seconds,
        "Age of the oldest item not yet done (0 when none): the backlog's lag"
    );
    describe_counter!(
        "callmesh_inbox_attempts_total",
        "Inbox flow attempts by outcome: done, retry (will run again) or dead (gave up)"
    );
    describe_counter!(
        "callmesh_inbox_dead_letters_total",
        "Inbox items that exhausted their attempts and wait for a replay"
    );
    describe_gauge!(
        "callmesh_live_subscribers",
        "Open live streams, by transport (sse on the gateway, grpc on notification)"
    );
    describe_counter!(
        "callmesh_events_published_total",
        "Events appended to the log, by kind"
    );
    describe_counter!(
        "callmesh_live_subscribers_cut_off_total",
        "Live subscribers dropped for falling too far behind, by transport"
    );
    describe_counter!(
        "callmesh_crm_deliveries_total",
        "CRM deliveries finished, by outcome (delivered, failed)"
    );
    describe_counter!(
        "callmesh_crm_attempts_total",
        "CRM delivery attempts, by outcome (delivered, retry, failed)"
    );
    describe_counter!(
        "callmesh_provider_requests_total",
        "Requests to outside APIs (twilio, elevenlabs, llm), by endpoint and status"
    );
    describe_histogram!(
        "callmesh_provider_request_duration_seconds",
        Unit::Seconds,
        "Time an outside API took to answer, by provider and endpoint"
    );
    describe_histogram!(
        "callmesh_analysis_duration_seconds",
        Unit::Seconds,
        "Time to analyse a conversation, by the analyzer that produced the result"
    );
    describe_counter!(
        "callmesh_analysis_llm_fallbacks_total",
        "LLM analyses that fell back to the rules, by reason"
    );
}

/// Records one request to an outside API: `status` is the HTTP status, or `error` when none
/// came back.
pub fn provider_request(
    provider: &'static str,
    endpoint: &'static str,
    status: Option<u16>,
    took: Duration,
) {
    let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    metrics::counter!(
        "callmesh_provider_requests_total",
        "provider" => provider, "endpoint" => endpoint, "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "callmesh_provider_request_duration_seconds",
        "provider" => provider, "endpoint" => endpoint
    )
    .record(took.as_secs_f64());
}

/// Sends a request to an outside API and records it in `callmesh_provider_*`.
pub trait SendObserved {
    fn send_observed(
        self,
        provider: &'static str,
        endpoint: &'static str,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + Send;
}

impl SendObserved for reqwest::RequestBuilder {
    async fn send_observed(
        self,
        provider: &'static str,
        endpoint: &'static str,
    ) -> reqwest::Result<reqwest::Response> {
        let started = Instant::now();
        let response = self.send().await;
        let status = response.as_ref().ok().map(|r| r.status().as_u16());
        provider_request(provider, endpoint, status, started.elapsed());
        response
    }
}

/// One open live stream, counted in `callmesh_live_subscribers{transport}` while it lives.
#[derive(Debug)]
pub struct LiveSubscriber(&'static str);

impl LiveSubscriber {
    pub fn new(transport: &'static str) -> LiveSubscriber {
        metrics::gauge!("callmesh_live_subscribers", "transport" => transport).increment(1.0);
        LiveSubscriber(transport)
    }
}

impl Drop for LiveSubscriber {
    fn drop(&mut self) {
        metrics::gauge!("callmesh_live_subscribers", "transport" => self.0).decrement(1.0);
    }
}

/// Which end of a gRPC call is observed.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    Server,
    Client,
}

impl Side {
    fn families(self) -> (&'static str, &'static str) {
        match self {
            Side::Server => ("grpc_server_handled_total", "grpc_server_handling_seconds"),
            Side::Client => ("grpc_client_handled_total", "grpc_client_handling_seconds"),
        }
    }
}

/// Counts and times gRPC calls by service, method and final status code, read from the
/// response headers (trailers-only answers) or from the trailers at the end of the body.
#[derive(Debug, Clone, Copy)]
pub struct GrpcMetricsLayer(pub Side);

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            side: self.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    side: Side,
}

impl<S> GrpcMetrics<S> {
    pub fn new(inner: S, side: Side) -> Self {
        GrpcMetrics { inner, side }
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    type Response = http::Response<ObservedBody<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = Call::new(self.side, request.uri().path());
        let response = self.inner.call(request);
        Box::pin(async move {
            match response.await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    // A trailers-only answer carries its status in the headers.
                    let call = match parts.headers.get("grpc-status") {
                        Some(code) => {
                            call.finish(code.as_bytes());
                            None
                        }
                        None if !parts.status.is_success() => {
                            call.finish(b"14");
                            None
                        }
                        None => Some(call),
                    };
                    Ok(http::Response::from_parts(
                        parts,
                        ObservedBody { inner: body, call },
                    ))
                }
                Err(error) => {
                    call.finish(b"14");
                    Err(error)
                }
            }
        })
    }
}

/// One gRPC call being observed; recorded once, when its status is known.
#[derive(Debug)]
pub struct Call {
    side: Side,
    service: String,
    method: String,
    started: Instant,
}

impl Call {
    fn new(side: Side, path: &str) -> Call {
        // Any client can ask for any path; only methods that exist get their own series.
        let (service, method) = if known_method(path) {
            let mut parts = path.trim_start_matches('/').splitn(2, '/');
            (
                parts.next().unwrap_or_default().to_owned(),
                parts.next().unwrap_or_default().to_owned(),
            )
        } else {
            ("unknown".to_owned(), "unknown".to_owned())
        };
        Call {
            side,
            service,
            method,
            started: Instant::now(),
        }
    }

    fn finish(self, code: &[u8]) {
        let code = std::str::from_utf8(code)
            .ok()
            .and_then(|c| c.trim().parse::<i32>().ok())
            .map_or("UNKNOWN", code_name);
        let (count, duration) = self.side.families();
        let (service, method) = (self.service, self.method);
        metrics::histogram!(
            duration,
            "grpc_service" => service.clone(), "grpc_method" => method.clone(), "grpc_code" => code
        )
        .record(self.started.elapsed().as_secs_f64());
        metrics::counter!(
            count,
            "grpc_service" => service, "grpc_method" => method, "grpc_code" => code
        )
        .increment(1);
    }
}

/// Whether `path` (`/package.Service/Method`) is a method of the mesh's services, of health
/// checking or of reflection.
fn known_method(path: &str) -> bool {
    static KNOWN: OnceLock<std::collections::HashSet<String>> = OnceLock::new();
    let known = KNOWN.get_or_init(|| {
        use prost::Message as _;
        let mut known = std::collections::HashSet::new();
        for encoded in [
            callmesh_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ] {
            let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
                continue;
            };
            for file in set.file {
                for service in &file.service {
                    for method in &service.method {
                        known.insert(format!(
                            "/{}.{}/{}",
                            file.package(),
                            service.name(),
                            method.name()
                        ));
                    }
                }
            }
        }
        for reflection in ["v1", "v1alpha"] {
            known.insert(format!(
                "/grpc.reflection.{reflection}.ServerReflection/ServerReflectionInfo"
            ));
        }
        known
    });
    known.contains(path)
}

/// The canonical name of a gRPC status code.
fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

pin_project_lite::pin_project! {
    /// A response body that records its call when the trailers carry the status, when it
    /// ends without one (OK), or when it is dropped unfinished (CANCELLED: a stream the
    /// other end closed).
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }

    impl<B> PinnedDrop for ObservedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(call) = this.project().call.take() {
                call.finish(b"1");
            }
        }
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(|t| t.get("grpc-status"))
                    && let Some(call) = this.call.take()
                {
                    call.finish(code.as_bytes());
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.take() {
                    call.finish(b"14");
                }
            }
            Poll::Ready(None) => {
                if let Some(call) = this.call.take() {
                    call.finish(b"0");
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_splits_into_service_and_method_and_codes_have_their_names() {
        let call = Call::new(Side::Server, "/callmesh.lead.v1.LeadService/GetLead");
        assert_eq!(call.service, "callmesh.lead.v1.LeadService");
        assert_eq!(call.method, "GetLead");
        let made_up = Call::new(Side::Server, "/callmesh.lead.v1.LeadService/NoSuchMethod");
        assert_eq!(
            (made_up.service.as_str(), made_up.method.as_str()),
            ("unknown", "unknown")
        );
        let health = Call::new(Side::Server, "/grpc.health.v1.Health/Check");
        assert_eq!(health.method, "Check");
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(5), "NOT_FOUND");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(99), "UNKNOWN");
    }
}
