//! What an operator scraping and tracing a running mesh sees: the six roles as `callmesh serve`
//! processes on loopback (the gateway's metrics at `/metrics` on its port, each service's on
//! its own metrics port), exporting traces to a fake OTLP/HTTP collector.
//!
//! After one post-call webhook sent with a W3C `traceparent`: every process exposes its
//! families with the expected label sets and plausible values, none carries a phone number,
//! the collector holds one trace with spans from the gateway and the services the flow
//! touched; while the lead service is down the inbox's oldest-pending age rises, and it falls
//! back to zero once the service is back and the backlog drains.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use callmesh_runtime::{Component, metrics};
use callmesh_testkit::{Backend, TestDatabase, backends, wait_until};

use support::{ADMIN_TOKEN, API_KEY, FakeElevenLabs, TWILIO_ACCOUNT, TWILIO_NUMBER, TWILIO_TOKEN};

const POST_CALL: &str = "/api/webhooks/elevenlabs/post-call";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// The caller's number in the fixture: it must show up in no metric.
const CALLER: &str = "+12523960448";

/// (service.name, trace id in hex, span name) of every span the collector received.
type Spans = Arc<Mutex<Vec<(String, String, String)>>>;

/// A fake OTLP/HTTP collector: takes `POST /v1/traces` (protobuf) and keeps the spans.
async fn collector() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let kept = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut kept = kept.lock().expect("spans");
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| r.attributes.iter())
                        .find(|a| a.key == "service.name")
                        .and_then(|a| a.value.as_ref())
                        .and_then(|v| match &v.value {
                            Some(
                                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s),
                            ) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            let trace: String =
                                span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                            kept.push((service.clone(), trace, span.name));
                        }
                    }
                }
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, spans)
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// The six roles as processes.
struct Processes {
    addrs: HashMap<Component, SocketAddr>,
    metrics: HashMap<Component, SocketAddr>,
    databases: HashMap<Component, TestDatabase>,
    children: HashMap<Component, Child>,
    fake: FakeElevenLabs,
    collector: String,
    http: reqwest::Client,
}

impl Processes {
    async fn start(backend: Backend, fake: FakeElevenLabs, collector: String) -> Processes {
        let mut set = Processes {
            addrs: HashMap::new(),
            metrics: HashMap::new(),
            databases: HashMap::new(),
            children: HashMap::new(),
            fake,
            collector,
            http: reqwest::Client::new(),
        };
        for component in Component::ALL {
            set.databases
                .insert(component, TestDatabase::create(backend).await);
        }
        // A free port is found by binding one and letting it go; another test's connection can
        // take it before the process binds it. A process that could not listen has exited:
        // then every process starts again, on new ports.
        for _ in 0..3 {
            for component in Component::ALL {
                set.addrs.insert(component, free_addr());
                if metrics::default_port(component).is_some() {
                    set.metrics.insert(component, free_addr());
                }
            }
            for component in Component::ALL {
                set.spawn(component);
            }
            if set.wait_healthy().await {
                return set;
            }
            for component in Component::ALL {
                set.kill(component);
            }
        }
        panic!("the mesh never became healthy");
    }

