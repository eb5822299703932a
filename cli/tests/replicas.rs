//! Two replicas of every role on one set of PostgreSQL databases, on loopback: set A runs in
//! this process (`Mesh`), set B as six `callmesh serve <role>` processes on other ports, each
//! role of B pointed at the same database as its twin in A. What a user running two replicas
//! behind a load balancer would check: every webhook is processed once whichever gateway got
//! it (and however often it was redelivered), one call record and one CRM POST per call, a
//! dashboard on gateway B sees calls delivered to gateway A, a caller's initiations and a
//! lead's SMS follow-ups are limited across both gateways, a flow held past its lease by a slow
//! model keeps its claim and runs once, a gateway killed mid-flow leaves nothing behind (the
//! other takes its claims over once their lease runs out), and a rolling restart loses nothing.
//!
//! PostgreSQL only: the SQLite files are one machine's, not something replicas share.

mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};

use callmesh_proto::notification::v1 as notification_pb;
use callmesh_proto::telephony::v1 as telephony_pb;
use callmesh_runtime::Component;
use callmesh_testkit::{Backend, backends, wait_until};

use support::{ADMIN_TOKEN, API_KEY, Mesh, TWILIO_ACCOUNT, TWILIO_NUMBER, TWILIO_TOKEN};

const POST_CALL: &str = "/api/webhooks/elevenlabs/post-call";
const SHOP_NUMBER: &str = "+12018774358";
const MESH_TOKEN: &str = "replica-b-mesh-token";
const LEASE_SECS: &str = "2";
const INITIATION_LIMIT: u32 = 4;
const SMS_IN: &str = "/api/webhooks/twilio/sms/incoming";

/// The second set: every role as its own process, killed when dropped.
struct ReplicaSet {
    addrs: HashMap<Component, SocketAddr>,
    children: HashMap<Component, Child>,
    http: reqwest::Client,
    /// The OpenAI-compatible API set B's analysis asks.
    model_url: String,
}

impl ReplicaSet {
    /// Starts all six roles against `mesh`'s databases, on ports of their own; B's analysis
    /// asks `model`.
    async fn start(mesh: &Mesh, model: &SlowModel) -> ReplicaSet {
        let mut addrs = HashMap::new();
        for component in Component::ALL {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            addrs.insert(component, listener.local_addr().expect("addr"));
        }
        let mut set = ReplicaSet {
            addrs,
            children: HashMap::new(),
            http: reqwest::Client::new(),
            model_url: model.url.clone(),
        };
        for component in Component::SERVICES {
            set.spawn(mesh, component);
        }
        set.spawn(mesh, Component::Gateway);
        set.wait_healthy().await;
        set
    }

