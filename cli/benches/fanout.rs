//! `make bench`: live fan-out within one gateway, measured as a dashboard user feels it. The
//! services run in this process on SQLite; the gateway runs as its own `callmesh serve gateway`
//! process (release build), so its memory can be read from `/proc` and its sockets do not share
//! this process's file limit. `BENCH_SSE_CLIENTS` (10,000) SSE clients connect to one
//! organization's stream, then:
//!
//! - memory per idle client: the gateway's resident set with the clients connected, minus before,
//!   divided by the clients;
//! - publish → client: `BENCH_SSE_ROUNDS` (5) events published straight to the notification
//!   service, the time from the publish call to each client's copy;
//! - webhook → client: one signed post-call webhook to the gateway, the time from its `200` to
//!   each client's `call_ended` event (the whole flow included).
//!
//! Not a test: numbers depend on the machine (clients and gateway share its cores).

#[path = "../tests/support/mod.rs"]
mod support;

mod measure;
use measure::{env_number, ms, percentile};

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use callmesh_proto::notification::v1 as pb;
use callmesh_runtime::Component;
use callmesh_testkit::{Backend, wait_until};
use support::{ADMIN_TOKEN, Mesh, WEBHOOK_SECRET};

const SHOP_NUMBER: &str = "+12018774358";
/// Connections opened at once while the clients connect.
const CONNECTING: usize = 256;
/// Not received (yet).
const NONE: u64 = u64::MAX;

/// The gateway process; killed when dropped.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Gateway {
    fn start(mesh: &Mesh) -> Gateway {
        let mut command = Command::new(env!("CARGO_BIN_EXE_callmesh"));
        command
            .args(["serve", "gateway"])
            .env_clear()
            .env("RUST_LOG", "warn")
            .env("GATEWAY_ADDR", mesh.addrs[&Component::Gateway].to_string())
            .env(
                "GATEWAY_DATABASE_URL",
                mesh.database_url(Component::Gateway),
            )
            .env("ELEVENLABS_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("CALLMESH_ADMIN_TOKEN", ADMIN_TOKEN)
            .env(
                "CALLMESH_INTERNAL_TOKEN",
                callmesh_runtime::auth::credentials().token(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for service in Component::SERVICES {
            command.env(
                service.url_var(),
                format!("http://{}", mesh.addrs[&service]),
            );
        }
        Gateway(command.spawn().expect("start the gateway"))
    }

    /// Resident memory in bytes, from `/proc/<pid>/status`.
    fn rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    }
}

/// When each client saw each round's event: `rounds` publish rounds, then the webhook's
/// `call_ended`; nanoseconds since `epoch`.
struct Arrivals {
    epoch: Instant,
    slots: Vec<Vec<AtomicU64>>,
    connected: AtomicUsize,
}

impl Arrivals {
    fn new(rounds: usize, clients: usize) -> Arrivals {
        Arrivals {
            epoch: Instant::now(),
            slots: (0..=rounds)
                .map(|_| (0..clients).map(|_| AtomicU64::new(NONE)).collect())
                .collect(),
            connected: AtomicUsize::new(0),
        }
    }

    fn mark(&self, round: usize, client: usize) {
        if let Some(slot) = self.slots.get(round).and_then(|r| r.get(client)) {
            slot.store(self.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }

    fn received(&self, round: usize) -> usize {
        self.slots[round]
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) != NONE)
            .count()
    }

    /// Each client's delay after `since` for `round` (those that got it).
    fn delays(&self, round: usize, since: Instant) -> Vec<Duration> {
        let since = since.duration_since(self.epoch).as_nanos() as u64;
        self.slots[round]
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|&at| at != NONE)
            .map(|at| Duration::from_nanos(at.saturating_sub(since)))
            .collect()
    }
}

/// One SSE client: counts `sms_received` events (publish rounds) and notes `call_ended`.
async fn client(http: reqwest::Client, url: String, index: usize, arrivals: Arc<Arrivals>) {
    let response = match http.get(&url).bearer_auth(ADMIN_TOKEN).send().await {
        Ok(response) if response.status() == 200 => response,
        Ok(response) => {
            eprintln!("client {index}: {}", response.status());
            return;
        }
        Err(error) => {
            eprintln!("client {index}: {error}");
            return;
        }
    };
    arrivals.connected.fetch_add(1, Ordering::Relaxed);
    let rounds = arrivals.slots.len() - 1;
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut published = 0;
    while let Some(Ok(chunk)) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if block.contains("event: sms_received") {
                arrivals.mark(published, index);
                published += 1;
            } else if block.contains("event: call_ended") {
                arrivals.mark(rounds, index);
            }
        }
    }
}

