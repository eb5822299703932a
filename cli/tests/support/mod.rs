//! The whole mesh in a test process: five services and the gateway on ephemeral ports, each
//! with a fresh database, plus a fake ElevenLabs API on loopback. Components can be stopped and
//! restarted on the same address, to prove that nothing acknowledged is lost.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use callmesh_gateway::GatewayConfig;
use callmesh_proto::analysis::v1::analysis_service_client::AnalysisServiceClient;
use callmesh_proto::context::v1::context_service_client::ContextServiceClient;
use callmesh_proto::lead::v1::lead_service_client::LeadServiceClient;
use callmesh_proto::notification::v1::notification_service_client::NotificationServiceClient;
use callmesh_proto::telephony::v1::telephony_service_client::TelephonyServiceClient;
use callmesh_runtime::auth::{MeshChannel, authenticated};
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ServeError};
use callmesh_testkit::{Backend, TestDatabase, wait_until};

pub const WEBHOOK_SECRET: &str = "wsec_test_secret";
pub const INITIATION_SECRET: &str = "initiation-header-secret";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";
pub const API_KEY: &str = "xi-test-key";
pub const TWILIO_ACCOUNT: &str = "AC00000000000000000000000000000000";
pub const TWILIO_TOKEN: &str = "twilio-auth-token";
pub const TWILIO_NUMBER: &str = "+12125550100";

type Running = (CancellationToken, JoinHandle<Result<(), ServeError>>);

/// A component's `serve`, given the listener it answers on.
type Serve = Box<dyn FnOnce(TcpListener) -> BoxFuture<'static, Result<(), ServeError>> + Send>;

/// Runs `serve` on a runtime of its own, on threads of its own (as many workers as a process
/// of its own would have); the handle ends when it does.
fn run_apart(
    component: Component,
    listener: TcpListener,
    serve: Serve,
) -> JoinHandle<Result<(), ServeError>> {
    // The listener moves to the component's runtime, whose I/O driver then polls it.
    let listener = listener.into_std().expect("detach the listener");
    let (finished, outcome) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(component.name().to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name(component.name())
                .build()
                .expect("a runtime");
            let result = runtime.block_on(async move {
                serve(TcpListener::from_std(listener).expect("attach the listener")).await
            });
            let _ = finished.send(result);
        })
        .expect("a thread");
    tokio::spawn(async move { outcome.await.expect("the component's thread ended") })
}

pub struct Mesh {
    pub backend: Backend,
    pub addrs: HashMap<Component, SocketAddr>,
    running: HashMap<Component, Running>,
    databases: HashMap<Component, TestDatabase>,
    pub gateway_config: GatewayConfig,
    pub storage_dir: PathBuf,
    pub http: reqwest::Client,
    pub fake_api: FakeElevenLabs,
    /// Each component on its own runtime and threads, as separate processes run them.
    apart: bool,
}

/// The ElevenLabs and Twilio REST APIs as far as callmesh uses them, on one loopback server:
/// conversations, outbound calls and speech-to-text; messages, call updates and recordings.
#[derive(Clone, Default)]
pub struct FakeElevenLabs {
    pub url: String,
    conversations: Arc<Mutex<HashMap<String, Value>>>,
    pub requests: Arc<Mutex<Vec<String>>>,
    /// Form bodies of the messages Twilio was asked to send.
    pub messages: Arc<Mutex<Vec<HashMap<String, String>>>>,
    /// (CallSid, TwiML) of live-call updates.
    pub redirects: Arc<Mutex<Vec<(String, String)>>>,
    /// JSON bodies of outbound-call requests.
    pub outbound_calls: Arc<Mutex<Vec<Value>>>,
    /// What Twilio's Messages API answers next (status codes, first to last, with
    /// `Retry-After: 0`); it sends when empty.
    pub twilio_script: Arc<Mutex<std::collections::VecDeque<u16>>>,
    /// What the fake CRM answers next (status codes, first to last); 200 when empty.
    pub crm_script: Arc<Mutex<std::collections::VecDeque<u16>>>,
    /// Every CRM request: (Idempotency-Key, body, the status answered).
    pub crm_requests: Arc<Mutex<Vec<(String, Value, u16)>>>,
}

