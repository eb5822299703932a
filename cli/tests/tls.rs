//! TLS on the mesh's gRPC, configured by certificate paths: a service started with a
//! certificate serves TLS only, and a client trusting its CA reaches it.

mod support;

use std::time::Duration;

use tokio::process::Command;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use callmesh_testkit::wait_until;
use support::uuid_like;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn serving(endpoint: Endpoint) -> bool {
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    matches!(answer, Ok(a) if a.get_ref().status() == ServingStatus::Serving)
}

#[tokio::test]
async fn a_service_with_a_certificate_serves_tls_only() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = std::env::temp_dir().join(format!("callmesh-tls-{}", uuid_like()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut lead = Command::new(env!("CARGO_BIN_EXE_callmesh"))
        .args(["serve", "lead"])
        .env_remove("DATABASE_URL")
        .env_remove("LEAD_DATABASE_URL")
        .env("LEAD_ADDR", format!("127.0.0.1:{port}"))
        .env("LEAD_METRICS_ADDR", "127.0.0.1:0")
        .env("CALLMESH_DATA_DIR", &dir)
        .env("CALLMESH_INTERNAL_TOKEN", "tls-test-token")
        .env("CALLMESH_TLS_CERT", fixture("server.pem"))
        .env("CALLMESH_TLS_KEY", fixture("server.key"))
        .kill_on_drop(true)
        .spawn()
        .expect("start the lead service");

    callmesh_runtime::tls::install_crypto();
    let ca = std::fs::read(fixture("ca.pem")).expect("ca");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    let secure = Endpoint::from_shared(format!("https://localhost:{port}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect_timeout(Duration::from_secs(2));
    let up = wait_until(Duration::from_secs(30), || serving(secure.clone())).await;
    assert!(up, "never SERVING over TLS");

    let plain = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("uri")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5));
    assert!(!serving(plain).await, "answered plaintext");

    let _ = lead.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}
