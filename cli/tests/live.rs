//! Live dashboards through the whole mesh: SSE streams fed by notification's Subscribe,
//! organization tokens, resume without gaps or duplicates, slow subscribers, CRM forwarding.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1 as notification_pb;
use callmesh_testkit::{Backend, backends, wait_until};

use support::{ADMIN_TOKEN, Mesh};

async fn token_for(mesh: &Mesh, organization_id: &str) -> (String, String) {
    let answer = mesh
        .lead()
        .create_organization_token(lead_pb::CreateOrganizationTokenRequest {
            idempotency_key: String::new(),
            organization_id: organization_id.into(),
            name: "dashboard".into(),
        })
        .await
        .expect("token")
        .into_inner();
    (answer.token.expect("token").id, answer.secret)
}

async fn publish(mesh: &Mesh, key: &str, organization_id: &str, lead_id: &str) -> u64 {
    mesh.notification()
        .publish(notification_pb::PublishRequest {
            idempotency_key: key.into(),
            organization_id: organization_id.into(),
            lead_id: lead_id.into(),
            r#type: notification_pb::EventType::SmsReceived.into(),
            payload_json: json!({"key": key}).to_string(),
            occurred_at: None,
        })
        .await
        .expect("publish")
        .into_inner()
        .event
        .expect("event")
        .id
}

/// One SSE connection, read event by event.
struct SseClient {
    lines: std::pin::Pin<Box<dyn futures_util::Stream<Item = String> + Send>>,
}

#[derive(Debug, Clone, PartialEq)]
struct SseEvent {
    id: Option<u64>,
    name: String,
    data: Value,
}

impl SseClient {
    async fn connect(
        mesh: &Mesh,
        path: &str,
        token: &str,
        last_event_id: Option<u64>,
    ) -> Result<SseClient, (u16, Value)> {
        let mut request = mesh
            .http
            .get(format!("{}{path}", mesh.gateway()))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("gateway answers");
        if response.status() != 200 {
            let status = response.status().as_u16();
            return Err((status, response.json().await.unwrap_or(Value::Null)));
        }
        let bytes = response.bytes_stream();
        let lines = bytes
            .map(|chunk| String::from_utf8_lossy(&chunk.unwrap_or_default()).into_owned())
            .scan(String::new(), |buffer, text| {
                buffer.push_str(&text);
                let mut complete = Vec::new();
                while let Some(end) = buffer.find('\n') {
                    complete.push(buffer[..end].trim_end_matches('\r').to_owned());
                    buffer.drain(..=end);
                }
                futures_util::future::ready(Some(futures_util::stream::iter(complete)))
            })
            .flatten();
        Ok(SseClient {
            lines: Box::pin(lines),
        })
    }

    /// The next event (heartbeats skipped), or `None` within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        tokio::time::timeout(wait, async {
            let (mut id, mut name, mut data) = (None, String::from("message"), String::new());
            while let Some(line) = self.lines.next().await {
                if line.is_empty() {
                    if !data.is_empty() {
                        return Some(SseEvent {
                            id,
                            name,
                            data: serde_json::from_str(&data).unwrap_or(Value::Null),
                        });
                    }
                    continue;
                }
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }
}

