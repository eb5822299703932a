//! What a dashboard replays when it opens: an organization's newest events, newest first, on
//! SQLite and PostgreSQL.

use callmesh_notification::log::{EventFilter, EventKind, EventLog, NewEvent};
use callmesh_runtime::Component;
use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_testkit::{TestDatabase, backends};

#[tokio::test]
async fn the_newest_events_of_one_organization_come_newest_first() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
        let connection = db::connect(&url).await.expect("connect");
        db::migrate::<callmesh_migration_notification::Migrator>(
            &connection,
            Component::Notification,
        )
        .await
        .expect("migrate");
        let log = EventLog::new(connection);
        for n in 0..30 {
            let organization_id = if n % 3 == 0 { "org_b" } else { "org_a" };
            log.publish(
                &format!("key_{n}"),
                NewEvent {
                    organization_id: organization_id.into(),
                    lead_id: format!("lead_{n}"),
                    kind: EventKind::LeadUpdated,
                    payload_json: format!("{{\"n\":{n}}}"),
                    occurred_at: chrono::Utc::now(),
                },
            )
            .await
            .expect("publish");
        }
        let filter = EventFilter {
            organization_id: Some("org_a".into()),
            ..Default::default()
        };
        let newest = log.list_newest(&filter, 0, None, 5).await.expect("newest");
        let leads: Vec<_> = newest.iter().map(|e| e.lead_id.as_str()).collect();
        assert_eq!(
            leads,
            ["lead_29", "lead_28", "lead_26", "lead_25", "lead_23"],
            "{backend:?}"
        );
        // Replaying from just before the oldest of them gives the same events in log order.
        let oldest = newest.last().map(|e| e.id).expect("some");
        let replayed = log.list(&filter, oldest - 1, 50).await.expect("replay");
        assert_eq!(replayed.len(), 5);
        assert_eq!(replayed.first().map(|e| e.id), Some(oldest));
    }
}