    /// Waits until the gateway reports the mesh healthy: false after a minute, or as soon as a
    /// process has exited.
    async fn wait_healthy(&mut self) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            let exited = self
                .children
                .values_mut()
                .any(|child| matches!(child.try_wait(), Ok(Some(_))));
            if exited {
                return false;
            }
            let health = self
                .http
                .get(format!("{}/api/health", self.gateway()))
                .send()
                .await;
            if matches!(health, Ok(r) if r.status() == 200) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    fn spawn(&mut self, component: Component) {
        let url = |c: Component| format!("http://{}", self.addrs[&c]);
        let fake = &self.fake.url;
        let mut command = Command::new(env!("CARGO_BIN_EXE_callmesh"));
        command
            .args(["serve", component.name()])
            .env(
                "RUST_LOG",
                std::env::var("OBS_LOG").unwrap_or("warn".into()),
            )
            .env(component.addr_var(), self.addrs[&component].to_string())
            .env(component.database_var(), self.databases[&component].url())
            .env("CALLMESH_INTERNAL_TOKEN", "observability-mesh-token")
            .env("CALLMESH_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &self.collector)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100");
        if let Some(addr) = self.metrics.get(&component) {
            command.env(metrics::addr_var(component), addr.to_string());
        }
        for service in Component::SERVICES {
            command.env(service.url_var(), url(service));
        }
        match component {
            Component::Gateway => {
                command
                    .env("ELEVENLABS_WEBHOOK_SECRET", support::WEBHOOK_SECRET)
                    .env("ELEVENLABS_API_BASE_URL", fake)
                    .env("ELEVENLABS_API_KEY", API_KEY)
                    .env("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
                    .env("TWILIO_PHONE_NUMBER", TWILIO_NUMBER)
                    .env("INBOX_RETRY_BASE_MS", "100")
                    .env("INBOX_RETRY_MAX_MS", "300")
                    .env("INBOX_POLL_MS", "100")
                    .env("INBOX_MAX_ATTEMPTS", "1000");
            }
            Component::Lead => {
                command.env("DEFAULT_ORGANIZATION_NAME", "Acme Plumbing");
            }
            Component::Telephony => {
                command
                    .env("ELEVENLABS_API_BASE_URL", fake)
                    .env("ELEVENLABS_API_KEY", API_KEY)
                    .env("TWILIO_API_BASE_URL", fake)
                    .env("TWILIO_ACCOUNT_SID", TWILIO_ACCOUNT)
                    .env("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
                    .env("TWILIO_PHONE_NUMBER", TWILIO_NUMBER);
            }
            Component::Notification => {
                command.env("CRM_WEBHOOK_URL", format!("{fake}/crm"));
            }
            _ => {}
        }
        let child = command.spawn().expect("start a process");
        self.children.insert(component, child);
    }

    fn kill(&mut self, component: Component) {
        if let Some(mut child) = self.children.remove(&component) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn gateway(&self) -> String {
        format!("http://{}", self.addrs[&Component::Gateway])
    }

    /// The text exposition of `component`'s process.
    async fn scrape(&self, component: Component) -> String {
        let url = match self.metrics.get(&component) {
            Some(addr) => format!("http://{addr}/metrics"),
            None => format!("{}/metrics", self.gateway()),
        };
        let response = self.http.get(url).send().await.expect("metrics answer");
        assert_eq!(response.status(), 200, "{component:?}");
        response.text().await.expect("metrics text")
    }

    async fn post_call(&self, id: &str, headers: &[(&str, &str)]) -> u16 {
        let body = include_str!("fixtures/post_call_transcription.json")
            .replace("CONVERSATION_ID", id)
            .replace("CA15884136fed840d807968d7c83b21ba4", &format!("CA_{id}"));
        let signature = callmesh_gateway::verify::elevenlabs::sign(
            support::WEBHOOK_SECRET,
            chrono::Utc::now().timestamp(),
            body.as_bytes(),
        );
        let mut request = self
            .http
            .post(format!("{}{POST_CALL}", self.gateway()))
            .header("content-type", "application/json")
            .header("ElevenLabs-Signature", signature)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .send()
            .await
            .expect("gateway answers")
            .status()
            .as_u16()
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The value of the first sample of `family` whose labels include every one of `labels`.
fn sample(text: &str, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, rest) = series.split_once('{').unwrap_or((series, ""));
            (name == family
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse().ok())?
        })
        .next()
}

fn at_least(text: &str, family: &str, labels: &[(&str, &str)], floor: f64, who: &str) {
    let value = sample(text, family, labels)
        .unwrap_or_else(|| panic!("{who}: no {family} with {labels:?} in:\n{text}"));
    assert!(
        value >= floor,
        "{who}: {family}{labels:?} is {value}, expected at least {floor}"
    );
}

#[tokio::test]
async fn every_process_exposes_its_metrics_and_one_webhook_is_one_trace_across_the_mesh() {
    for backend in backends().await {
        let (collector_url, spans) = collector().await;
        let fake = FakeElevenLabs::start().await;
        let mut mesh = Processes::start(backend, fake, collector_url).await;

        let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
        assert_eq!(
            mesh.post_call("conv_traced", &[("traceparent", &traceparent)])
                .await,
            200
        );
        // A forgery is refused and counted by reason.
        let forged = mesh
            .http
            .post(format!("{}{POST_CALL}", mesh.gateway()))
            .header("ElevenLabs-Signature", "t=1,v0=00")
            .body("{}")
            .send()
            .await
            .expect("gateway answers");
        assert_eq!(forged.status(), 401);

        // Generous deadlines: the whole suite may be running beside this test.
        let drained = wait_until(Duration::from_secs(60), || async {
            let text = mesh.scrape(Component::Gateway).await;
            sample(
                &text,
                "callmesh_inbox_attempts_total",
                &[("outcome", "done")],
            ) == Some(1.0)
                && sample(&text, "callmesh_inbox_items", &[("state", "pending")]) == Some(0.0)
                && sample(&text, "callmesh_inbox_oldest_pending_age_seconds", &[]) == Some(0.0)
        })
        .await;
        assert!(drained, "{backend:?}: the webhook was never processed");

        let gateway = mesh.scrape(Component::Gateway).await;
        let who = format!("{backend:?} gateway");
        at_least(
            &gateway,
            "http_server_requests_total",
            &[("method", "POST"), ("route", POST_CALL), ("status", "200")],
            1.0,
            &who,
        );
        at_least(
            &gateway,
            "http_server_request_duration_seconds_bucket",
            &[("route", POST_CALL), ("le", "+Inf")],
            1.0,
            &who,
        );
        at_least(
            &gateway,
            "callmesh_webhooks_total",
            &[
                ("provider", "elevenlabs"),
                ("event", "post_call_transcription"),
                ("outcome", "accepted"),
            ],
            1.0,
            &who,
        );
        at_least(
            &gateway,
            "callmesh_webhooks_total",
            &[
                ("event", "post_call"),
                ("outcome", "refused"),
                ("reason", "unauthorized"),
            ],
            1.0,
            &who,
        );
        at_least(
            &gateway,
            "callmesh_inbox_attempts_total",
            &[("outcome", "done")],
            1.0,
            &who,
        );
        assert_eq!(
            sample(&gateway, "callmesh_inbox_oldest_pending_age_seconds", &[]),
            Some(0.0),
            "{who}"
        );
        at_least(
            &gateway,
            "grpc_client_handled_total",
            &[
                ("grpc_service", "callmesh.analysis.v1.AnalysisService"),
                ("grpc_method", "AnalyzeConversation"),
                ("grpc_code", "OK"),
            ],
            1.0,
            &who,
        );

        // Paths nobody serves are one series, whatever a client makes up.
        for path in [
            "/callmesh.lead.v1.LeadService/NoSuchMethod",
            "/made.up.Service/Anything",
        ] {
            let channel = tonic::transport::Channel::from_shared(format!(
                "http://{}",
                mesh.addrs[&Component::Lead]
            ))
            .expect("url")
            .connect()
            .await
            .expect("connect");
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.expect("ready");
            let answer = grpc
                .unary(
                    tonic::Request::new(()),
                    path.parse().expect("path"),
                    tonic_prost::ProstCodec::<(), ()>::default(),
                )
                .await;
            // Refused before it is even looked up (no mesh token), or unknown.
            assert!(
                matches!(
                    answer.map(|_| ()).map_err(|s| s.code()),
                    Err(tonic::Code::Unauthenticated | tonic::Code::Unimplemented)
                ),
                "{path}"
            );
        }

        let services = [
            (Component::Lead, "callmesh.lead.v1.LeadService"),
            (Component::Context, "callmesh.context.v1.ContextService"),
            (Component::Analysis, "callmesh.analysis.v1.AnalysisService"),
            (
                Component::Notification,
                "callmesh.notification.v1.NotificationService",
            ),
        ];
        let mut scrapes = vec![gateway.clone()];
        for (component, service) in services {
            let text = mesh.scrape(component).await;
            let who = format!("{backend:?} {}", component.name());
            at_least(
                &text,
                "grpc_server_handled_total",
                &[("grpc_service", service), ("grpc_code", "OK")],
                1.0,
                &who,
            );
            at_least(
                &text,
                "grpc_server_handling_seconds_bucket",
                &[("grpc_service", service), ("le", "+Inf")],
                1.0,
                &who,
            );
            assert!(
                !text.contains("NoSuchMethod") && !text.contains("made.up"),
                "{who}: a made-up path got its own series"
            );
            scrapes.push(text);
        }
        at_least(
            &scrapes[1],
            "grpc_server_handled_total",
            &[("grpc_service", "unknown"), ("grpc_method", "unknown")],
            1.0,
            "lead",
        );
        // Telephony answers its scrape even though this flow never called it.
        scrapes.push(mesh.scrape(Component::Telephony).await);
        let analysis = &scrapes[3];
        at_least(
            analysis,
            "callmesh_analysis_duration_seconds_count",
            &[("analyzer", "rules")],
            1.0,
            "analysis",
        );
        let notification = &scrapes[4];
        at_least(
            notification,
            "callmesh_events_published_total",
            &[],
            1.0,
            "notification",
        );
        let delivered = wait_until(Duration::from_secs(30), || async {
            let text = mesh.scrape(Component::Notification).await;
            sample(
                &text,
                "callmesh_crm_deliveries_total",
                &[("outcome", "delivered")],
            ) == Some(1.0)
        })
        .await;
        assert!(delivered, "{backend:?}: the CRM delivery is not counted");
        for text in &scrapes {
            let digits = CALLER.trim_start_matches('+');
            assert!(
                !text.contains(digits),
                "{backend:?}: a phone number is in the metrics"
            );
        }

        // One trace: the gateway's handling and its flow, and the services the flow called.
        let traced = wait_until(Duration::from_secs(30), || async {
            let spans = spans.lock().expect("spans");
            let services: std::collections::HashSet<&str> = spans
                .iter()
                .filter(|(_, trace, _)| trace == TRACE_ID)
                .map(|(service, _, _)| service.as_str())
                .collect();
            let flow_joined = spans.iter().any(|(service, trace, name)| {
                trace == TRACE_ID && service == "callmesh-gateway" && name == "inbox_item"
            });
            flow_joined
                && ["lead", "context", "analysis", "notification"]
                    .iter()
                    .filter(|s| services.contains(format!("callmesh-{s}").as_str()))
                    .count()
                    >= 3
        })
        .await;
        {
            let spans = spans.lock().expect("spans");
            let ours: Vec<_> = spans.iter().filter(|(_, t, _)| t == TRACE_ID).collect();
            assert!(
                traced,
                "{backend:?}: the trace is incomplete: {ours:?} (all spans: {:?})",
                *spans
            );
            assert!(
                ours.iter()
                    .any(|(s, _, name)| s == "callmesh-gateway" && name == "inbox_item"),
                "{backend:?}: the flow did not join the webhook's trace: {ours:?}"
            );
        }

        // The backlog's age rises while a service the flow needs is down…
        mesh.kill(Component::Lead);
        assert_eq!(mesh.post_call("conv_waiting", &[]).await, 200);
        let aging = wait_until(Duration::from_secs(30), || async {
            let text = mesh.scrape(Component::Gateway).await;
            let waiting = ["pending", "processing"]
                .iter()
                .filter_map(|state| sample(&text, "callmesh_inbox_items", &[("state", state)]))
                .sum::<f64>();
            waiting == 1.0
                && sample(&text, "callmesh_inbox_oldest_pending_age_seconds", &[])
                    .is_some_and(|age| age >= 1.0)
        })
        .await;
        assert!(aging, "{backend:?}: the oldest pending age did not rise");
        let retries = mesh.scrape(Component::Gateway).await;
        at_least(
            &retries,
            "callmesh_inbox_attempts_total",
            &[("outcome", "retry")],
            1.0,
            "gateway",
        );
        // …and falls back to zero once it is back and the backlog drains.
        mesh.spawn(Component::Lead);
        let recovered = wait_until(Duration::from_secs(60), || async {
            let text = mesh.scrape(Component::Gateway).await;
            sample(&text, "callmesh_inbox_oldest_pending_age_seconds", &[]) == Some(0.0)
                && sample(
                    &text,
                    "callmesh_inbox_attempts_total",
                    &[("outcome", "done")],
                ) == Some(2.0)
        })
        .await;
        assert!(recovered, "{backend:?}: the backlog did not drain");
    }
}