#[tokio::test]
async fn dashboards_see_their_own_organization_only_and_resume_without_gaps() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        let shop = mesh
            .create_organization("Bike Shop", "+12125550100", None)
            .await;
        let cafe = mesh.create_organization("Cafe", "+12125550200", None).await;
        let (_, shop_token) = token_for(&mesh, &shop).await;
        let (cafe_token_id, cafe_token) = token_for(&mesh, &cafe).await;

        let mut shop_stream = SseClient::connect(
            &mesh,
            &format!("/api/stream/organization/{shop}"),
            &shop_token,
            None,
        )
        .await
        .expect("shop stream");
        let mut cafe_stream = SseClient::connect(
            &mesh,
            &format!("/api/stream/organization/{cafe}"),
            &cafe_token,
            None,
        )
        .await
        .expect("cafe stream");
        // No wait needed: notification registers a subscriber before it answers Subscribe, and
        // the gateway answers the SSE request only after Subscribe has answered.

        let first = publish(&mesh, "e1", &shop, "").await;
        publish(&mesh, "e2", &cafe, "").await;
        let second = publish(&mesh, "e3", &shop, "").await;

        let seen = shop_stream
            .next(Duration::from_secs(10))
            .await
            .expect("first shop event");
        assert_eq!(seen.id, Some(first), "{backend:?}");
        assert_eq!(seen.name, "sms_received");
        assert_eq!(seen.data["organization_id"], shop.as_str());
        assert_eq!(seen.data["payload"]["key"], "e1");
        assert_eq!(
            shop_stream
                .next(Duration::from_secs(10))
                .await
                .expect("second")
                .id,
            Some(second)
        );
        let cafe_seen = cafe_stream
            .next(Duration::from_secs(10))
            .await
            .expect("cafe event");
        assert_eq!(
            cafe_seen.data["payload"]["key"], "e2",
            "only the cafe's event"
        );
        assert!(
            cafe_stream.next(Duration::from_millis(500)).await.is_none(),
            "nothing of the shop's"
        );

        // Disconnect after the first event, publish while away, resume: no gap, no duplicate.
        drop(shop_stream);
        let third = publish(&mesh, "e4", &shop, "").await;
        let fourth = publish(&mesh, "e5", &shop, "").await;
        let mut resumed = SseClient::connect(
            &mesh,
            &format!("/api/stream/organization/{shop}"),
            &shop_token,
            Some(first),
        )
        .await
        .expect("resumed stream");
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(
                resumed
                    .next(Duration::from_secs(10))
                    .await
                    .expect("replayed")
                    .id
                    .expect("id"),
            );
        }
        assert_eq!(ids, [second, third, fourth], "{backend:?}");
        let live = publish(&mesh, "e6", &shop, "").await;
        assert_eq!(
            resumed
                .next(Duration::from_secs(10))
                .await
                .expect("live")
                .id,
            Some(live)
        );

        // A token of one organization gets 403 on another's streams, whatever it guesses.
        let (status, body) = SseClient::connect(
            &mesh,
            &format!("/api/stream/organization/{shop}"),
            &cafe_token,
            None,
        )
        .await
        .err()
        .expect("forbidden");
        assert_eq!(status, 403, "{body}");
        let lead = mesh
            .lead()
            .find_or_create_lead(lead_pb::FindOrCreateLeadRequest {
                organization_id: shop.clone(),
                phone_number: "+14155550123".into(),
                ..Default::default()
            })
            .await
            .expect("lead")
            .into_inner()
            .lead
            .expect("lead");
        for guess in [
            lead.id.as_str(),
            "01900000-0000-7000-8000-000000000000",
            "not-an-id",
        ] {
            let refused = SseClient::connect(
                &mesh,
                &format!("/api/stream/conversation/{guess}"),
                &cafe_token,
                None,
            )
            .await;
            assert_eq!(refused.err().map(|e| e.0), Some(403), "{guess}");
        }
        let (status, _) = mesh
            .operator(
                &format!("/api/conversations/{}/takeover", lead.id),
                json!({}),
                None,
            )
            .await;
        assert_eq!(status, 200, "the admin may");
        let cafe_takeover = mesh
            .http
            .post(format!(
                "{}/api/conversations/{}/takeover",
                mesh.gateway(),
                lead.id
            ))
            .bearer_auth(&cafe_token)
            .json(&json!({}))
            .send()
            .await
            .expect("answer");
        assert_eq!(cafe_takeover.status(), 403);

        // The conversation stream carries only that lead's events; the token may come as a query
        // parameter, as EventSource needs.
        let mut conversation = SseClient::connect(
            &mesh,
            &format!("/api/stream/conversation/{}?token={shop_token}", lead.id),
            "",
            None,
        )
        .await
        .expect("conversation stream");
        publish(&mesh, "other-lead", &shop, "someone-else").await;
        let mine = publish(&mesh, "this-lead", &shop, &lead.id).await;
        // The takeover's own event may still be on its way to the gateway when the stream
        // opens; whatever comes is this lead's, and the other lead's never does.
        loop {
            let event = conversation
                .next(Duration::from_secs(10))
                .await
                .expect("lead event");
            assert_eq!(event.data["lead_id"], json!(lead.id), "{event:?}");
            if event.id == Some(mine) {
                break;
            }
        }

        // Bad and revoked tokens, malformed ids.
        let (status, _) = SseClient::connect(
            &mesh,
            &format!("/api/stream/organization/{cafe}"),
            "cm_guess",
            None,
        )
        .await
        .err()
        .expect("unknown token");
        assert_eq!(status, 401);
        mesh.lead()
            .revoke_organization_token(lead_pb::RevokeOrganizationTokenRequest {
                idempotency_key: String::new(),
                token_id: cafe_token_id,
            })
            .await
            .expect("revoke");
        let (status, _) = SseClient::connect(
            &mesh,
            &format!("/api/stream/organization/{cafe}"),
            &cafe_token,
            None,
        )
        .await
        .err()
        .expect("revoked");
        assert_eq!(status, 401);
        let malformed = mesh
            .http
            .get(format!("{}/api/stream/organization/{shop}", mesh.gateway()))
            .bearer_auth(ADMIN_TOKEN)
            .header("Last-Event-ID", "yesterday")
            .send()
            .await
            .expect("answer");
        assert_eq!(malformed.status(), 400);
        mesh.shutdown().await;
    }
}