fn post_call(conversation_id: &str) -> String {
    include_str!("../tests/fixtures/post_call_transcription.json")
        .replace("CONVERSATION_ID", conversation_id)
        .replace("CA15884136fed840d807968d7c83b21ba4", "CA_fanout")
}

fn summary(delays: &mut [Duration]) -> String {
    delays.sort();
    format!(
        "p50 {}, p99 {}, max {}",
        ms(percentile(delays, 0.5)),
        ms(percentile(delays, 0.99)),
        ms(delays.last().copied().unwrap_or_default())
    )
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_none() {
        // SAFETY: set before any other thread reads the environment.
        unsafe { std::env::set_var("RUST_LOG", "warn") };
    }
    let clients = env_number("BENCH_SSE_CLIENTS", 10_000);
    let rounds = env_number("BENCH_SSE_ROUNDS", 5);
    let mesh = Mesh::start_without_gateway(Backend::Sqlite, |_| {}).await;
    let shop = mesh
        .create_organization("Bike Shop", SHOP_NUMBER, None)
        .await;
    let gateway = Gateway::start(&mesh);
    let base = mesh.gateway();
    let http = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let up = wait_until(Duration::from_secs(60), || async {
        matches!(http.get(format!("{base}/api/health")).send().await, Ok(r) if r.status() == 200)
    })
    .await;
    assert!(up, "the gateway never became healthy");
    let before = gateway.rss();

    // Connect everyone, a few hundred at a time.
    let arrivals = Arc::new(Arrivals::new(rounds, clients));
    let url = format!("{base}/api/stream/organization/{shop}");
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for index in 0..clients {
        tasks.push(tokio::spawn(client(
            http.clone(),
            url.clone(),
            index,
            arrivals.clone(),
        )));
        if index % CONNECTING == CONNECTING - 1 {
            let target = index + 1;
            wait_until(Duration::from_secs(60), || async {
                arrivals.connected.load(Ordering::Relaxed) >= target
            })
            .await;
        }
    }
    let all = wait_until(Duration::from_secs(120), || async {
        arrivals.connected.load(Ordering::Relaxed) >= clients
    })
    .await;
    let connected = arrivals.connected.load(Ordering::Relaxed);
    let connect_time = started.elapsed();
    assert!(all, "only {connected} of {clients} clients connected");
    let after = gateway.rss();
    let per_client = after.saturating_sub(before) as f64 / clients as f64 / 1024.0;

    // Publish rounds, each waited for (or given up on after 30 s) before the next.
    let mut notification = mesh.notification();
    let mut publish_delays = Vec::new();
    for round in 0..rounds {
        let sent = Instant::now();
        notification
            .publish(pb::PublishRequest {
                idempotency_key: format!("fanout-{round}"),
                organization_id: shop.clone(),
                lead_id: String::new(),
                r#type: pb::EventType::SmsReceived.into(),
                payload_json: json!({"round": round}).to_string(),
                occurred_at: None,
            })
            .await
            .expect("publish");
        wait_until(Duration::from_secs(30), || async {
            arrivals.received(round) >= clients
        })
        .await;
        publish_delays.extend(arrivals.delays(round, sent));
    }
    let published_to = publish_delays.len();

    // One webhook, as a provider sends it.
    let body = post_call("conv_fanout_1");
    let signature = callmesh_gateway::verify::elevenlabs::sign(
        WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    let response = http
        .post(format!("{base}/api/webhooks/elevenlabs/post-call"))
        .header("content-type", "application/json")
        .header("ElevenLabs-Signature", signature)
        .body(body)
        .send()
        .await
        .expect("webhook");
    let acked = Instant::now();
    assert_eq!(response.status(), 200);
    wait_until(Duration::from_secs(60), || async {
        arrivals.received(rounds) >= clients
    })
    .await;
    let mut webhook_delays = arrivals.delays(rounds, acked);
    let webhook_to = webhook_delays.len();

    println!();
    println!(
        "callmesh fan-out bench, {} cores, {}: {clients} SSE clients on one gateway, one organization",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        chrono::Utc::now().format("%Y-%m-%d")
    );
    let rows = [
        (
            "clients connected".to_owned(),
            format!("{connected} in {:.1} s", connect_time.as_secs_f64()),
        ),
        (
            "gateway memory per idle client".to_owned(),
            format!(
                "{per_client:.1} KiB (RSS {} → {} MiB)",
                before / (1 << 20),
                after / (1 << 20)
            ),
        ),
        (
            format!("publish → client ({rounds} events, {published_to} deliveries)"),
            summary(&mut publish_delays),
        ),
        (
            format!("webhook 200 → client call_ended ({webhook_to} deliveries)"),
            summary(&mut webhook_delays),
        ),
    ];
    for (what, figure) in rows {
        println!("  {what:<58} {figure}");
    }
    for task in tasks {
        task.abort();
    }
    drop(gateway);
    mesh.shutdown().await;
}
