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