#[tokio::test]
async fn a_stalled_subscriber_never_delays_another_and_is_cut_off() {
    let mesh = Mesh::start(Backend::Sqlite, |_| {}).await;
    let shop = mesh
        .create_organization("Bike Shop", "+12125550100", None)
        .await;
    // A gRPC subscriber that never reads.
    let stalled = mesh
        .notification()
        .subscribe(notification_pb::SubscribeRequest {
            filter: Some(notification_pb::EventFilter {
                organization_id: shop.clone(),
                ..Default::default()
            }),
            after_event_id: 0,
        })
        .await
        .expect("subscribe")
        .into_inner();
    let mut healthy = SseClient::connect(
        &mesh,
        &format!("/api/stream/organization/{shop}"),
        ADMIN_TOKEN,
        None,
    )
    .await
    .expect("stream");
    // The healthy subscriber reads as events come.
    let reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        while ids.len() < 400 {
            match healthy.next(Duration::from_secs(20)).await {
                Some(event) => ids.push(event.id.unwrap_or(0)),
                None => break,
            }
        }
        ids
    });

    // Far more than the stalled subscriber's buffers hold (its outbox and HTTP/2 windows).
    let payload = "x".repeat(64 * 1024);
    let mut notification = mesh.notification();
    let mut published = Vec::new();
    for i in 0..400 {
        let publish = notification.publish(notification_pb::PublishRequest {
            idempotency_key: format!("burst-{i}"),
            organization_id: shop.clone(),
            lead_id: String::new(),
            r#type: notification_pb::EventType::CallStatus.into(),
            payload_json: json!({"i": i, "pad": payload}).to_string(),
            occurred_at: None,
        });
        let id = tokio::time::timeout(Duration::from_secs(10), publish)
            .await
            .unwrap_or_else(|_| panic!("publish {i} was held up"))
            .expect("publish")
            .into_inner()
            .event
            .expect("event")
            .id;
        published.push(id);
    }
    let received = reader.await.expect("reader");
    assert_eq!(
        received, published,
        "the healthy subscriber got everything, in order"
    );

    // The stalled one, when it finally reads, finds it was cut off with a clear status.
    let outcome: Vec<_> = tokio::time::timeout(Duration::from_secs(90), stalled.collect())
        .await
        .expect("the stalled stream ends");
    let error = outcome
        .iter()
        .find_map(|item| item.as_ref().err())
        .expect("cut off");
    assert_eq!(error.code(), tonic::Code::ResourceExhausted, "{error:?}");
    assert!(outcome.len() < 401, "it did not get everything");
    mesh.shutdown().await;
}