/// Messages to this number fail at Twilio with error 21211.
pub const UNREACHABLE_NUMBER: &str = "+15005550001";

impl FakeElevenLabs {
    pub async fn start() -> FakeElevenLabs {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut fake = FakeElevenLabs {
            url: format!("http://{}", listener.local_addr().expect("addr")),
            ..Default::default()
        };
        let app = axum::Router::new()
            .route("/v1/convai/conversations/{id}", get(conversation))
            .route(
                "/v1/convai/twilio/outbound-call",
                axum::routing::post(outbound_call),
            )
            .route("/v1/speech-to-text", axum::routing::post(speech_to_text))
            .route("/crm", axum::routing::post(crm))
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                axum::routing::post(send_message),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls/{call}",
                axum::routing::post(update_call),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Recordings/{recording}",
                get(recording_media),
            )
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake.url = fake.url.clone();
        fake
    }

    pub fn put(&self, id: &str, conversation: Value) {
        self.conversations
            .lock()
            .expect("lock")
            .insert(id.to_owned(), conversation);
    }
}

async fn conversation(
    State(fake): State<FakeElevenLabs>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> (StatusCode, axum::Json<Value>) {
    fake.requests.lock().expect("lock").push(id.clone());
    if headers.get("xi-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"detail": "bad key"})),
        );
    }
    match fake.conversations.lock().expect("lock").get(&id) {
        Some(found) => (StatusCode::OK, axum::Json(found.clone())),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"detail": "not found"})),
        ),
    }
}

async fn crm(
    State(fake): State<FakeElevenLabs>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> (StatusCode, HeaderMap) {
    let status = fake
        .crm_script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(200);
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    fake.crm_requests
        .lock()
        .expect("lock")
        .push((key, body, status));
    let mut out = HeaderMap::new();
    if status == 429 {
        out.insert("retry-after", "0".parse().expect("header"));
    }
    (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), out)
}

fn twilio_authorized(headers: &HeaderMap) -> bool {
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{TWILIO_ACCOUNT}:{TWILIO_TOKEN}"));
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Basic {expected}"))
}

async fn send_message(
    State(fake): State<FakeElevenLabs>,
    headers: HeaderMap,
    axum::extract::Form(form): axum::extract::Form<HashMap<String, String>>,
) -> (
    StatusCode,
    [(&'static str, &'static str); 1],
    axum::Json<Value>,
) {
    if !twilio_authorized(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [("x-fake", "twilio")],
            axum::Json(
                serde_json::json!({"code": 20003, "message": "Authenticate", "status": 401}),
            ),
        );
    }
    let scripted = fake.twilio_script.lock().expect("lock").pop_front();
    if let Some(status) = scripted {
        let body =
            serde_json::json!({"code": 20429, "message": "Too Many Requests", "status": status});
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            [("retry-after", "0")],
            axum::Json(body),
        );
    }
    if form.get("To").map(String::as_str) == Some(UNREACHABLE_NUMBER) {
        let body = serde_json::json!({"code": 21211, "message": format!("The 'To' number {UNREACHABLE_NUMBER} is not a valid phone number."),
            "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400});
        return (
            StatusCode::BAD_REQUEST,
            [("x-fake", "twilio")],
            axum::Json(body),
        );
    }
    let mut messages = fake.messages.lock().expect("lock");
    messages.push(form);
    let sid = format!("SM{:032x}", messages.len());
    (
        StatusCode::CREATED,
        [("x-fake", "twilio")],
        axum::Json(serde_json::json!({"sid": sid, "status": "queued", "num_segments": "1"})),
    )
}

async fn update_call(
    State(fake): State<FakeElevenLabs>,
    headers: HeaderMap,
    Path((_, call)): Path<(String, String)>,
    axum::extract::Form(form): axum::extract::Form<HashMap<String, String>>,
) -> StatusCode {
    if !twilio_authorized(&headers) {
        return StatusCode::UNAUTHORIZED;
    }
    let sid = call.trim_end_matches(".json").to_owned();
    fake.redirects
        .lock()
        .expect("lock")
        .push((sid, form.get("Twiml").cloned().unwrap_or_default()));
    StatusCode::OK
}

async fn recording_media(
    headers: HeaderMap,
    Path((_, recording)): Path<(String, String)>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut out = HeaderMap::new();
    if !twilio_authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, out, Vec::new());
    }
    out.insert("content-type", "audio/mpeg".parse().expect("header"));
    (
        StatusCode::OK,
        out,
        format!("ID3 audio of {recording}").into_bytes(),
    )
}

