//! Batches over real gRPC. `PublishBatch`: the events are appended in the order given, each
//! once per key (a repeated key answers the logged event), a live subscriber sees them in that
//! order, and a batch with one bad event appends nothing. `BatchForwardToCrm`: one delivery per
//! call, whether the call came before or earlier in the same batch.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use callmesh_notification::{NotificationConfig, serve};
use callmesh_proto::notification::v1 as pb;
use callmesh_proto::notification::v1::notification_service_client::NotificationServiceClient;
use callmesh_runtime::auth::{MeshChannel, authenticated};
use callmesh_runtime::db::DatabaseUrl;
use callmesh_testkit::{TestDatabase, backends, wait_until};

fn event(key: &str, kind: pb::EventType, n: u32) -> pb::PublishRequest {
    pb::PublishRequest {
        idempotency_key: key.into(),
        organization_id: "org_a".into(),
        lead_id: "lead_a".into(),
        r#type: kind.into(),
        payload_json: format!("{{\"n\":{n}}}"),
        occurred_at: None,
    }
}

/// Every event of `org_a` in the log.
async fn org_a_events(notification: &mut NotificationServiceClient<MeshChannel>) -> Vec<pb::Event> {
    notification
        .list_events(pb::ListEventsRequest {
            filter: Some(pb::EventFilter {
                organization_id: "org_a".into(),
                ..Default::default()
            }),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .events
}

async fn client(addr: std::net::SocketAddr) -> NotificationServiceClient<MeshChannel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect_lazy();
    NotificationServiceClient::new(authenticated(channel))
}

/// The service on a loopback port, serving, with `configure` applied to its configuration.
async fn start(
    database: &TestDatabase,
    configure: impl FnOnce(&mut NotificationConfig),
) -> (
    NotificationServiceClient<MeshChannel>,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), callmesh_runtime::ServeError>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let mut config =
        NotificationConfig::new(DatabaseUrl::parse(database.url(), "TEST").expect("url"));
    configure(&mut config);
    let server = tokio::spawn(serve(config, listener, shutdown.clone()));
    let notification = client(addr).await;
    let serving = wait_until(Duration::from_secs(30), || {
        let mut notification = notification.clone();
        async move {
            notification
                .list_events(pb::ListEventsRequest::default())
                .await
                .is_ok()
        }
    })
    .await;
    assert!(serving, "the service never served");
    (notification, shutdown, server)
}

#[tokio::test]
async fn a_batch_is_appended_in_order_once_per_key_or_not_at_all() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let (mut notification, shutdown, server) = start(&database, |_| {}).await;

        let mut live = notification
            .subscribe(pb::SubscribeRequest {
                filter: Some(pb::EventFilter {
                    organization_id: "org_a".into(),
                    ..Default::default()
                }),
                after_event_id: 0,
            })
            .await
            .expect("subscribe")
            .into_inner();

        let first = notification
            .publish_batch(pb::PublishBatchRequest {
                events: vec![
                    event("lead_updated:k1", pb::EventType::LeadUpdated, 1),
                    event("analysis_completed:k1", pb::EventType::AnalysisCompleted, 2),
                ],
            })
            .await
            .expect("published")
            .into_inner()
            .results;
        assert_eq!(first.len(), 2, "{backend:?}");
        assert!(first.iter().all(|r| r.created));
        let ids: Vec<u64> = first
            .iter()
            .map(|r| r.event.as_ref().map_or(0, |e| e.id))
            .collect();
        assert!(ids[0] < ids[1], "{backend:?}: not in order: {ids:?}");

        // A repeated key answers the logged event; the new one is appended after it.
        let second = notification
            .publish_batch(pb::PublishBatchRequest {
                events: vec![
                    event("analysis_completed:k1", pb::EventType::AnalysisCompleted, 2),
                    event("call_ended:k1", pb::EventType::CallEnded, 3),
                ],
            })
            .await
            .expect("published")
            .into_inner()
            .results;
        assert!(!second[0].created && second[1].created, "{backend:?}");
        assert_eq!(second[0].event.as_ref().map(|e| e.id), Some(ids[1]));

        let mut seen = Vec::new();
        while seen.len() < 3 {
            let item = tokio::time::timeout(Duration::from_secs(10), live.message())
                .await
                .expect("live in time")
                .expect("stream")
                .expect("an item");
            if let Some(pb::subscribe_response::Item::Event(event)) = item.item {
                seen.push(event.payload_json);
            }
        }
        assert_eq!(
            seen,
            ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"],
            "{backend:?}: live order"
        );

        // One bad event refuses the batch, naming it; nothing of it is appended.
        let mut bad = event("", pb::EventType::CallEnded, 4);
        bad.payload_json = "{}".into();
        let refused = notification
            .publish_batch(pb::PublishBatchRequest {
                events: vec![event("call_ended:k2", pb::EventType::CallEnded, 5), bad],
            })
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(
            refused.message().contains("events[1].idempotency_key"),
            "{}",
            refused.message()
        );
        let logged = org_a_events(&mut notification).await;
        assert_eq!(logged.len(), 3, "{backend:?}: {logged:?}");

        // A key repeated within one batch is appended once: its repeat answers the same event.
        let third = notification
            .publish_batch(pb::PublishBatchRequest {
                events: vec![
                    event("call_ended:k1", pb::EventType::CallEnded, 3),
                    event("lead_updated:k4", pb::EventType::LeadUpdated, 6),
                    event("lead_updated:k4", pb::EventType::LeadUpdated, 6),
                    event("call_ended:k4", pb::EventType::CallEnded, 7),
                ],
            })
            .await
            .expect("published")
            .into_inner()
            .results;
        let created: Vec<bool> = third.iter().map(|r| r.created).collect();
        assert_eq!(created, [false, true, false, true], "{backend:?}");
        let ids: Vec<u64> = third
            .iter()
            .map(|r| r.event.as_ref().map_or(0, |e| e.id))
            .collect();
        assert_eq!(ids[1], ids[2], "{backend:?}: {ids:?}");
        assert!(ids[0] < ids[1] && ids[1] < ids[3], "{backend:?}: {ids:?}");
        let logged = org_a_events(&mut notification).await;
        assert_eq!(logged.len(), 5, "{backend:?}: {logged:?}");

        shutdown.cancel();
        let _ = server.await;
    }
}