#[tokio::test]
async fn a_thousand_sse_clients_all_receive_an_event() {
    let mesh = Mesh::start(Backend::Sqlite, |_| {}).await;
    let shop = mesh
        .create_organization("Bike Shop", "+12125550100", None)
        .await;
    let mut clients = Vec::new();
    for _ in 0..1000 {
        clients.push(
            SseClient::connect(
                &mesh,
                &format!("/api/stream/organization/{shop}"),
                ADMIN_TOKEN,
                None,
            )
            .await
            .expect("stream"),
        );
    }
    let id = publish(&mesh, "broadcast", &shop, "").await;
    let waits = clients.into_iter().map(|mut client| async move {
        client
            .next(Duration::from_secs(60))
            .await
            .and_then(|e| e.id)
    });
    let got = futures_util::future::join_all(waits).await;
    let delivered = got.iter().filter(|g| **g == Some(id)).count();
    assert_eq!(delivered, 1000);
    mesh.shutdown().await;
}

#[tokio::test]
async fn a_resume_point_older_than_the_log_says_reload() {
    let mesh = Mesh::start(Backend::Sqlite, |_| {}).await;
    let shop = mesh
        .create_organization("Bike Shop", "+12125550100", None)
        .await;
    for i in 0..5 {
        publish(&mesh, &format!("old-{i}"), &shop, "").await;
    }
    // Simulate retention having pruned the first events.
    use sea_orm::ConnectionTrait;
    let db =
        sea_orm::Database::connect(mesh.database_url(callmesh_runtime::Component::Notification))
            .await
            .expect("connect");
    db.execute_unprepared("DELETE FROM events WHERE id <= 3")
        .await
        .expect("prune");
    let mut stream = SseClient::connect(
        &mesh,
        &format!("/api/stream/organization/{shop}"),
        ADMIN_TOKEN,
        Some(1),
    )
    .await
    .expect("stream");
    let first = stream.next(Duration::from_secs(10)).await.expect("reset");
    assert_eq!(first.name, "reset");
    assert_eq!(first.data["oldest_available_id"], 4);
    assert_eq!(
        stream
            .next(Duration::from_secs(10))
            .await
            .expect("then the rest")
            .id,
        Some(4)
    );
    mesh.shutdown().await;
}

