//! `make bench`: what a webhook provider and a dashboard feel, against the whole mesh on
//! loopback (release build, default inbox settings, logs at warn), on SQLite and — when it is
//! reachable — PostgreSQL (a throwaway database):
//!
//! - a floor: a bare axum server that only verifies the signature and parses the JSON, under
//!   the same load, so the ratios mean something on a noisy machine;
//! - durable ingest: acks/s and latency of signed webhooks the gateway stores and ignores;
//! - processed end to end: a burst of post-call webhooks (2–12 turns, a new caller each) sent
//!   by 64 connections, then the time until every one is `done` (every service, rules
//!   analysis, events published, CRM recorded);
//! - sustained: post-call webhooks at a steady rate (open loop), ack latency and ack → `done` lag;
//! - conversation initiation at 200/s.
//!
//! Not a test: numbers depend on the machine. `BENCH_BURST` (20000), `BENCH_RATE` (500/s) and
//! `BENCH_SUSTAIN_SECS` (60) size the runs; `BENCH_BACKENDS=sqlite` skips PostgreSQL;
//! `BENCH_PHASES=processed` (any of floor, ingest, processed, sustained, initiation) runs only
//! those phases. `BENCH_SUSTAIN_KIND=ignored` sustains webhooks the gateway stores and ignores
//! instead: the acks' latency with nothing to process beside them.

#[path = "../tests/support/mod.rs"]
mod support;

mod measure;
use measure::{env_number, ms, percentile};

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};

use callmesh_gateway::config::GatewayConfig;
use callmesh_runtime::Component;
use callmesh_testkit::Backend;
use support::{INITIATION_SECRET, Mesh, WEBHOOK_SECRET};

/// As the `callmesh` binary runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONNECTIONS: usize = 64;
const POST_CALL: &str = "/api/webhooks/elevenlabs/post-call";

fn sign(body: &str) -> String {
    callmesh_gateway::verify::elevenlabs::sign(
        WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    )
}

/// A 4 KB signed webhook of a type the gateway stores and ignores: verify + commit + 200.
fn ignored_webhook(tag: &str, n: usize) -> String {
    json!({"type": "bench_event", "event_timestamp": 1, "data": {"conversation_id": format!("{tag}_{n}"),
        "pad": "x".repeat(3900)}})
    .to_string()
}

/// A real post-call webhook: conversation `tag_n`, a caller no one has seen, 2–12 turns.
fn post_call_webhook(template: &Value, tag: &str, n: usize) -> String {
    let mut body = template.clone();
    let data = &mut body["data"];
    data["conversation_id"] = json!(format!("{tag}_{n}"));
    let turns = 2 + (n * 7) % 11;
    if let Some(transcript) = data["transcript"].as_array_mut() {
        transcript.truncate(turns);
    }
    let phone = &mut data["metadata"]["phone_call"];
    // A valid number no earlier call used: each call brings a new lead.
    let caller = if tag == "sustain" { 50_000 + n } else { n };
    const AREAS: [u32; 10] = [415, 212, 312, 646, 303, 617, 206, 512, 702, 404];
    let area = AREAS[(caller / 10_000) % AREAS.len()];
    phone["external_number"] = json!(format!("+1{area}555{:04}", caller % 10_000));
    phone["call_sid"] = json!(format!("CA{tag}{n:030}"));
    body.to_string()
}

/// Sends `bodies` over `CONNECTIONS` connections as fast as they are answered; returns each
/// request's latency and the wall time.
async fn closed_loop(
    client: &reqwest::Client,
    url: &str,
    bodies: Vec<String>,
) -> (Vec<Duration>, Duration) {
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, url, bodies, next) =
            (client.clone(), url.to_owned(), bodies.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(n) else { break };
                latencies.push(post(&client, &url, body.clone()).await);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    (latencies, elapsed)
}

