//! Human control held in the context database: two replicas (two `Memory` instances, each with
//! its own connection pool) taking one conversation over at once agree on one change.

use callmesh_context::control::ControlChange;
use callmesh_context::memory::Memory;
use callmesh_migration_context::{Migrator, MigratorTrait};
use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_testkit::{TestDatabase, backends};

/// A replica's view of the database, migrated by whichever comes first.
async fn replica(database: &TestDatabase) -> Memory {
    let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
    let connection = db::connect(&url).await.expect("connect");
    Migrator::up(&connection, None).await.expect("migrate");
    Memory::new(connection)
}

fn change(enabled: bool, operator: &str) -> ControlChange {
    ControlChange {
        organization_id: "org-1".into(),
        lead_id: "lead-1".into(),
        enabled,
        operator: operator.into(),
        note: String::new(),
    }
}

#[tokio::test]
async fn two_replicas_taking_one_conversation_over_report_one_change() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let (a, b) = (replica(&database).await, replica(&database).await);

        let takeovers = (0..10).map(|i| {
            let memory = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let operator = format!("operator-{i}");
                memory
                    .set_human_control(&format!("takeover:{i}"), change(true, &operator))
                    .await
                    .expect("no replica fails on the other's row")
            })
        });
        let mut changed = Vec::new();
        for takeover in takeovers {
            let (state, did_change) = takeover.await.expect("task");
            assert!(state.enabled);
            if did_change {
                changed.push(state.operator);
            }
        }
        assert_eq!(changed.len(), 1, "{backend:?}: {changed:?}");
        // Both replicas read the same state; the winner's operator holds it.
        for memory in [&a, &b] {
            let state = memory.human_control("lead-1").await.expect("state");
            assert!(state.enabled);
            assert_eq!(state.operator, changed[0]);
        }
        // Handing back is one change too.
        let (state, did_change) = b
            .set_human_control("release", change(false, "operator-x"))
            .await
            .expect("release");
        assert!(!state.enabled && did_change);
        let (_, again) = a
            .set_human_control("release-again", change(false, "operator-y"))
            .await
            .expect("release again");
        assert!(!again);
    }
}