#[tokio::test]
async fn crm_records_survive_a_flaky_crm_and_are_never_doubled() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        let shop = mesh
            .create_organization("Bike Shop", "+12018774358", None)
            .await;
        // Fails twice, then takes it.
        mesh.fake_api
            .crm_script
            .lock()
            .expect("lock")
            .extend([503, 429]);
        let body = include_str!("fixtures/post_call_transcription.json")
            .replace("CONVERSATION_ID", "conv_crm");
        assert_eq!(
            mesh.post_signed("/api/webhooks/elevenlabs/post-call", &body)
                .await
                .0,
            200
        );
        mesh.wait_processed(1).await;
        let delivered = wait_until(Duration::from_secs(20), || async {
            mesh.fake_api
                .crm_requests
                .lock()
                .expect("lock")
                .iter()
                .any(|r| r.2 == 200)
        })
        .await;
        assert!(delivered, "{backend:?}");
        let requests = mesh.fake_api.crm_requests.lock().expect("lock").clone();
        assert_eq!(
            requests.iter().map(|r| r.2).collect::<Vec<_>>(),
            [503, 429, 200]
        );
        let keys: std::collections::HashSet<_> = requests.iter().map(|r| r.0.clone()).collect();
        assert_eq!(
            keys.len(),
            1,
            "one delivery, the same Idempotency-Key on every attempt"
        );
        let record = &requests[2].1;
        assert_eq!(record["type"], "conversationAICall");
        assert_eq!(record["status"], "held");
        assert_eq!(record["to"], "+12523960448");
        assert_eq!(record["duration"], 88);
        assert!(
            record["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("Angelo asked"))
        );

        // The same webhook again is recognised at the door: still one record.
        assert_eq!(
            mesh.post_signed("/api/webhooks/elevenlabs/post-call", &body)
                .await,
            (200, json!({"status": "duplicate"}))
        );
        assert_eq!(mesh.fake_api.crm_requests.lock().expect("lock").len(), 3);

        // A CRM that rejects the record: one attempt, and a failure event.
        mesh.fake_api
            .crm_script
            .lock()
            .expect("lock")
            .push_back(400);
        let body = include_str!("fixtures/post_call_transcription.json")
            .replace("CONVERSATION_ID", "conv_crm_rejected")
            .replace("CA15884136fed840d807968d7c83b21ba4", "CA_rejected");
        mesh.post_signed("/api/webhooks/elevenlabs/post-call", &body)
            .await;
        let failed = wait_until(Duration::from_secs(20), || async {
            let events = mesh
                .notification()
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
                .map(|r| r.into_inner().events.len())
                .unwrap_or(0);
            events == 1
        })
        .await;
        assert!(failed, "{backend:?}: crm_delivery_failed published");
        let rejected = mesh
            .fake_api
            .crm_requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.2 == 400)
            .count();
        assert_eq!(rejected, 1, "a 400 is final: one attempt");
        let deliveries = mesh
            .notification()
            .list_crm_deliveries(notification_pb::ListCrmDeliveriesRequest::default())
            .await
            .expect("deliveries")
            .into_inner()
            .deliveries;
        assert_eq!(deliveries.len(), 2);
        let failed = deliveries
            .iter()
            .find(|d| d.state == notification_pb::CrmDeliveryState::Failed as i32)
            .expect("the rejected one");
        assert_eq!(failed.attempts.len(), 1);
        assert_eq!(failed.attempts[0].http_status, 400);
        // The delivery log through the HTTP API.
        let log: Value = mesh
            .http
            .get(format!(
                "{}/api/crm/deliveries?org_id={shop}&state=delivered",
                mesh.gateway()
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        let attempts: Vec<_> = log["deliveries"][0]["attempts"]
            .as_array()
            .expect("attempts")
            .iter()
            .map(|a| a["http_status"].as_i64().unwrap_or(0))
            .collect();
        assert_eq!(attempts, [503, 429, 200], "{log}");
        mesh.shutdown().await;
    }
}