async fn post(client: &reqwest::Client, url: &str, body: String) -> Duration {
    let signature = sign(&body);
    let started = Instant::now();
    let response = client
        .post(url)
        .header("ElevenLabs-Signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("server answers");
    assert_eq!(response.status(), 200);
    started.elapsed()
}

/// The floor: verify the signature, parse the JSON, answer. Nothing durable.
async fn bare_floor(client: &reqwest::Client, bodies: Vec<String>) -> (Vec<Duration>, Duration) {
    let secret = callmesh_gateway::secret::Secret::new(WEBHOOK_SECRET);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let secret = secret.clone();
            async move {
                let verified = callmesh_gateway::verify::elevenlabs::verify(
                    std::slice::from_ref(&secret),
                    &headers,
                    body.clone(),
                    chrono::Utc::now().timestamp(),
                )
                .is_ok();
                let parsed = serde_json::from_slice::<Value>(&body).is_ok();
                if verified && parsed {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let result = closed_loop(client, &url, bodies).await;
    server.abort();
    result
}

async fn gateway_db(mesh: &Mesh) -> DatabaseConnection {
    Database::connect(mesh.database_url(Component::Gateway))
        .await
        .expect("gateway database")
}

async fn count_done(db: &DatabaseConnection, prefix: &str) -> usize {
    let backend = db.get_database_backend();
    let row = db
        .query_one(Statement::from_sql_and_values(
            backend,
            "SELECT COUNT(*) AS n FROM inbox_items WHERE state = 'done' AND idempotency_key LIKE $1",
            [format!("%{prefix}_%").into()],
        ))
        .await
        .expect("count")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("n") as usize
}

/// Each item's ack → done lag (settled minus received), sorted.
async fn lags(db: &DatabaseConnection, prefix: &str) -> Vec<Duration> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all(Statement::from_sql_and_values(
            backend,
            "SELECT received_at, updated_at FROM inbox_items WHERE state = 'done' AND idempotency_key LIKE $1",
            [format!("%{prefix}_%").into()],
        ))
        .await
        .expect("lags");
    let mut lags: Vec<Duration> = rows
        .iter()
        .map(|row| {
            let received: chrono::DateTime<chrono::Utc> =
                row.try_get("", "received_at").expect("received_at");
            let settled: chrono::DateTime<chrono::Utc> =
                row.try_get("", "updated_at").expect("updated_at");
            (settled - received).to_std().unwrap_or_default()
        })
        .collect();
    lags.sort();
    lags
}

/// Whether any webhook (any run's) is still to be processed: the first entry of the index of
/// waiting items, so that watching a drain costs the mesh next to nothing. Counting them read
/// every waiting item, 17 ms of the PostgreSQL server's CPU every 100 ms at the start of a
/// 20,000 drain.
async fn any_waiting(db: &DatabaseConnection) -> bool {
    let backend = db.get_database_backend();
    let row = db
        .query_one(Statement::from_string(
            backend,
            "SELECT 1 AS n FROM inbox_items WHERE state IN ('pending', 'processing') LIMIT 1",
        ))
        .await
        .expect("waiting");
    row.is_some()
}

/// Waits until nothing is left to do, then says whether all `total` of `prefix` are done.
async fn wait_done(db: &DatabaseConnection, prefix: &str, total: usize, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if !any_waiting(db).await {
            return count_done(db, prefix).await >= total;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

struct Row {
    what: String,
    figure: String,
}

/// Whether `BENCH_PHASES` (a comma-separated list of floor, ingest, processed, sustained and
/// initiation; all when unset) asks for `name`.
fn phase(name: &str) -> bool {
    std::env::var("BENCH_PHASES")
        .map(|phases| phases.split(',').any(|p| p.trim() == name))
        .unwrap_or(true)
}

/// CPU time (user + system, every thread) this process has used so far, from `/proc/self/stat`
/// in clock ticks of 10 ms; zero where that file does not exist.
fn cpu_time() -> Duration {
    std::fs::read_to_string("/proc/self/stat").map_or(Duration::ZERO, |stat| stat_cpu(&stat, false))
}

/// CPU time the local PostgreSQL server has used so far: every process named `postgres`, with
/// the time of the backends it has already reaped (the postmaster's children's time), so a
/// connection closed during a phase still counts. Zero where `/proc` does not exist or the
/// server is elsewhere.
fn postgres_cpu_time() -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| stat.contains("(postgres)"))
        .map(|stat| stat_cpu(&stat, true))
        .sum()
}

/// User + system time from a `/proc/<pid>/stat` line, with its reaped children's when asked.
fn stat_cpu(stat: &str, with_children: bool) -> Duration {
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let children = if with_children {
        ticks(16) + ticks(17)
    } else {
        0
    };
    Duration::from_millis((ticks(14) + ticks(15) + children) * 10)
}

async fn run_backend(
    backend: Backend,
    client: &reqwest::Client,
    template: &Value,
    rows: &mut Vec<Row>,
) {
    let name = format!("{backend:?}");
    // Each component on its own threads, as `callmesh up` runs them (and the load, like a
    // provider's servers, apart from all of them).
    let configure = |config: &mut GatewayConfig| {
        // What an operator gets without tuning, not the tests' fast retries.
        let defaults = GatewayConfig::new(config.database.clone(), Vec::new());
        config.inbox = defaults.inbox;
        // As an operator would tune it.
        config.inbox.concurrency = env_number("INBOX_CONCURRENCY", config.inbox.concurrency);
    };
    let mesh = if std::env::var("BENCH_MESH").is_ok_and(|m| m == "apart") {
        Mesh::start_apart(backend, configure).await
    } else {
        Mesh::start(backend, configure).await
    };
    let db = gateway_db(&mesh).await;
    let url = format!("{}{POST_CALL}", mesh.gateway());
    let burst = env_number("BENCH_BURST", 20_000);

    if phase("ingest") {
        // Durable ingest.
        let bodies = (0..burst).map(|n| ignored_webhook("ingest", n)).collect();
        let (latencies, elapsed) = closed_loop(client, &url, bodies).await;
        rows.push(Row {
            what: format!("{name}: durable ingest, {CONNECTIONS} connections"),
            figure: format!(
                "{:.0} acks/s, p50 {}, p99 {}",
                burst as f64 / elapsed.as_secs_f64(),
                ms(percentile(&latencies, 0.5)),
                ms(percentile(&latencies, 0.99))
            ),
        });
    }

    if phase("processed") {
        // Processed end to end: a burst, then the drain.
        let bodies = (0..burst)
            .map(|n| post_call_webhook(template, "burst", n))
            .collect();
        let started = Instant::now();
        let cpu_before = cpu_time();
        let postgres_before = postgres_cpu_time();
        let (latencies, acked) = closed_loop(client, &url, bodies).await;
        let drained = wait_done(&db, "burst", burst, Duration::from_secs(900)).await;
        let total = started.elapsed();
        let cpu = cpu_time().saturating_sub(cpu_before);
        let postgres_cpu = postgres_cpu_time().saturating_sub(postgres_before);
        let done = count_done(&db, "burst").await;
        let per_webhook = |cpu: Duration| cpu.as_secs_f64() * 1000.0 / burst.max(1) as f64;
        rows.push(Row {
            what: format!("{name}: burst of {burst} post-call webhooks, acked"),
            figure: format!(
                "{:.0} acks/s, p99 {}",
                burst as f64 / acked.as_secs_f64(),
                ms(percentile(&latencies, 0.99))
            ),
        });
        rows.push(Row {
            what: format!("{name}: burst processed end to end"),
            figure: format!(
                "{:.0} webhooks/s; all done {:.1} s after the last ack{}",
                done as f64 / total.as_secs_f64(),
                (total - acked).as_secs_f64(),
                if drained { "" } else { " (NOT drained)" }
            ),
        });
        rows.push(Row {
            what: format!("{name}: CPU per webhook, sent and processed"),
            figure: match backend {
                Backend::Sqlite => format!("{:.2} ms", per_webhook(cpu)),
                Backend::Postgres => format!(
                    "{:.2} ms, and {:.2} ms in the PostgreSQL server",
                    per_webhook(cpu),
                    per_webhook(postgres_cpu)
                ),
            },
        });
    }

    if phase("sustained") {
        // Sustained, open loop.
        let rate = env_number("BENCH_RATE", 500);
        let seconds = env_number("BENCH_SUSTAIN_SECS", 60);
        let count = rate * seconds;
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut pending = Vec::with_capacity(count);
        let sustain_ignored = std::env::var("BENCH_SUSTAIN_KIND").is_ok_and(|k| k == "ignored");
        for n in 0..count {
            ticker.tick().await;
            let body = if sustain_ignored {
                ignored_webhook("sustain", n)
            } else {
                post_call_webhook(template, "sustain", n)
            };
            let (client, url) = (client.clone(), url.clone());
            pending.push(tokio::spawn(async move { post(&client, &url, body).await }));
        }
        let mut latencies = Vec::with_capacity(count);
        for handle in pending {
            latencies.push(handle.await.expect("request"));
        }
        latencies.sort();
        let kind = if sustain_ignored {
            "ignored"
        } else {
            "post-call"
        };
        rows.push(Row {
            what: format!("{name}: {rate}/s {kind} for {seconds} s, ack"),
            figure: format!(
                "p50 {}, p99 {}",
                ms(percentile(&latencies, 0.5)),
                ms(percentile(&latencies, 0.99))
            ),
        });
        if !sustain_ignored {
            let drained = wait_done(&db, "sustain", count, Duration::from_secs(600)).await;
            let lag = lags(&db, "sustain").await;
            rows.push(Row {
                what: format!("{name}: {rate}/s post-call for {seconds} s, ack → done lag"),
                figure: format!(
                    "p50 {}, p99 {}{}",
                    ms(percentile(&lag, 0.5)),
                    ms(percentile(&lag, 0.99)),
                    if drained { "" } else { " (NOT drained)" }
                ),
            });
        }
    }

    if phase("initiation") {
        // Conversation initiation at 200/s for 5 s (gateway → context → lead).
        let initiation = format!(
            "{}/api/webhooks/elevenlabs/conversation-initiation",
            mesh.gateway()
        );
        // 50 callers calling again and again; `BENCH_INITIATION_CALLERS=1000`: a new caller
        // every time (whose lead is created while the phone rings).
        let callers = env_number("BENCH_INITIATION_CALLERS", 50).max(1);
        let mut ticker = tokio::time::interval(Duration::from_millis(5));
        let mut pending = Vec::new();
        for n in 0..1_000 {
            ticker.tick().await;
            let (client, url) = (client.clone(), initiation.clone());
            let body =
                json!({"caller_id": format!("+1415555{:04}", n % callers), "called_number": "+12125550100"})
                    .to_string();
            pending.push(tokio::spawn(async move {
                let started = Instant::now();
                let response = client
                    .post(url)
                    .header("X-Webhook-Secret", INITIATION_SECRET)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("gateway answers");
                assert_eq!(response.status(), 200);
                started.elapsed()
            }));
        }
        let mut latencies = Vec::new();
        for handle in pending {
            latencies.push(handle.await.expect("request"));
        }
        latencies.sort();
        rows.push(Row {
            what: format!("{name}: conversation initiation at 200/s"),
            figure: format!(
                "p50 {}, p99 {}",
                ms(percentile(&latencies, 0.5)),
                ms(percentile(&latencies, 0.99))
            ),
        });
    }
    drop(db);
    mesh.shutdown().await;
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_none() {
        // SAFETY: set before any other thread reads the environment.
        unsafe { std::env::set_var("RUST_LOG", "warn") };
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS * 4)
        .build()
        .expect("client");
    let template: Value = serde_json::from_str(include_str!(
        "../tests/fixtures/post_call_transcription.json"
    ))
    .expect("fixture");
    let burst = env_number("BENCH_BURST", 20_000);
    let mut rows = Vec::new();

    if phase("floor") {
        let bodies = (0..burst).map(|n| ignored_webhook("floor", n)).collect();
        let (latencies, elapsed) = bare_floor(&client, bodies).await;
        rows.push(Row {
            what: format!("floor: bare verify + parse, {CONNECTIONS} connections"),
            figure: format!(
                "{:.0} req/s, p50 {}, p99 {}",
                burst as f64 / elapsed.as_secs_f64(),
                ms(percentile(&latencies, 0.5)),
                ms(percentile(&latencies, 0.99))
            ),
        });
    }

    let wanted = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    for backend in callmesh_testkit::backends().await {
        let name = format!("{backend:?}").to_ascii_lowercase();
        if wanted.split(',').any(|w| w.trim() == name) {
            run_backend(backend, &client, &template, &mut rows).await;
        }
    }

    println!();
    println!(
        "callmesh bench, {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        chrono::Utc::now().format("%Y-%m-%d")
    );
    for row in rows {
        println!("  {:<58} {}", row.what, row.figure);
    }
}