async fn outbound_call(
    State(fake): State<FakeElevenLabs>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> (StatusCode, axum::Json<Value>) {
    if headers.get("xi-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"detail": "bad key"})),
        );
    }
    let mut calls = fake.outbound_calls.lock().expect("lock");
    calls.push(body);
    let n = calls.len();
    (
        StatusCode::OK,
        axum::Json(
            serde_json::json!({"success": true, "message": "Call initiated successfully",
        "conversation_id": format!("conv_out_{n}"), "callSid": format!("CA_out_{n}")}),
        ),
    )
}

async fn speech_to_text(headers: HeaderMap) -> (StatusCode, axum::Json<Value>) {
    if headers.get("xi-api-key").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"detail": "bad key"})),
        );
    }
    (
        StatusCode::OK,
        axum::Json(
            serde_json::json!({"text": "Hi, it's Dana. Please call me back about the quote for the e-bike, I'm interested.", "language_code": "en"}),
        ),
    )
}

impl Mesh {
    /// Every component up; `configure` adjusts the gateway's configuration first.
    pub async fn start(backend: Backend, configure: impl FnOnce(&mut GatewayConfig)) -> Mesh {
        Mesh::start_without_gateway(backend, configure)
            .await
            .with_gateway()
            .await
    }

    /// Every component up, each on a runtime and threads of its own, as `callmesh up` runs them
    /// in processes of their own: one component's tasks never queue behind another's, and the
    /// operating system shares the cores between them. For the benchmarks.
    pub async fn start_apart(backend: Backend, configure: impl FnOnce(&mut GatewayConfig)) -> Mesh {
        Mesh::start_services(backend, configure, true)
            .await
            .with_gateway()
            .await
    }

    /// The five services only (the gateway may run as a separate process).
    pub async fn start_without_gateway(
        backend: Backend,
        configure: impl FnOnce(&mut GatewayConfig),
    ) -> Mesh {
        Mesh::start_services(backend, configure, false).await
    }

