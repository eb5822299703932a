//! What the hardening review asked for, through the whole mesh: idempotency keys that belong to
//! one organization, requests that send once however they race, and an HTTP server that slow or
//! greedy clients cannot hold.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use callmesh_proto::lead::v1 as lead_pb;
use callmesh_runtime::Component;
use callmesh_testkit::{Backend, backends};

use support::{ADMIN_TOKEN, Mesh, TWILIO_NUMBER};

/// How long a test waits for the server to do what it should at once (or after a 1 s limit).
const DEADLINE: Duration = Duration::from_secs(10);

const CAFE_NUMBER: &str = "+12125550177";

fn settings() -> lead_pb::OrganizationSettings {
    lead_pb::OrganizationSettings {
        agent_id: "agent_test".into(),
        agent_phone_number_id: "phnum_test".into(),
        ..Default::default()
    }
}

async fn token_for(mesh: &Mesh, organization_id: &str) -> String {
    mesh.lead()
        .create_organization_token(lead_pb::CreateOrganizationTokenRequest {
            idempotency_key: String::new(),
            organization_id: organization_id.into(),
            name: "operator".into(),
        })
        .await
        .expect("token")
        .into_inner()
        .secret
}

/// `POST path` as an organization's operator, with an `Idempotency-Key`.
async fn post_as(mesh: &Mesh, token: &str, path: &str, body: Value, key: &str) -> (u16, Value) {
    let response = mesh
        .http
        .post(format!("{}{path}", mesh.gateway()))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .expect("gateway answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn recipients(mesh: &Mesh) -> Vec<String> {
    mesh.fake_api
        .messages
        .lock()
        .expect("lock")
        .iter()
        .map(|m| m.get("To").cloned().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn one_key_in_two_organizations_sends_two_messages() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        let shop = mesh
            .create_organization("Bike Shop", TWILIO_NUMBER, Some(settings()))
            .await;
        let cafe = mesh
            .create_organization("Cafe", CAFE_NUMBER, Some(settings()))
            .await;
        let shop_token = token_for(&mesh, &shop).await;
        let cafe_token = token_for(&mesh, &cafe).await;

        let sms = "/api/twilio/send-sms";
        let to_ann = json!({"to": "+14155550123", "body": "Your bike is ready"});
        let to_bob = json!({"to": "+14155550124", "body": "Your order is ready"});
        let (status, first) = post_as(&mesh, &shop_token, sms, to_ann, "order-42-ready").await;
        assert_eq!(status, 200, "{backend:?}: {first}");
        let (status, second) = post_as(&mesh, &cafe_token, sms, to_bob, "order-42-ready").await;
        assert_eq!(status, 200, "{backend:?}: {second}");

        assert_eq!(second["sms"]["to"], "+14155550124", "{backend:?}: {second}");
        assert_ne!(first["sms"]["id"], second["sms"]["id"], "{backend:?}");
        let mut sent = recipients(&mesh);
        sent.sort();
        assert_eq!(sent, ["+14155550123", "+14155550124"], "{backend:?}");
        mesh.shutdown().await;
    }
}

#[tokio::test]
async fn racing_requests_with_one_key_send_once() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        let shop = mesh
            .create_organization("Bike Shop", TWILIO_NUMBER, Some(settings()))
            .await;
        let token = token_for(&mesh, &shop).await;
        let body = json!({"to": "+14155550123", "body": "Your bike is ready"});
        let answers = futures_util::future::join_all((0..8).map(|_| {
            post_as(
                &mesh,
                &token,
                "/api/twilio/send-sms",
                body.clone(),
                "race-1",
            )
        }))
        .await;
        for (status, answer) in &answers {
            assert_eq!(*status, 200, "{backend:?}: {answer}");
            assert_eq!(
                answer["sms"]["id"], answers[0].1["sms"]["id"],
                "{backend:?}"
            );
        }
        assert_eq!(
            recipients(&mesh).len(),
            1,
            "{backend:?}: eight racing requests with one key"
        );
        mesh.shutdown().await;
    }
}

