//! Two notification replicas on one database: a subscriber of either sees every event, in id
//! order, whichever replica published it.

use std::time::Duration;

use callmesh_notification::log::{EventKind, EventLog, NewEvent};
use callmesh_runtime::Component;
use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_testkit::{TestDatabase, backends};

async fn replica(url: &DatabaseUrl) -> EventLog {
    let connection = db::connect(url).await.expect("connect");
    db::migrate::<callmesh_migration_notification::Migrator>(&connection, Component::Notification)
        .await
        .expect("migrate");
    EventLog::new(connection)
}

fn event(n: usize) -> NewEvent {
    NewEvent {
        organization_id: "org_a".into(),
        lead_id: format!("lead_{n}"),
        kind: EventKind::LeadUpdated,
        payload_json: format!("{{\"n\":{n}}}"),
        occurred_at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn a_subscriber_of_one_replica_sees_what_another_published_in_order() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
        let (first, second) = (replica(&url).await, replica(&url).await);
        // Both replicas are serving before anything is published: "live" starts there.
        first.tailing().await;
        second.tailing().await;
        let mut watching_second = second.live();
        let mut watching_first = first.live();

        let publishers: Vec<_> = (0..40)
            .map(|n| {
                let log = if n % 2 == 0 {
                    first.clone()
                } else {
                    second.clone()
                };
                tokio::spawn(async move { log.publish(&format!("key_{n}"), event(n)).await })
            })
            .collect();
        for publisher in publishers {
            let (_, created) = publisher.await.expect("joined").expect("published");
            assert!(created);
        }
        // A repeat is answered with the logged event and not announced again.
        let (repeat, created) = first.publish("key_1", event(1)).await.expect("repeat");
        assert!(!created, "{backend:?}");
        assert_eq!(repeat.lead_id, "lead_1");

        for (name, receiver) in [
            ("first", &mut watching_first),
            ("second", &mut watching_second),
        ] {
            let mut ids = Vec::new();
            while ids.len() < 40 {
                let event = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
                    .await
                    .unwrap_or_else(|_| panic!("{backend:?}: {name} saw only {ids:?}"))
                    .expect("live event");
                ids.push(event.id);
            }
            let mut sorted = ids.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(
                ids, sorted,
                "{backend:?}: {name} got events out of order or twice"
            );
            assert!(
                tokio::time::timeout(Duration::from_millis(1500), receiver.recv())
                    .await
                    .is_err(),
                "{backend:?}: {name} got more than the 40 new events"
            );
        }
    }
}

#[tokio::test]
async fn two_senders_deliver_each_crm_record_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use callmesh_notification::crm::CrmForwarder;

    for backend in backends().await {
        let posts = Arc::new(AtomicUsize::new(0));
        let counted = posts.clone();
        let crm = axum::Router::new().route(
            "/crm",
            axum::routing::post(move || {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    "ok"
                }
            }),
        );
        let config = crm_on_loopback(crm).await;
        let database = TestDatabase::create(backend).await;
        let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
        let shutdown = tokio_util::sync::CancellationToken::new();
        let mut senders = Vec::new();
        for _ in 0..2 {
            let log = replica(&url).await;
            let connection = db::connect(&url).await.expect("connect");
            senders.push(CrmForwarder::new(connection, config.clone(), log));
        }
        const CALLS: usize = 60;
        for n in 0..CALLS {
            let forward = |sender: &CrmForwarder| {
                let sender = sender.clone();
                async move { sender.forward(crm_request(n)).await.expect("recorded") }
            };
            let (answered, created) = forward(&senders[n % 2]).await;
            assert!(created);
            // The answer is what is stored, and asking again answers it again.
            let stored = senders[0].by_call(&format!("call_{n}")).await;
            assert_eq!(stored.as_ref().ok(), Some(&answered), "{backend:?}");
            let (again, created) = forward(&senders[(n + 1) % 2]).await;
            assert!(!created);
            assert_eq!(again, answered, "{backend:?}");
        }
        for sender in &senders {
            tokio::spawn(sender.clone().run(shutdown.clone()));
        }
        let delivered = callmesh_testkit::wait_until(Duration::from_secs(20), || async {
            let mut delivered = 0;
            for n in 0..CALLS {
                if senders[0]
                    .by_call(&format!("call_{n}"))
                    .await
                    .is_ok_and(|d| d.state == "delivered")
                {
                    delivered += 1;
                }
            }
            delivered == CALLS
        })
        .await;
        assert!(delivered, "{backend:?}: not every record was delivered");
        // Let a double send, if any, land before counting.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            posts.load(Ordering::SeqCst),
            CALLS,
            "{backend:?}: a record was sent twice"
        );
        for n in 0..CALLS {
            let delivery = senders[1]
                .by_call(&format!("call_{n}"))
                .await
                .expect("delivery");
            assert_eq!(delivery.attempts.len(), 1, "{backend:?}: {delivery:?}");
        }
        shutdown.cancel();
    }
}