    async fn start_services(
        backend: Backend,
        configure: impl FnOnce(&mut GatewayConfig),
        apart: bool,
    ) -> Mesh {
        callmesh_runtime::telemetry::init("test");
        let fake_api = FakeElevenLabs::start().await;
        let mut addrs = HashMap::new();
        let mut listeners = Vec::new();
        for component in Component::ALL {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            addrs.insert(component, listener.local_addr().expect("addr"));
            listeners.push((component, listener));
        }
        let mut databases = HashMap::new();
        for component in Component::ALL {
            databases.insert(component, TestDatabase::create(backend).await);
        }
        let gateway_db =
            DatabaseUrl::parse(databases[&Component::Gateway].url(), "TEST").expect("url");
        let mut gateway_config = GatewayConfig::new(
            gateway_db,
            Component::SERVICES
                .into_iter()
                .map(|s| (s, format!("http://{}", addrs[&s])))
                .collect(),
        );
        {
            use callmesh_gateway::secret::Secret;
            let el = &mut gateway_config.elevenlabs;
            el.post_call_secrets = vec![Secret::new(WEBHOOK_SECRET)];
            el.conversation_events_secrets = vec![Secret::new(WEBHOOK_SECRET)];
            el.call_status_secrets = vec![Secret::new(WEBHOOK_SECRET)];
            el.initiation_header_secret = Some(Secret::new(INITIATION_SECRET));
            el.api_base_url = fake_api.url.clone();
            el.api_key = Some(Secret::new(API_KEY));
            gateway_config.admin_token = Some(Secret::new(ADMIN_TOKEN));
            gateway_config.twilio.auth_tokens = vec![Secret::new(TWILIO_TOKEN)];
            gateway_config.twilio.phone_number = Some(TWILIO_NUMBER.to_owned());
            gateway_config.twilio.public_base_url =
                Some(format!("http://{}", addrs[&Component::Gateway]));
            gateway_config.inbox.base_delay = Duration::from_millis(100);
            gateway_config.inbox.max_delay = Duration::from_millis(500);
            gateway_config.inbox.poll_interval = Duration::from_millis(100);
            gateway_config.inbox.lease = Duration::from_secs(2);
            gateway_config.inbox.max_attempts = 1000;
        }
        configure(&mut gateway_config);
        let storage_dir = std::env::temp_dir().join(format!("callmesh-storage-{}", uuid_like()));
        let mut mesh = Mesh {
            backend,
            addrs,
            running: HashMap::new(),
            databases,
            gateway_config,
            storage_dir,
            http: reqwest::Client::new(),
            fake_api,
            apart,
        };
        for (component, listener) in listeners {
            if component != Component::Gateway {
                mesh.launch(component, listener);
            } else {
                drop(listener);
            }
        }
        for service in Component::SERVICES {
            mesh.wait_serving(service).await;
        }
        mesh
    }

    /// Waits until `service` answers health checks with SERVING.
    pub async fn wait_serving(&self, service: Component) {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        let serving = wait_until(Duration::from_secs(30), || async {
            let mut client = HealthClient::new(self.channel(service));
            let request = HealthCheckRequest { service: String::new() };
            matches!(client.check(request).await, Ok(r) if r.get_ref().status() == ServingStatus::Serving)
        })
        .await;
        assert!(serving, "{} never became SERVING", service.name());
    }

    async fn with_gateway(mut self) -> Mesh {
        self.restart(Component::Gateway).await;
        self.wait_healthy().await;
        self
    }

    fn launch(&mut self, component: Component, listener: TcpListener) {
        let url = DatabaseUrl::parse(self.databases[&component].url(), "TEST").expect("url");
        let token = CancellationToken::new();
        let stop = token.clone();
        let addr = |c: Component| format!("http://{}", self.addrs[&c]);
        let serve: Serve = match component {
            Component::Gateway => {
                let config = self.gateway_config.clone();
                Box::new(move |listener| Box::pin(callmesh_gateway::serve(config, listener, stop)))
            }
            Component::Lead => {
                let config = callmesh_lead::LeadConfig {
                    database: url,
                    default_organization_name: "Acme Plumbing".into(),
                    default_region: Default::default(),
                };
                Box::new(move |listener| Box::pin(callmesh_lead::serve(config, listener, stop)))
            }
            Component::Context => {
                let config = callmesh_context::ContextConfig {
                    database: url,
                    lead_url: addr(Component::Lead),
                    // One knob for the mesh, as an operator sets one variable for both.
                    organization_cache: self.gateway_config.organization_cache,
                };
                Box::new(move |listener| Box::pin(callmesh_context::serve(config, listener, stop)))
            }
            Component::Analysis => {
                let config = callmesh_analysis::AnalysisConfig {
                    database: url,
                    settings_file: Some(self.analysis_settings()),
                    llm: None,
                };
                Box::new(move |listener| Box::pin(callmesh_analysis::serve(config, listener, stop)))
            }
            Component::Telephony => {
                let mut config =
                    callmesh_telephony::TelephonyConfig::new(url, self.storage_dir.clone());
                config.elevenlabs.api_base_url = self.fake_api.url.clone();
                config.elevenlabs.api_key = Some(API_KEY.to_owned());
                config.elevenlabs.speech_to_text_url =
                    Some(format!("{}/v1/speech-to-text", self.fake_api.url));
                config.twilio.api_base_url = self.fake_api.url.clone();
                config.twilio.account_sid = Some(TWILIO_ACCOUNT.to_owned());
                config.twilio.credentials =
                    Some((TWILIO_ACCOUNT.to_owned(), TWILIO_TOKEN.to_owned()));
                config.twilio.phone_number = Some(TWILIO_NUMBER.to_owned());
                config.twilio.public_base_url = Some(self.gateway());
                Box::new(move |listener| {
                    Box::pin(callmesh_telephony::serve(config, listener, stop))
                })
            }
            Component::Notification => {
                let mut config = callmesh_notification::NotificationConfig::new(url);
                config.crm.default_url = Some(format!("{}/crm", self.fake_api.url));
                config.crm.base_delay = Duration::from_millis(50);
                config.crm.max_delay = Duration::from_millis(200);
                config.crm.max_attempts = 5;
                Box::new(move |listener| {
                    Box::pin(callmesh_notification::serve(config, listener, stop))
                })
            }
        };
        let handle = if self.apart {
            run_apart(component, listener, serve)
        } else {
            tokio::spawn(serve(listener))
        };
        self.running.insert(component, (token, handle));
    }