fn forward(key: &str, call_id: &str) -> pb::ForwardToCrmRequest {
    pb::ForwardToCrmRequest {
        idempotency_key: key.into(),
        organization_id: "org_a".into(),
        lead_id: "lead_a".into(),
        call_id: call_id.into(),
        record: Some(pb::CrmRecord {
            subject: format!("Call {call_id}"),
            to: "+14155550100".into(),
            name: "Ada".into(),
            summary: "Asked for a quote.".into(),
            status: "held".into(),
            duration_secs: 42,
        }),
        webhook_url: String::new(),
    }
}

#[tokio::test]
async fn a_batch_of_crm_records_makes_one_delivery_per_call() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let (mut notification, shutdown, server) = start(&database, |config| {
            // Nothing listens there: deliveries stay recorded, their sending is not under test.
            config.crm.default_url = Some("http://127.0.0.1:9/crm".into());
        })
        .await;

        let earlier = notification
            .forward_to_crm(forward("crm:old", "call-old"))
            .await
            .expect("forwarded")
            .into_inner();
        assert!(earlier.created);
        let earlier_id = earlier.delivery.map(|d| d.id).unwrap_or_default();

        let results = notification
            .batch_forward_to_crm(pb::BatchForwardToCrmRequest {
                items: vec![
                    forward("crm:new", "call-new"),
                    // The call has its delivery already, asked for under another key.
                    forward("crm:old-again", "call-old"),
                    // The same call again in this batch.
                    forward("crm:new-again", "call-new"),
                    forward("crm:two", "call-two"),
                ],
            })
            .await
            .expect("batch answered")
            .into_inner()
            .results;
        let answers: Vec<(bool, String, String)> = results
            .into_iter()
            .map(|result| match result.result {
                Some(pb::forward_to_crm_result::Result::Ok(ok)) => {
                    let delivery = ok.delivery.unwrap_or_default();
                    (ok.created, delivery.id, delivery.call_id)
                }
                other => panic!("{backend:?}: not ok: {other:?}"),
            })
            .collect();
        let created: Vec<bool> = answers.iter().map(|a| a.0).collect();
        assert_eq!(created, [true, false, false, true], "{backend:?}");
        let calls: Vec<&str> = answers.iter().map(|a| a.2.as_str()).collect();
        assert_eq!(calls, ["call-new", "call-old", "call-new", "call-two"]);
        assert_eq!(
            answers[1].1, earlier_id,
            "{backend:?}: the delivery made before"
        );
        assert_eq!(
            answers[2].1, answers[0].1,
            "{backend:?}: one delivery per call"
        );
        assert_ne!(answers[3].1, answers[0].1);
        for (call, id) in [("call-new", &answers[0].1), ("call-two", &answers[3].1)] {
            let stored = notification
                .get_crm_delivery(pb::GetCrmDeliveryRequest {
                    delivery_id: String::new(),
                    call_id: call.into(),
                })
                .await
                .expect("recorded")
                .into_inner()
                .delivery
                .unwrap_or_default();
            assert_eq!(&stored.id, id, "{backend:?}: {call}");
        }

        shutdown.cancel();
        let _ = server.await;
    }
}
