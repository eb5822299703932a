//! `make bench`: durable webhook ingest and conversation initiation against the whole mesh on
//! loopback (SQLite, release build). Prints throughput and latency percentiles; the targets are
//! in ARCHITECTURE.md. Not a test: numbers depend on the machine.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;

use callmesh_testkit::Backend;
use support::{INITIATION_SECRET, Mesh, WEBHOOK_SECRET};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// A 4 KB signed post-call webhook for conversation `n` (a body the gateway stores and ignores,
/// so the measurement is verify + inbox commit + 200).
fn webhook(n: usize) -> (String, String) {
    let body = json!({"type": "bench_event", "event_timestamp": 1, "data": {"conversation_id": format!("bench_{n}"),
        "pad": "x".repeat(3900)}})
    .to_string();
    let signature = callmesh_gateway::verify::elevenlabs::sign(
        WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    (body, signature)
}

async fn post(client: &reqwest::Client, url: &str, body: String, signature: String) -> Duration {
    let started = Instant::now();
    let response = client
        .post(url)
        .header("ElevenLabs-Signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(response.status(), 200);
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let mesh = Mesh::start(Backend::Sqlite, |_| {}).await;
    let url = format!("{}/api/webhooks/elevenlabs/post-call", mesh.gateway());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .expect("client");

    // Throughput: as fast as 256 concurrent senders can go.
    let total = 20_000;
    let started = Instant::now();
    let mut handles = Vec::new();
    for worker in 0..256 {
        let (client, url) = (client.clone(), url.clone());
        handles.push(tokio::spawn(async move {
            let mut n = worker;
            while n < total {
                let (body, signature) = webhook(n);
                post(&client, &url, body, signature).await;
                n += 256;
            }
        }));
    }
    for handle in handles {
        handle.await.expect("worker");
    }
    let elapsed = started.elapsed();
    println!(
        "durable ingest: {total} webhooks in {:.2} s = {:.0} webhooks/s (target >= 20000/s)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );

    // Latency at a steady 1,000/s for 5 s.
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    let mut pending = Vec::new();
    for n in 0..5_000 {
        ticker.tick().await;
        let (client, url) = (client.clone(), url.clone());
        let (body, signature) = webhook(total + n);
        pending.push(tokio::spawn(async move {
            post(&client, &url, body, signature).await
        }));
    }
    let mut latencies = Vec::new();
    for handle in pending {
        latencies.push(handle.await.expect("request"));
    }
    latencies.sort();
    println!(
        "ack latency at 1000/s: p50 {:?}, p99 {:?}, max {:?} (target p99 <= 5 ms)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );

    // Conversation initiation at 200/s for 5 s (gateway -> context -> lead, database reads).
    let initiation = format!(
        "{}/api/webhooks/elevenlabs/conversation-initiation",
        mesh.gateway()
    );
    let mut ticker = tokio::time::interval(Duration::from_millis(5));
    let mut pending = Vec::new();
    for n in 0..1_000 {
        ticker.tick().await;
        let (client, url) = (client.clone(), initiation.clone());
        let body =
            json!({"caller_id": format!("+1415555{:04}", n % 50), "called_number": "+12125550100"})
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
    println!(
        "conversation initiation at 200/s: p50 {:?}, p99 {:?} (target p99 <= 10 ms)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    mesh.shutdown().await;
}