    fn spawn(&mut self, mesh: &Mesh, component: Component) {
        let url = |c: Component| format!("http://{}", self.addrs[&c]);
        let mut command = Command::new(env!("CARGO_BIN_EXE_callmesh"));
        command
            .args(["serve", component.name()])
            // Nothing from this environment (an LLM key, a DATABASE_URL) leaks in.
            .env_clear()
            .env("RUST_LOG", "warn")
            .env(component.addr_var(), self.addrs[&component].to_string())
            // Metrics on a port of their own (the defaults are fixed ports).
            .env(
                callmesh_runtime::metrics::addr_var(component),
                "127.0.0.1:0",
            )
            .env(component.database_var(), mesh.database_url(component))
            .env("CALLMESH_INTERNAL_TOKEN", MESH_TOKEN)
            .env("CALLMESH_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for service in Component::SERVICES {
            command.env(service.url_var(), url(service));
        }
        let fake = &mesh.fake_api.url;
        match component {
            Component::Gateway => {
                command
                    .env("ELEVENLABS_WEBHOOK_SECRET", support::WEBHOOK_SECRET)
                    .env("ELEVENLABS_API_BASE_URL", fake)
                    .env("ELEVENLABS_API_KEY", API_KEY)
                    .env(
                        "ELEVENLABS_CONVERSATION_INITIATION_WEBHOOK_SECRET",
                        support::INITIATION_SECRET,
                    )
                    .env("INITIATION_RATE_LIMIT", INITIATION_LIMIT.to_string())
                    .env("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
                    .env("TWILIO_PHONE_NUMBER", TWILIO_NUMBER)
                    // Both replicas sit behind one public address, which Twilio signs.
                    .env("PUBLIC_BASE_URL", mesh.gateway())
                    .env("INBOX_RETRY_BASE_MS", "100")
                    .env("INBOX_RETRY_MAX_MS", "500")
                    .env("INBOX_POLL_MS", "100")
                    .env("INBOX_LEASE_SECS", LEASE_SECS)
                    .env("INBOX_MAX_ATTEMPTS", "1000");
            }
            Component::Lead => {
                command.env("DEFAULT_ORGANIZATION_NAME", "Acme Plumbing");
            }
            Component::Telephony => {
                command
                    .env("CALLMESH_STORAGE_DIR", &mesh.storage_dir)
                    .env("ELEVENLABS_API_BASE_URL", fake)
                    .env("ELEVENLABS_API_KEY", API_KEY)
                    .env("TWILIO_API_BASE_URL", fake)
                    .env("TWILIO_ACCOUNT_SID", TWILIO_ACCOUNT)
                    .env("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
                    .env("TWILIO_PHONE_NUMBER", TWILIO_NUMBER);
            }
            Component::Notification => {
                command
                    .env("CRM_WEBHOOK_URL", format!("{fake}/crm"))
                    .env("CRM_RETRY_BASE_MS", "50")
                    .env("CRM_RETRY_MAX_MS", "200")
                    .env("CRM_MAX_ATTEMPTS", "5");
            }
            Component::Analysis => {
                command
                    .env("OPENAI_API_KEY", "sk-test")
                    .env("OPENAI_BASE_URL", &self.model_url)
                    .env("ANALYSIS_LLM_ATTEMPTS", "1");
            }
            Component::Context => {}
        }
        let child = command.spawn().expect("start a replica");
        self.children.insert(component, child);
    }

    async fn wait_healthy(&self) {
        let healthy = wait_until(Duration::from_secs(60), || async {
            matches!(
                self.http.get(format!("{}/api/health", self.gateway())).send().await,
                Ok(r) if r.status() == 200
            )
        })
        .await;
        assert!(healthy, "replica set B never became healthy");
    }

    fn gateway(&self) -> String {
        format!("http://{}", self.addrs[&Component::Gateway])
    }

    fn signal(&self, component: Component, signal: Signal) {
        let pid = Pid::from_raw(self.children[&component].id() as i32);
        kill(pid, signal).expect("signal the replica");
    }

    /// SIGKILL: no drain, no goodbye; its claims stay behind until their lease runs out.
    fn kill(&mut self, component: Component) {
        if let Some(mut child) = self.children.remove(&component) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ReplicaSet {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An OpenAI-compatible API that refuses at once (a 400, which neither the client library nor
/// the analysis retries: it falls back to its rules), or, while `slow` is set, only after
/// holding the request for three inbox leases.
#[derive(Clone, Default)]
struct SlowModel {
    url: String,
    slow: Arc<AtomicBool>,
    /// Requests that arrived while `slow` was set.
    held: Arc<AtomicUsize>,
}

impl SlowModel {
    async fn start() -> SlowModel {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let model = SlowModel {
            url: format!("http://{}/v1", listener.local_addr().expect("addr")),
            ..SlowModel::default()
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(complete))
            .with_state(model.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        model
    }
}

async fn complete(
    axum::extract::State(model): axum::extract::State<SlowModel>,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    if model.slow.load(Ordering::SeqCst) {
        model.held.fetch_add(1, Ordering::SeqCst);
        // A model taking far longer than a lease: the flow's claim must be renewed meanwhile.
        let lease: u64 = LEASE_SECS.parse().unwrap_or(2);
        tokio::time::sleep(Duration::from_secs(3 * lease)).await;
    }
    let refusal = json!({"error": {"message": "not today", "type": "invalid_request_error",
                                   "param": null, "code": null}});
    (axum::http::StatusCode::BAD_REQUEST, axum::Json(refusal))
}

/// The `post_call_transcription` fixture for conversation `id`, with a CallSid of its own.
fn transcription(id: &str) -> String {
    include_str!("fixtures/post_call_transcription.json")
        .replace("CONVERSATION_ID", id)
        .replace("CA15884136fed840d807968d7c83b21ba4", &format!("CA_{id}"))
}

/// Posts a signed post-call webhook to the gateway at `base`; answers the JSON `status`.
async fn deliver(http: &reqwest::Client, base: &str, body: &str) -> String {
    try_deliver(http, base, body)
        .await
        .expect("gateway answers")
}

/// As `deliver`, or `None` when nothing answers (a provider would retry elsewhere).
async fn try_deliver(http: &reqwest::Client, base: &str, body: &str) -> Option<String> {
    let signature = callmesh_gateway::verify::elevenlabs::sign(
        support::WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    let response = http
        .post(format!("{base}{POST_CALL}"))
        .header("content-type", "application/json")
        .header("ElevenLabs-Signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .ok()?;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.ok()?;
    Some(answer["status"].as_str().unwrap_or_default().to_owned())
}

/// A conversation-initiation request for `caller`; answers the status.
async fn initiate(http: &reqwest::Client, base: &str, caller: &str) -> u16 {
    let body = json!({"caller_id": caller, "called_number": SHOP_NUMBER,
                      "call_sid": "CA0000000000000000000000000000init"});
    http.post(format!(
        "{base}/api/webhooks/elevenlabs/conversation-initiation"
    ))
    .header("content-type", "application/json")
    .header("X-Webhook-Secret", support::INITIATION_SECRET)
    .body(body.to_string())
    .send()
    .await
    .expect("gateway answers")
    .status()
    .as_u16()
}

/// Text number `n` from one lead to the shop's Twilio number, through the gateway at `base`,
/// signed for the public address both gateways share.
async fn text_in(mesh: &Mesh, base: &str, n: usize, text: &str) -> (u16, String) {
    let sid = format!("SM{n:032x}");
    let body = support::form(&[
        ("AccountSid", TWILIO_ACCOUNT),
        ("Body", text),
        ("From", "+14155550123"),
        ("MessageSid", &sid),
        ("SmsStatus", "received"),
        ("To", TWILIO_NUMBER),
    ]);
    let signed_url = format!("{}{SMS_IN}", mesh.gateway());
    let signature =
        callmesh_gateway::verify::twilio::sign(TWILIO_TOKEN, &signed_url, body.as_bytes());
    let response = mesh
        .http
        .post(format!("{base}{SMS_IN}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", signature)
        .body(body)
        .send()
        .await
        .expect("gateway answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn auto_reply() -> callmesh_proto::lead::v1::OrganizationSettings {
    callmesh_proto::lead::v1::OrganizationSettings {
        sms_auto_reply: "Thanks for texting {organization}!".into(),
        ..Default::default()
    }
}

/// The conversation ids of the `call_ended` events an SSE stream delivers, as they arrive.
fn call_ended_feed(
    http: &reqwest::Client,
    url: String,
) -> tokio::sync::mpsc::UnboundedReceiver<(u64, String)> {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let request = http.get(url).bearer_auth(ADMIN_TOKEN).send();
    tokio::spawn(async move {
        let response = request.await.expect("stream answers");
        assert_eq!(response.status(), 200);
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let data = block
                    .lines()
                    .filter_map(|line| line.strip_prefix("data:"))
                    .collect::<String>();
                let Ok(event) = serde_json::from_str::<Value>(data.trim()) else {
                    continue;
                };
                if event["type"] == "call_ended" {
                    let id = event["id"].as_u64().unwrap_or_default();
                    let conversation = event["payload"]["conversation_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    if sender.send((id, conversation)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    receiver
}

async fn gateway_db(mesh: &Mesh) -> DatabaseConnection {
    Database::connect(mesh.database_url(Component::Gateway))
        .await
        .expect("gateway database")
}

/// Inbox items in `processing`, by the dispatcher holding them.
async fn claims(db: &DatabaseConnection) -> Vec<(i64, String)> {
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT id, claimed_by FROM inbox_items WHERE state = 'processing' ORDER BY id",
        ))
        .await
        .expect("inbox");
    rows.iter()
        .map(|row| {
            (
                row.try_get::<i64>("", "id").expect("id"),
                row.try_get::<String>("", "claimed_by").expect("claimed_by"),
            )
        })
        .collect()
}

/// Every item settled: nothing pending or processing, `total` done.
async fn wait_all_done(mesh: &Mesh, total: usize) {
    let done = wait_until(Duration::from_secs(60), || async {
        mesh.inbox("pending").await.is_empty()
            && mesh.inbox("processing").await.is_empty()
            && mesh.inbox("done").await.len() == total
    })
    .await;
    assert!(done, "inbox never settled: {:?}", mesh.inbox("all").await);
}

async fn assert_processed_once(mesh: &Mesh, organization_id: &str, conversations: &[String]) {
    for conversation in conversations {
        let call = mesh
            .telephony()
            .get_call(telephony_pb::GetCallRequest {
                conversation_id: conversation.clone(),
                ..Default::default()
            })
            .await
            .expect("call recorded")
            .into_inner()
            .call
            .expect("call");
        assert_eq!(call.call_sid, format!("CA_{conversation}"));
        assert_eq!(call.organization_id, organization_id);
    }
    let calls = mesh
        .telephony()
        .list_calls(telephony_pb::ListCallsRequest {
            organization_id: organization_id.into(),
            ..Default::default()
        })
        .await
        .expect("calls")
        .into_inner()
        .calls;
    assert_eq!(calls.len(), conversations.len(), "one call record per call");

    let events = mesh.events(organization_id).await;
    for conversation in conversations {
        let ended = events
            .iter()
            .filter(|e| e.r#type == notification_pb::EventType::CallEnded as i32)
            .filter(|e| e.payload_json.contains(conversation.as_str()))
            .count();
        assert_eq!(ended, 1, "{conversation}: announced once");
    }

    // One CRM POST per call, whichever notification replica forwarded it: every delivery
    // (one per call id) delivered, and the CRM saw each delivery's key exactly once.
    let notification = Database::connect(mesh.database_url(Component::Notification))
        .await
        .expect("notification database");
    let delivered = wait_until(Duration::from_secs(20), || async {
        count(
            &notification,
            "SELECT count(*) AS n FROM crm_deliveries WHERE state = 'delivered'",
        )
        .await
            == conversations.len() as i64
    })
    .await;
    assert!(delivered, "every call reaches the CRM");
    let deliveries = count(&notification, "SELECT count(*) AS n FROM crm_deliveries").await;
    assert_eq!(
        deliveries,
        conversations.len() as i64,
        "one delivery per call"
    );
    let requests = mesh.fake_api.crm_requests.lock().expect("lock").clone();
    let keys: HashSet<&String> = requests.iter().map(|(key, _, _)| key).collect();
    assert_eq!(keys.len(), conversations.len(), "{requests:?}");
    assert_eq!(requests.len(), conversations.len(), "one CRM POST per call");
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("query")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("count")
}

#[tokio::test]
async fn two_replicas_of_every_role_process_each_webhook_once_and_take_over_a_dead_gateway() {
    if !backends().await.contains(&Backend::Postgres) {
        return;
    }
    let mut mesh = Mesh::start(Backend::Postgres, |config| {
        config.initiation.rate_limit = INITIATION_LIMIT;
    })
    .await;
    let shop = mesh
        .create_organization("Bike Shop", SHOP_NUMBER, None)
        .await;
    let model = SlowModel::start().await;
    let mut b = ReplicaSet::start(&mesh, &model).await;
    let (gateway_a, gateway_b) = (mesh.gateway(), b.gateway());

    // A dashboard on gateway B.
    let mut feed = call_ended_feed(
        &mesh.http,
        format!("{gateway_b}/api/stream/organization/{shop}"),
    );

    // Calls to A and to B, each redelivered through the other gateway.
    let conversations: Vec<String> = (0..8).map(|i| format!("conv_replica_{i}")).collect();
    for (i, conversation) in conversations.iter().enumerate() {
        let body = transcription(conversation);
        let (first, second) = if i % 2 == 0 {
            (&gateway_a, &gateway_b)
        } else {
            (&gateway_b, &gateway_a)
        };
        assert_eq!(deliver(&mesh.http, first, &body).await, "accepted");
        assert_eq!(deliver(&mesh.http, second, &body).await, "duplicate");
    }
    wait_all_done(&mesh, conversations.len()).await;
    assert_processed_once(&mesh, &shop, &conversations).await;

    // Gateway B's dashboard saw every call, those delivered to A included, in id order, once.
    let mut seen = Vec::new();
    let complete = tokio::time::timeout(Duration::from_secs(20), async {
        while seen.len() < conversations.len() {
            match feed.recv().await {
                Some(event) => seen.push(event),
                None => break,
            }
        }
    })
    .await;
    assert!(complete.is_ok(), "the stream on B saw only {seen:?}");
    let ids: Vec<u64> = seen.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order: {ids:?}");
    let names: HashSet<&String> = seen.iter().map(|(_, c)| c).collect();
    assert_eq!(names.len(), conversations.len(), "{seen:?}");

    // Limits hold across gateways: a caller's initiations count on both, and two texts from
    // one lead, one through each gateway, get one auto-reply.
    for i in 0..INITIATION_LIMIT {
        let gateway = if i % 2 == 0 { &gateway_a } else { &gateway_b };
        assert_eq!(initiate(&mesh.http, gateway, "+14155550177").await, 200);
    }
    assert_eq!(initiate(&mesh.http, &gateway_b, "+14155550177").await, 429);
    assert_eq!(initiate(&mesh.http, &gateway_a, "+14155550177").await, 429);
    assert_eq!(initiate(&mesh.http, &gateway_a, "+14155550178").await, 200);
    mesh.create_organization("Cafe", TWILIO_NUMBER, Some(auto_reply()))
        .await;
    for (n, gateway) in [&gateway_a, &gateway_b].into_iter().enumerate() {
        let (status, body) = text_in(&mesh, gateway, n, "Do you have oat milk?").await;
        assert_eq!(status, 200, "{body}");
    }
    let texts = 2;
    wait_all_done(&mesh, conversations.len() + texts).await;
    assert_eq!(
        mesh.fake_api.messages.lock().expect("lock").len(),
        1,
        "one auto-reply for two texts in the cooldown"
    );

    // A flow held past its lease by a slow model is not run twice: its gateway renews the
    // claim, and the other gateway, free to claim anything due, leaves it alone.
    mesh.stop(Component::Gateway).await;
    model.slow.store(true, Ordering::SeqCst);
    let slow = "conv_slow_model".to_owned();
    assert_eq!(
        deliver(&mesh.http, &gateway_b, &transcription(&slow)).await,
        "accepted"
    );
    let asked = wait_until(Duration::from_secs(20), || async {
        model.held.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(asked, "B's analysis never asked the model");
    mesh.restart(Component::Gateway).await;
    wait_all_done(&mesh, conversations.len() + texts + 1).await;
    model.slow.store(false, Ordering::SeqCst);
    assert_eq!(
        model.held.load(Ordering::SeqCst),
        1,
        "the model was asked once"
    );
    let slow_item = mesh
        .inbox("done")
        .await
        .into_iter()
        .find(|item| item.to_string().contains(slow.as_str()))
        .expect("the slow call's item");
    assert_eq!(slow_item["attempts"], 1, "claimed once: {slow_item}");
    let conversations: Vec<String> = conversations.into_iter().chain([slow]).collect();
    assert_processed_once(&mesh, &shop, &conversations).await;

    // Gateway B dies mid-flow. Only B takes work (A's gateway is stopped) and B's flows are
    // held at their first call (B's telephony is frozen), so B holds claims when it dies.
    mesh.stop(Component::Gateway).await;
    b.signal(Component::Telephony, Signal::SIGSTOP);
    let stranded: Vec<String> = (0..4).map(|i| format!("conv_stranded_{i}")).collect();
    for conversation in &stranded {
        assert_eq!(
            deliver(&mesh.http, &gateway_b, &transcription(conversation)).await,
            "accepted"
        );
    }
    let db = gateway_db(&mesh).await;
    let held = wait_until(Duration::from_secs(20), || async {
        claims(&db).await.len() == stranded.len()
    })
    .await;
    assert!(held, "B never claimed its items: {:?}", claims(&db).await);
    let owners_before = claims(&db).await;
    b.kill(Component::Gateway);
    b.signal(Component::Telephony, Signal::SIGCONT);

    // A comes back; once the lease runs out it claims B's items and finishes them.
    mesh.restart(Component::Gateway).await;
    mesh.wait_healthy().await;
    let total = conversations.len() + texts + stranded.len();
    wait_all_done(&mesh, total).await;
    let all: Vec<String> = conversations.iter().chain(&stranded).cloned().collect();
    assert_processed_once(&mesh, &shop, &all).await;
    let items = mesh.inbox("done").await;
    for (id, owner) in owners_before {
        let item = items
            .iter()
            .find(|item| item["id"] == json!(id))
            .expect("the stranded item");
        assert!(
            item["attempts"].as_i64().unwrap_or_default() >= 2,
            "item {id} held by {owner} finished by another claim: {item}"
        );
    }

    // A rolling restart: gateway B comes back, then is stopped (SIGTERM, so it drains) while
    // calls keep coming to both; what B no longer answers is delivered to A. Nothing is lost.
    b.spawn(&mesh, Component::Gateway);
    b.wait_healthy().await;
    let rolling: Vec<String> = (0..8).map(|i| format!("conv_rolling_{i}")).collect();
    for (i, conversation) in rolling.iter().enumerate() {
        if i == 3 {
            b.signal(Component::Gateway, Signal::SIGTERM);
        }
        let body = transcription(conversation);
        let first = if i % 2 == 0 { &gateway_a } else { &gateway_b };
        match try_deliver(&mesh.http, first, &body).await {
            Some(status) => assert_eq!(status, "accepted"),
            None => assert_eq!(deliver(&mesh.http, &gateway_a, &body).await, "accepted"),
        }
    }
    let total = total + rolling.len();
    wait_all_done(&mesh, total).await;
    let all: Vec<String> = all.into_iter().chain(rolling).collect();
    assert_processed_once(&mesh, &shop, &all).await;
    let stopped = b
        .children
        .get_mut(&Component::Gateway)
        .map(|child| child.wait());
    assert!(
        matches!(stopped, Some(Ok(status)) if status.success()),
        "gateway B drained and exited cleanly: {stopped:?}"
    );

    drop(b);
    mesh.shutdown().await;
}