    pub async fn stop(&mut self, component: Component) {
        let (token, handle) = self.running.remove(&component).expect("running");
        token.cancel();
        let outcome = tokio::time::timeout(Duration::from_secs(15), handle)
            .await
            .expect("stops promptly")
            .expect("task");
        assert!(
            outcome.is_ok(),
            "{} stopped with {outcome:?}",
            component.name()
        );
    }

    /// Starts `component` again on its old address, with its old database.
    pub async fn restart(&mut self, component: Component) {
        let addr = self.addrs[&component];
        let mut listener = None;
        for _ in 0..50 {
            match TcpListener::bind(addr).await {
                Ok(bound) => {
                    listener = Some(bound);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        self.launch(component, listener.expect("rebind the old address"));
        if component != Component::Gateway {
            self.wait_serving(component).await;
        }
    }

    pub async fn shutdown(mut self) {
        let components: Vec<Component> = self.running.keys().copied().collect();
        for component in components {
            self.stop(component).await;
        }
        let _ = std::fs::remove_dir_all(&self.storage_dir);
    }

    pub fn database_url(&self, component: Component) -> &str {
        self.databases[&component].url()
    }

    /// The analysis service's settings file (vocabularies, score weights); starts as `{}` and
    /// is read again when it changes.
    pub fn analysis_settings(&self) -> PathBuf {
        let path = self.storage_dir.join("analysis.json");
        if !path.exists() {
            std::fs::create_dir_all(&self.storage_dir).expect("storage dir");
            std::fs::write(&path, "{}").expect("analysis settings");
        }
        path
    }

    pub fn gateway(&self) -> String {
        format!("http://{}", self.addrs[&Component::Gateway])
    }

    pub async fn health(&self) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/api/health", self.gateway()))
            .send()
            .await
            .expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    pub async fn wait_healthy(&self) {
        let healthy = wait_until(Duration::from_secs(30), || async {
            matches!(
                self.http.get(format!("{}/api/health", self.gateway())).send().await,
                Ok(r) if r.status() == 200
            )
        })
        .await;
        assert!(healthy, "{:?}: the mesh never became healthy", self.backend);
    }

    fn channel(&self, component: Component) -> Channel {
        Channel::from_shared(format!("http://{}", self.addrs[&component]))
            .expect("uri")
            .connect_lazy()
    }

    pub fn lead(&self) -> LeadServiceClient<MeshChannel> {
        LeadServiceClient::new(authenticated(self.channel(Component::Lead)))
    }

    pub fn context(&self) -> ContextServiceClient<MeshChannel> {
        ContextServiceClient::new(authenticated(self.channel(Component::Context)))
    }

    pub fn analysis(&self) -> AnalysisServiceClient<MeshChannel> {
        AnalysisServiceClient::new(authenticated(self.channel(Component::Analysis)))
    }

    pub fn telephony(&self) -> TelephonyServiceClient<MeshChannel> {
        TelephonyServiceClient::new(authenticated(self.channel(Component::Telephony)))
    }

    pub fn notification(&self) -> NotificationServiceClient<MeshChannel> {
        NotificationServiceClient::new(authenticated(self.channel(Component::Notification)))
    }

    /// Posts `body` to `path`, signed the way ElevenLabs signs.
    pub async fn post_signed(&self, path: &str, body: &str) -> (u16, Value) {
        let signature = callmesh_gateway::verify::elevenlabs::sign(
            WEBHOOK_SECRET,
            chrono::Utc::now().timestamp(),
            body.as_bytes(),
        );
        self.post(path, body, &[("ElevenLabs-Signature", &signature)])
            .await
    }

    pub async fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.gateway()))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Posts form `fields` to `path`, signed the way Twilio signs; answers status, content
    /// type and body.
    pub async fn post_twilio(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let body = form(fields);
        let url = format!("{}{path}", self.gateway());
        let signature = callmesh_gateway::verify::twilio::sign(TWILIO_TOKEN, &url, body.as_bytes());
        self.post_form(path, &body, Some(&signature)).await
    }

    pub async fn post_form(
        &self,
        path: &str,
        body: &str,
        signature: Option<&str>,
    ) -> (u16, String, String) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.gateway()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (
            status,
            content_type,
            response.text().await.unwrap_or_default(),
        )
    }