/// Serves `crm` (its route `/crm`) on loopback; the senders' configuration for it, with short
/// retries.
async fn crm_on_loopback(crm: axum::Router) -> callmesh_notification::crm::CrmConfig {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let crm_url = format!("http://{}/crm", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, crm).await });
    callmesh_notification::crm::CrmConfig {
        default_url: Some(crm_url),
        max_attempts: 3,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
    }
}

/// A record for call `n`.
fn crm_request(n: usize) -> callmesh_notification::crm::ForwardRequest {
    callmesh_notification::crm::ForwardRequest {
        key: format!("crm:{n}"),
        organization_id: "org_a".into(),
        lead_id: "lead_a".into(),
        call_id: format!("call_{n}"),
        webhook_url: None,
        record: callmesh_notification::crm::CrmRecord {
            subject: format!("Inbound AI call {n}"),
            to: "+14155550100".into(),
            name: "Dana".into(),
            summary: "Asked for a quote.".into(),
            status: "completed".into(),
            duration: 60,
        },
    }
}

#[tokio::test]
async fn a_sender_that_stops_gives_back_the_records_it_had_not_sent_yet() {
    use std::sync::{Arc, Mutex};

    use callmesh_notification::crm::CrmForwarder;
    use tokio::sync::Semaphore;
    use tokio_util::sync::CancellationToken;

    for backend in backends().await {
        // A CRM that holds the first call's POST until the test lets it through.
        let gate = Arc::new(Semaphore::new(0));
        let posts = Arc::new(Mutex::new(Vec::<String>::new()));
        let crm = {
            let (gate, posts) = (gate.clone(), posts.clone());
            axum::Router::new().route(
                "/crm",
                axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                    let (gate, posts) = (gate.clone(), posts.clone());
                    async move {
                        let subject = body["subject"].as_str().unwrap_or_default().to_owned();
                        let first = subject.ends_with(" 0");
                        posts.lock().expect("lock").push(subject);
                        if first {
                            let _ = gate.acquire().await.map(|permit| permit.forget());
                        }
                        "ok"
                    }
                }),
            )
        };
        let config = crm_on_loopback(crm).await;
        let database = TestDatabase::create(backend).await;
        let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
        let sender = |log| async {
            let connection = db::connect(&url).await.expect("connect");
            CrmForwarder::new(connection, config.clone(), log)
        };
        let a = sender(replica(&url).await).await;
        let b = sender(replica(&url).await).await;

        // Sender A is running and sending call 0, which the CRM holds; calls 1–3 are recorded
        // by A meanwhile. Then A is stopped.
        let stop_a = CancellationToken::new();
        let running_a = tokio::spawn(a.clone().run(stop_a.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        a.forward(crm_request(0)).await.expect("recorded");
        let sending = callmesh_testkit::wait_until(Duration::from_secs(5), || async {
            !posts.lock().expect("lock").is_empty()
        })
        .await;
        assert!(sending, "{backend:?}: call 0 is being sent");
        for n in 1..=3 {
            let (answered, created) = a.forward(crm_request(n)).await.expect("recorded");
            assert!(created);
            // The answer is what is stored.
            let stored = b.by_call(&format!("call_{n}")).await;
            assert_eq!(stored.as_ref().ok(), Some(&answered), "{backend:?}");
        }
        stop_a.cancel();
        gate.add_permits(1);
        tokio::time::timeout(Duration::from_secs(10), running_a)
            .await
            .expect("sender A stops once its send is done")
            .expect("sender A");

        // Sender B takes calls 1–3 at once, not a claim's lease (a minute) later, and counts
        // the attempt it makes as the first.
        let stop_b = CancellationToken::new();
        tokio::spawn(b.clone().run(stop_b.clone()));
        let delivered = callmesh_testkit::wait_until(Duration::from_secs(10), || async {
            let mut delivered = 0;
            for n in 0..=3 {
                if b.by_call(&format!("call_{n}"))
                    .await
                    .is_ok_and(|d| d.state == "delivered")
                {
                    delivered += 1;
                }
            }
            delivered == 4
        })
        .await;
        assert!(delivered, "{backend:?}: not every record was delivered");
        for n in 0..=3 {
            let delivery = b.by_call(&format!("call_{n}")).await.expect("delivery");
            let attempts: Vec<u32> = delivery.attempts.iter().map(|a| a.attempt).collect();
            assert_eq!(attempts, [1], "{backend:?}: call {n}: {delivery:?}");
        }
        let mut sent = posts.lock().expect("lock").clone();
        sent.sort();
        assert_eq!(
            sent,
            (0..=3)
                .map(|n| format!("Inbound AI call {n}"))
                .collect::<Vec<_>>(),
            "{backend:?}: each record sent once"
        );
        stop_b.cancel();
    }
}
