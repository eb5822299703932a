//! Provider trouble through the whole mesh: a busy Twilio is tried again, and only a final
//! answer is stored as a failure.

mod support;

use serde_json::json;

use callmesh_proto::lead::v1 as lead_pb;
use callmesh_testkit::backends;

use support::{Mesh, TWILIO_NUMBER};

fn settings() -> lead_pb::OrganizationSettings {
    lead_pb::OrganizationSettings {
        agent_id: "agent_test".into(),
        agent_phone_number_id: "phnum_test".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_busy_twilio_is_tried_again_and_a_replay_sends() {
    for backend in backends().await {
        let mesh = Mesh::start(backend, |_| {}).await;
        mesh.create_organization("Bike Shop", TWILIO_NUMBER, Some(settings()))
            .await;
        let sms = json!({"to": "+14155550123", "body": "Your bike is ready"});
        let sent = || mesh.fake_api.messages.lock().expect("lock").len();

        // Busy, rate limited, then accepted: one request, one message.
        mesh.fake_api
            .twilio_script
            .lock()
            .expect("lock")
            .extend([503, 429]);
        let (status, answer) = mesh
            .operator("/api/twilio/send-sms", sms.clone(), Some("busy-1"))
            .await;
        assert_eq!(status, 200, "{backend:?}: {answer}");
        assert_eq!(sent(), 1, "{backend:?}");
        assert!(mesh.fake_api.twilio_script.lock().expect("lock").is_empty());

        // Busy for longer than one request waits: a retryable answer, nothing stored as
        // failed, and the same request later sends.
        mesh.fake_api
            .twilio_script
            .lock()
            .expect("lock")
            .extend([503; 10]);
        let (status, answer) = mesh
            .operator("/api/twilio/send-sms", sms.clone(), Some("busy-2"))
            .await;
        assert_eq!(status, 503, "{backend:?}: {answer}");
        assert_eq!(sent(), 1, "{backend:?}");
        mesh.fake_api.twilio_script.lock().expect("lock").clear();
        let (status, answer) = mesh
            .operator("/api/twilio/send-sms", sms, Some("busy-2"))
            .await;
        assert_eq!(status, 200, "{backend:?}: {answer}");
        assert_eq!(answer["sms"]["status"], "SMS_STATUS_QUEUED", "{answer}");
        assert_eq!(sent(), 2, "{backend:?}");
        mesh.shutdown().await;
    }
}

#[tokio::test]
async fn a_transcript_larger_than_grpc_defaults_goes_through() {
    use serde_json::Value;
    let mesh = Mesh::start(callmesh_testkit::Backend::Sqlite, |_| {}).await;
    let mut call: Value = serde_json::from_str(
        &include_str!("fixtures/post_call_transcription.json")
            .replace("CONVERSATION_ID", "conv_long"),
    )
    .expect("fixture");
    // 6 MiB of agent monologue: over gRPC's 4 MiB default, well under the webhook limit.
    let chunk = "Our opening hours are nine to five on weekdays. ".repeat(2_000);
    let turns = call["data"]["transcript"].as_array_mut().expect("turns");
    for _ in 0..80 {
        turns.push(json!({"role": "agent", "message": chunk, "time_in_call_secs": 60}));
    }
    let body = call.to_string();
    assert!(body.len() > 6 * 1024 * 1024);
    let (status, answer) = mesh
        .post_signed("/api/webhooks/elevenlabs/post-call", &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    mesh.wait_processed(1).await;
    mesh.shutdown().await;
}

#[tokio::test]
async fn a_subscriber_resuming_far_behind_receives_everything_it_missed() {
    use callmesh_proto::notification::v1 as notification_pb;
    let mesh = Mesh::start(callmesh_testkit::Backend::Sqlite, |_| {}).await;
    // More than a replay batch and more than a subscriber's outbox.
    const MISSED: u64 = 1_200;
    let mut first = 0;
    for n in 0..=MISSED {
        let published = mesh
            .notification()
            .publish(notification_pb::PublishRequest {
                idempotency_key: format!("missed-{n}"),
                organization_id: "org-resume".into(),
                lead_id: "lead-1".into(),
                r#type: notification_pb::EventType::SmsReceived.into(),
                payload_json: json!({"n": n}).to_string(),
                occurred_at: None,
            })
            .await
            .expect("publish")
            .into_inner();
        if n == 0 {
            first = published.event.expect("event").id;
        }
    }
    let mut stream = mesh
        .notification()
        .subscribe(notification_pb::SubscribeRequest {
            filter: Some(notification_pb::EventFilter {
                organization_id: "org-resume".into(),
                ..Default::default()
            }),
            after_event_id: first,
        })
        .await
        .expect("subscribe")
        .into_inner();
    let mut received = 0;
    while received < MISSED {
        let next = tokio::time::timeout(std::time::Duration::from_secs(20), stream.message())
            .await
            .expect("the replay stalled");
        match next {
            Ok(Some(_)) => received += 1,
            other => panic!("the replay ended after {received} of {MISSED}: {other:?}"),
        }
    }
    mesh.shutdown().await;
}

#[tokio::test]
async fn the_metrics_summary_counts_recent_calls_behind_a_long_history() {
    use callmesh_proto::notification::v1 as notification_pb;
    use sea_orm::ConnectionTrait;
    let mesh = Mesh::start(callmesh_testkit::Backend::Sqlite, |_| {}).await;
    let shop = mesh
        .create_organization("Bike Shop", TWILIO_NUMBER, Some(settings()))
        .await;
    // Years of history: more old events than one summary ever read.
    let log =
        sea_orm::Database::connect(mesh.database_url(callmesh_runtime::Component::Notification))
            .await
            .expect("event log");
    log.execute_unprepared(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100500) \
         INSERT INTO events (idempotency_key, organization_id, lead_id, event_type, payload_json, occurred_at) \
         SELECT 'old-' || i, '{shop}', 'lead-old', 'call_ended', \
                '{{\"duration_secs\": 60, \"outcome\": \"success\"}}', '2020-01-01 00:00:00+00:00' FROM n"
    ))
    .await
    .expect("old events");
    mesh.notification()
        .publish(notification_pb::PublishRequest {
            idempotency_key: "recent-call".into(),
            organization_id: shop.clone(),
            lead_id: "lead-new".into(),
            r#type: notification_pb::EventType::CallEnded.into(),
            payload_json: json!({"duration_secs": 30, "outcome": "success"}).to_string(),
            occurred_at: None,
        })
        .await
        .expect("publish");
    let response = mesh
        .http
        .get(format!(
            "{}/api/metrics/summary?org_id={shop}",
            mesh.gateway()
        ))
        .bearer_auth(support::ADMIN_TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    let summary: serde_json::Value = response.json().await.expect("json");
    assert_eq!(summary["calls"], 1, "{summary}");
    assert_eq!(summary["average_call_duration_secs"], 30.0, "{summary}");
    mesh.shutdown().await;
}

#[tokio::test]
async fn the_metrics_summary_counts_every_lead_by_tier() {
    use sea_orm::ConnectionTrait;
    let mesh = Mesh::start(callmesh_testkit::Backend::Sqlite, |_| {}).await;
    let shop = mesh
        .create_organization("Bike Shop", TWILIO_NUMBER, Some(settings()))
        .await;
    // More leads than a summary used to page through; every 201st is hot and converted.
    let book = sea_orm::Database::connect(mesh.database_url(callmesh_runtime::Component::Lead))
        .await
        .expect("lead book");
    book.execute_unprepared(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100500) \
         INSERT INTO leads (id, organization_id, phone_number, name, email, status, score, tier, \
                            summary, interaction_count, source, notes, created_at, updated_at) \
         SELECT printf('01000000-0000-7000-8000-%012d', i), '{shop}', printf('+1415%07d', i), '', '', \
                CASE WHEN i % 201 = 0 THEN 'converted' ELSE 'new' END, \
                CASE WHEN i % 201 = 0 THEN 90 ELSE 20 END, \
                CASE WHEN i % 201 = 0 THEN 'hot' ELSE 'cold' END, \
                '', 0, 'import', '', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00' FROM n"
    ))
    .await
    .expect("leads");
    let response = mesh
        .http
        .get(format!(
            "{}/api/metrics/summary?org_id={shop}",
            mesh.gateway()
        ))
        .bearer_auth(support::ADMIN_TOKEN)
        .send()
        .await
        .expect("answer");
    let status = response.status();
    let summary: serde_json::Value = response.json().await.expect("json");
    assert_eq!(status, 200, "{summary}");
    let tiers = &summary["lead_conversion_by_tier"];
    assert_eq!(tiers["hot"]["leads"], 500, "{tiers}");
    assert_eq!(tiers["hot"]["converted"], 500, "{tiers}");
    assert_eq!(tiers["cold"]["leads"], 100_000, "{tiers}");
    mesh.shutdown().await;
}
