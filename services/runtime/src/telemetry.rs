//! Structured logs and traces.
//!
//! Logs are human-readable by default, one JSON object per line when `LOG_FORMAT=json`;
//! `RUST_LOG` filters them as usual. With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are also
//! exported over OTLP/HTTP (protobuf) to `<endpoint>/v1/traces`, batched (the SDK's
//! `OTEL_BSP_*` variables tune the batches, `OTEL_SERVICE_NAME` renames the process); without
//! it nothing is exported and no span is built for export. W3C `traceparent` carries a trace
//! from a webhook into the inbox and across every gRPC hop (see [`TraceContextLayer`] and
//! [`inject`]); the entry spans record `trace_id`, so JSON logs name their trace.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

use crate::config::{env_or, env_var};

const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Which spans are exported: callmesh's own, at info and above.
const EXPORT_FILTER: &str = "warn,callmesh=info,callmesh_gateway=info,callmesh_runtime=info,\
callmesh_lead=info,callmesh_context=info,callmesh_analysis=info,callmesh_telephony=info,\
callmesh_notification=info";

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber once; later calls are no-ops (tests start many servers).
/// `service` names the process in exported traces (`callmesh-<service>`).
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,h2=warn,tower=warn"));
    let json = env_or("LOG_FORMAT", "text").eq_ignore_ascii_case("json");
    let logs = if json {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed()
    } else {
        fmt::layer().with_target(false).with_filter(filter).boxed()
    };
    let traces = tracer(service).map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(EnvFilter::new(EXPORT_FILTER))
    });
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init();
}

/// The exporting tracer when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and valid).
fn tracer(service: &str) -> Option<opentelemetry_sdk::trace::Tracer> {
    env_var(ENDPOINT_VAR)?;
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("{ENDPOINT_VAR}: cannot export traces: {error}");
            return None;
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if env_var("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(format!("callmesh-{service}"));
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = provider.tracer("callmesh");
    let _ = PROVIDER.set(provider);
    Some(tracer)
}

/// Exports what is still batched; call before the process exits.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.shutdown();
    }
}

/// The W3C `traceparent` of the current span ("" when there is no trace to continue).
pub fn current_traceparent() -> String {
    if PROVIDER.get().is_none() {
        // Not exporting: there is no trace to continue (and nothing to spend on one).
        return String::new();
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut carrier);
    carrier.remove("traceparent").unwrap_or_default()
}

/// Makes `span` a child of the trace `traceparent` names (nothing when it names none) and
/// records its `trace_id` field, so logs inside it name the trace.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if PROVIDER.get().is_none() {
        return;
    }
    if let Some(traceparent) = traceparent.filter(|t| !t.is_empty()) {
        let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
        let parent = TraceContextPropagator::new().extract(&carrier);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
    record_trace_id(span);
}

fn record_trace_id(span: &tracing::Span) {
    let context = span.context();
    let trace = context.span();
    let trace = trace.span_context();
    if trace.is_valid() {
        span.record("trace_id", tracing::field::display(trace.trace_id()));
    }
}

/// A span for work done on behalf of several callers at once (a batch of their calls): a child
/// of the first caller's span, so the work belongs to its trace, and linked to the others',
/// so each of their traces can find it. `callers` must not be empty for a parent to be set.
pub fn span_for_all(name: &'static str, callers: &[tracing::Span]) -> tracing::Span {
    let span = match callers.first() {
        Some(first) => {
            tracing::info_span!(parent: first, "batch", rpc = name, items = callers.len())
        }
        None => tracing::info_span!("batch", rpc = name, items = 0),
    };
    if PROVIDER.get().is_some() {
        for caller in callers.iter().skip(1) {
            let context = caller.context();
            let linked = context.span().span_context().clone();
            if linked.is_valid() {
                span.add_link(linked);
            }
        }
    }
    span
}

/// Adds the current span's `traceparent` to an outgoing gRPC call's metadata.
pub fn inject<T>(request: &mut tonic::Request<T>) {
    let traceparent = current_traceparent();
    if let Ok(value) = traceparent.parse() {
        request.metadata_mut().insert("traceparent", value);
    }
}

/// Serves each gRPC call inside a server span that continues the caller's trace (from its
/// `traceparent` metadata) and is named after the method.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer;

impl<S> tower::Layer<S> for TraceContextLayer {
    type Service = TraceContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContext { inner }
    }
}

#[derive(Debug, Clone)]
pub struct TraceContext<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for TraceContext<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let span = if path.starts_with("/grpc.") {
            // Health checks and reflection: not part of any flow.
            tracing::Span::none()
        } else {
            let name = path.trim_start_matches('/');
            let span = tracing::info_span!(
                "rpc",
                otel.name = name,
                otel.kind = "server",
                rpc.system = "grpc",
                trace_id = tracing::field::Empty,
            );
            let traceparent = request
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok());
            continue_trace(&span, traceparent);
            span
        };
        let response = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(tracing::Instrument::instrument(response, span))
    }
}