/// Writes `request` raw on a new connection and returns what the server sent until it closed
/// the connection or the deadline passed (`None`).
async fn raw_exchange(mesh: &Mesh, request: &[u8]) -> (TcpStream, Option<String>) {
    let mut stream = TcpStream::connect(mesh.addrs[&Component::Gateway])
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write");
    let answer = read_answer(&mut stream).await;
    (stream, answer)
}

/// What arrives on `stream` until the first response's end of headers, or the connection
/// closes; `None` when nothing decisive happens before the deadline.
async fn read_answer(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(DEADLINE, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    received.extend_from_slice(&buffer[..n]);
                    if received.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&received).into_owned())
}

async fn limited_mesh() -> Mesh {
    Mesh::start(Backend::Sqlite, |config| {
        config.http.header_read_timeout = Duration::from_secs(1);
        config.http.body_read_timeout = Duration::from_secs(1);
    })
    .await
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let mesh = limited_mesh().await;
    let (_stream, answer) = raw_exchange(
        &mesh,
        b"GET /api/health HTTP/1.1\r\nHost: gateway\r\nX-Slow: ",
    )
    .await;
    let answer = answer.expect("the connection is closed after the header timeout");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    mesh.shutdown().await;
}

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408() {
    let mesh = limited_mesh().await;
    let request = format!(
        "POST /api/twilio/send-sms HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"to\":"
    );
    let (_stream, answer) = raw_exchange(&mesh, request.as_bytes()).await;
    let answer = answer.expect("an answer after the body timeout");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    mesh.shutdown().await;
}

#[tokio::test]
async fn an_unsigned_audio_upload_is_refused_before_its_body_is_read() {
    // The body timeout is long here: the answer must not wait for it.
    let mesh = Mesh::start(Backend::Sqlite, |_| {}).await;
    let request = b"POST /api/webhooks/elevenlabs/post-call HTTP/1.1\r\nHost: gateway\r\n\
        Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{";
    let (_stream, answer) = raw_exchange(&mesh, request).await;
    let answer = answer.expect("an answer without the 50 MB body");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer:?}");
    mesh.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_answered_503() {
    let mesh = Mesh::start(Backend::Sqlite, |config| {
        config.http.max_connections = 1;
    })
    .await;
    let health = b"GET /api/health HTTP/1.1\r\nHost: gateway\r\n\r\n";
    // The first connection stays open (keep-alive) after its answer.
    let (_held, first) = raw_exchange(&mesh, health).await;
    assert!(first.is_some_and(|a| a.starts_with("HTTP/1.1 ")));
    let (_second, answer) = raw_exchange(&mesh, health).await;
    let answer = answer.expect("an answer while the cap is reached");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    mesh.shutdown().await;
}