#[tokio::test]
async fn the_metrics_summary_reflects_calls_takeovers_and_webhooks() {
    let mesh = Mesh::start(Backend::Sqlite, |_| {}).await;
    let shop = mesh
        .create_organization("Bike Shop", "+12018774358", None)
        .await;
    let cafe = mesh.create_organization("Cafe", "+12125550200", None).await;
    let (_, cafe_token) = token_for(&mesh, &cafe).await;
    let body = include_str!("fixtures/post_call_transcription.json")
        .replace("CONVERSATION_ID", "conv_metrics");
    assert_eq!(
        mesh.post_signed("/api/webhooks/elevenlabs/post-call", &body)
            .await
            .0,
        200
    );
    let (refused, _) = mesh
        .post(
            "/api/webhooks/elevenlabs/post-call",
            &body,
            &[("ElevenLabs-Signature", "t=1,v0=00")],
        )
        .await;
    assert_eq!(refused, 401);
    mesh.wait_processed(1).await;
    let lead = mesh
        .lead()
        .find_or_create_lead(lead_pb::FindOrCreateLeadRequest {
            organization_id: shop.clone(),
            phone_number: "+12523960448".into(),
            ..Default::default()
        })
        .await
        .expect("lead")
        .into_inner()
        .lead
        .expect("lead");
    mesh.operator(
        &format!("/api/conversations/{}/takeover", lead.id),
        json!({}),
        None,
    )
    .await;

    let response = mesh
        .http
        .get(format!(
            "{}/api/metrics/summary?org_id={shop}",
            mesh.gateway()
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    let summary: Value = response.json().await.expect("json");
    assert_eq!(summary["calls"], 1, "{summary}");
    assert_eq!(summary["average_call_duration_secs"], 88.0);
    assert_eq!(summary["ai_success_rate"], 1.0);
    assert_eq!(summary["human_takeover_rate"], 1.0);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(summary["conversations_per_day"][&today], 1);
    assert_eq!(summary["lead_conversion_by_tier"]["hot"]["leads"], 1);
    assert_eq!(summary["lead_conversion_by_tier"]["hot"]["converted"], 0);
    assert!(summary["webhook_acceptance"]["accepted"].as_u64() >= Some(1));
    assert!(summary["webhook_acceptance"]["refused"].as_u64() >= Some(1));

    let other = mesh
        .http
        .get(format!(
            "{}/api/metrics/summary?org_id={shop}",
            mesh.gateway()
        ))
        .bearer_auth(&cafe_token)
        .send()
        .await
        .expect("answer");
    assert_eq!(other.status(), 403);
    let bad_since = mesh
        .http
        .get(format!(
            "{}/api/metrics/summary?org_id={shop}&since=last-week",
            mesh.gateway()
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(bad_since.status(), 400);
    mesh.shutdown().await;
}

#[tokio::test]
async fn a_fresh_stream_replays_the_newest_events_then_goes_live() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        let shop = mesh
            .create_organization("Bike Shop", "+12125550100", None)
            .await;
        let cafe = mesh.create_organization("Cafe", "+12125550200", None).await;
        let (_, shop_token) = token_for(&mesh, &shop).await;
        let mut shop_ids = Vec::new();
        for n in 0..6 {
            shop_ids.push(publish(&mesh, &format!("shop-{n}"), &shop, "lead_s").await);
            // Another organization's events in between are never replayed to this one.
            publish(&mesh, &format!("cafe-{n}"), &cafe, "lead_c").await;
        }

        let path = format!("/api/stream/organization/{shop}?replay=3");
        let mut stream = SseClient::connect(&mesh, &path, &shop_token, None)
            .await
            .expect("stream");
        let mut replayed = Vec::new();
        for _ in 0..3 {
            let event = stream
                .next(Duration::from_secs(10))
                .await
                .expect("replayed");
            assert_eq!(event.data["organization_id"], shop.as_str(), "{backend:?}");
            replayed.push(event.id.expect("id"));
        }
        assert_eq!(
            replayed,
            shop_ids[3..],
            "{backend:?}: the newest three, oldest first"
        );

        // Then live, with nothing in between replayed twice.
        let live = publish(&mesh, "shop-live", &shop, "lead_s").await;
        let event = stream.next(Duration::from_secs(10)).await.expect("live");
        assert_eq!(event.id, Some(live), "{backend:?}");

        // A reconnect with Last-Event-ID resumes; `replay` does not repeat the past.
        let mut resumed = SseClient::connect(&mesh, &path, &shop_token, Some(shop_ids[4]))
            .await
            .expect("resumed");
        let ids: Vec<_> = [
            resumed.next(Duration::from_secs(10)).await,
            resumed.next(Duration::from_secs(10)).await,
        ]
        .into_iter()
        .map(|e| e.and_then(|e| e.id))
        .collect();
        assert_eq!(ids, [Some(shop_ids[5]), Some(live)], "{backend:?}");
        mesh.shutdown().await;
    }
}