    /// Calls the operator API with the admin token.
    pub async fn operator(
        &self,
        path: &str,
        body: Value,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.gateway()))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The inbox as the admin API shows it.
    pub async fn inbox(&self, state: &str) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/api/inbox?state={state}", self.gateway()))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("gateway answers");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("JSON");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the inbox holds no pending or in-flight item and at least `finished` are
    /// done or ignored.
    pub async fn wait_processed(&self, finished: usize) {
        let settled = wait_until(Duration::from_secs(30), || async {
            self.inbox("pending").await.is_empty()
                && self.inbox("processing").await.is_empty()
                && self.inbox("done").await.len() + self.inbox("ignored").await.len() >= finished
        })
        .await;
        let dead = self.inbox("dead").await;
        assert!(
            settled,
            "{:?}: inbox never settled; dead: {dead:?}; pending: {:?}",
            self.backend,
            self.inbox("pending").await
        );
    }
}

/// `application/x-www-form-urlencoded`, as Twilio sends it.
pub fn form(fields: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

pub fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

impl Mesh {
    /// Creates an organization owning `number` (keyed by its name, so a repeat is harmless).
    pub async fn create_organization(
        &self,
        name: &str,
        number: &str,
        settings: Option<callmesh_proto::lead::v1::OrganizationSettings>,
    ) -> String {
        self.lead()
            .create_organization(callmesh_proto::lead::v1::CreateOrganizationRequest {
                idempotency_key: name.into(),
                name: name.into(),
                timezone: "UTC".into(),
                phone_numbers: vec![number.into()],
                settings,
            })
            .await
            .expect("create organization")
            .into_inner()
            .organization
            .expect("organization")
            .id
    }

    /// An organization's events, oldest first.
    pub async fn events(
        &self,
        organization_id: &str,
    ) -> Vec<callmesh_proto::notification::v1::Event> {
        use callmesh_proto::notification::v1 as pb;
        self.notification()
            .list_events(pb::ListEventsRequest {
                filter: Some(pb::EventFilter {
                    organization_id: organization_id.into(),
                    ..Default::default()
                }),
                after_event_id: 0,
                limit: 500,
                occurred_since: None,
                newest_first: false,
            })
            .await
            .expect("list events")
            .into_inner()
            .events
    }
}

/// How many of `events` are of `kind`.
pub fn count(
    events: &[callmesh_proto::notification::v1::Event],
    kind: callmesh_proto::notification::v1::EventType,
) -> usize {
    events.iter().filter(|e| e.r#type == kind as i32).count()
}