#[tokio::test]
async fn the_cookie_and_query_token_authenticate_reads_only() {
    let mesh = Mesh::start(Backend::Sqlite, |_| {}).await;
    let shop = mesh
        .create_organization("Bike Shop", TWILIO_NUMBER, Some(settings()))
        .await;
    let token = token_for(&mesh, &shop).await;
    let gateway = mesh.gateway();
    let cookie = format!("callmesh_token={token}");
    // A form another site could make a browser post: a cookie and no Authorization header.
    let forged = mesh
        .http
        .post(format!("{gateway}/api/twilio/send-sms"))
        .header("Cookie", &cookie)
        .header("Content-Type", "text/plain")
        .body(r#"{"to": "+14155550123", "body": "hello"}"#)
        .send()
        .await
        .expect("answer");
    assert_eq!(forged.status(), 401);
    let by_query = mesh
        .http
        .post(format!("{gateway}/api/twilio/send-sms?token={token}"))
        .json(&json!({"to": "+14155550123", "body": "hello"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(by_query.status(), 401);
    assert!(recipients(&mesh).is_empty(), "an SMS went out");

    // Reading through the cookie still works, for the dashboard's page and streams.
    let read = mesh
        .http
        .get(format!("{gateway}/api/leads"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("answer");
    assert_eq!(read.status(), 200);
    mesh.shutdown().await;
}

#[tokio::test]
async fn a_crm_url_inside_the_network_is_refused_on_save_and_on_connect() {
    use callmesh_proto::notification::v1 as notification_pb;
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        // On save: the cloud metadata address, loopback by name, a private network.
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:9/crm",
            "http://10.1.2.3/crm",
        ] {
            let refused = mesh
                .lead()
                .create_organization(lead_pb::CreateOrganizationRequest {
                    idempotency_key: format!("crm-{url}"),
                    name: "Nosy".into(),
                    timezone: "UTC".into(),
                    phone_numbers: Vec::new(),
                    settings: Some(lead_pb::OrganizationSettings {
                        crm_webhook_url: url.into(),
                        ..Default::default()
                    }),
                })
                .await
                .map(|_| ())
                .map_err(|s| (s.code(), s.message().to_owned()));
            assert!(
                matches!(&refused, Err((tonic::Code::InvalidArgument, m)) if m.starts_with("settings.crm_webhook_url")),
                "{backend:?}: {url} was saved: {refused:?}"
            );
        }

        // On connect: "127.1" is no address until the resolver makes it 127.0.0.1.
        let port = mesh.fake_api.url.rsplit(':').next().expect("port");
        let sneaky = format!("http://127.1:{port}/crm");
        mesh.notification()
            .forward_to_crm(notification_pb::ForwardToCrmRequest {
                idempotency_key: "crm-sneaky".into(),
                organization_id: "org-1".into(),
                lead_id: "lead-1".into(),
                call_id: "call-1".into(),
                record: Some(notification_pb::CrmRecord {
                    subject: "call".into(),
                    to: "+14155550123".into(),
                    name: "Ann".into(),
                    summary: "asked".into(),
                    status: "held".into(),
                    duration_secs: 10,
                }),
                webhook_url: sneaky,
            })
            .await
            .expect("recorded");
        let failed = callmesh_testkit::wait_until(Duration::from_secs(20), || async {
            mesh.notification()
                .list_events(notification_pb::ListEventsRequest {
                    filter: Some(notification_pb::EventFilter {
                        types: vec![notification_pb::EventType::CrmDeliveryFailed.into()],
                        ..Default::default()
                    }),
                    after_event_id: 0,
                    limit: 10,
                    occurred_since: None,
                    newest_first: false,
                })
                .await
                .is_ok_and(|r| r.into_inner().events.len() == 1)
        })
        .await;
        assert!(failed, "{backend:?}: the delivery never failed");
        assert!(
            mesh.fake_api.crm_requests.lock().expect("lock").is_empty(),
            "{backend:?}: the CRM on loopback was called"
        );
        mesh.shutdown().await;
    }
}

#[tokio::test]
async fn conversation_ids_reach_elevenlabs_encoded_and_only_after_ownership() {
    let mesh = Mesh::start(Backend::Sqlite, |_| {}).await;
    let shop = mesh
        .create_organization("Bike Shop", TWILIO_NUMBER, Some(settings()))
        .await;
    let token = token_for(&mesh, &shop).await;
    let rerun = |id: &str| format!("{}/api/conversations/{id}/analysis/run", mesh.gateway());

    // An organization asking about a conversation it does not own asks nobody else.
    let answer = mesh
        .http
        .post(rerun("conv_of_someone_else"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 403);
    assert!(
        mesh.fake_api.requests.lock().expect("lock").is_empty(),
        "ElevenLabs was asked before ownership was checked"
    );

    // The admin may ask ElevenLabs; the id arrives as one path segment, whatever it holds.
    let answer = mesh
        .http
        .post(rerun("conv%3Fpage%3D2"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 404);
    assert_eq!(
        *mesh.fake_api.requests.lock().expect("lock"),
        ["conv?page=2"]
    );
    mesh.shutdown().await;
}
