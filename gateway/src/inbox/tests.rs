//! Claims across dispatchers: any may take any item, none twice; a dead one's items come back
//! after the lease; a result counts only while its claim stands.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;

use callmesh_migration_gateway::Migrator;
use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_runtime::{Component, Durability};
use callmesh_testkit::{TestDatabase, backends};

use super::*;

async fn inbox(database: &TestDatabase) -> Inbox {
    let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
    let connection = db::connect(&url).await.expect("connect");
    db::migrate::<Migrator>(&connection, Component::Gateway)
        .await
        .expect("migrate");
    Inbox::start(connection, Durability::for_database(&url))
}

fn item(n: usize) -> NewItem {
    NewItem {
        provider: "elevenlabs",
        event_type: "post_call_transcription".into(),
        idempotency_key: format!("post_call_transcription:conv_{n}"),
        raw_body: b"{}".to_vec(),
        state: InboxState::Pending,
        not_before: Utc::now(),
    }
}

#[tokio::test]
async fn two_dispatchers_racing_for_items_never_take_the_same_one() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        // Two replicas: two pools on one database.
        let (first, second) = (inbox(&database).await, inbox(&database).await);
        for n in 0..300 {
            first.admit(item(n)).await.expect("admitted");
        }
        let lease = Duration::from_secs(30);
        let racer = |inbox: Inbox, owner: &'static str| {
            tokio::spawn(async move {
                let mut taken = Vec::new();
                loop {
                    let claimed = inbox.claim_due(owner, 7, lease).await.expect("claim");
                    if claimed.is_empty() {
                        return taken;
                    }
                    taken.extend(claimed.into_iter().map(|row| {
                        assert_eq!(row.claimed_by, owner);
                        assert_eq!(row.attempts, 1);
                        row.id
                    }));
                }
            })
        };
        let (a, b) = (racer(first.clone(), "a"), racer(second.clone(), "b"));
        let (a, b) = (a.await.expect("a"), b.await.expect("b"));
        let a_ids: HashSet<i64> = a.iter().copied().collect();
        let b_ids: HashSet<i64> = b.iter().copied().collect();
        assert_eq!(a.len(), a_ids.len(), "{backend:?}: a took an item twice");
        assert!(a_ids.is_disjoint(&b_ids), "{backend:?}: both took an item");
        assert_eq!(
            a_ids.len() + b_ids.len(),
            300,
            "{backend:?}: items left behind"
        );
    }
}

#[tokio::test]
async fn a_lapsed_claim_is_taken_over_and_its_late_result_does_not_count() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let inbox = inbox(&database).await;
        inbox.admit(item(1)).await.expect("admitted");
        let short = Duration::from_millis(300);
        let first = inbox.claim_due("a", 10, short).await.expect("claim");
        assert_eq!(first.len(), 1);
        assert!(
            inbox
                .claim_due("b", 10, short)
                .await
                .expect("claim")
                .is_empty(),
            "{backend:?}: a held item was claimed again"
        );

        // "a" stops renewing (it hangs, or died); after the lease "b" takes the item over.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let taken = inbox.claim_due("b", 10, short).await.expect("claim");
        assert_eq!(
            taken.len(),
            1,
            "{backend:?}: the lapsed item was not taken over"
        );
        assert_eq!(taken[0].attempts, 2);

        // "a" finishes late: its result must not overwrite the holder's.
        let stale = Claim {
            owner: "a".into(),
            attempt: 1,
        };
        let counted = inbox
            .settle(taken[0].id, &stale, InboxState::Done, "", Utc::now())
            .await
            .expect("settle");
        assert!(!counted, "{backend:?}: a lapsed claim settled the item");
        assert_eq!(
            inbox
                .get(taken[0].id)
                .await
                .expect("get")
                .expect("item")
                .state,
            "processing"
        );

        // The holder renews past the original lease, then settles.
        let holder = Claim {
            owner: "b".into(),
            attempt: 2,
        };
        assert_eq!(
            inbox
                .renew("b", &[taken[0].id], Duration::from_secs(30))
                .await
                .expect("renew"),
            1
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            inbox
                .claim_due("c", 10, short)
                .await
                .expect("claim")
                .is_empty(),
            "{backend:?}: a renewed item was taken over"
        );
        assert!(
            inbox
                .settle(taken[0].id, &holder, InboxState::Done, "", Utc::now())
                .await
                .expect("settle")
        );
        let done = inbox.get(taken[0].id).await.expect("get").expect("item");
        assert_eq!(done.state, "done");
        assert_eq!(done.attempts, 2);
    }
}

#[tokio::test]
async fn lists_give_body_sizes_and_pruning_keeps_dead_items() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let inbox = inbox(&database).await;
        for n in 0..3 {
            inbox.admit(item(n)).await.expect("admitted");
        }
        let backlog = inbox.backlog().await.expect("backlog");
        assert_eq!(
            backlog.by_state,
            vec![(InboxState::Pending, 3)],
            "{backend:?}"
        );
        assert!(backlog.oldest_waiting_received_at.is_some());
        let claimed = inbox
            .claim_due("a", 10, Duration::from_secs(30))
            .await
            .expect("claim");
        let states = [InboxState::Done, InboxState::Ignored, InboxState::Dead];
        for (row, state) in claimed.iter().zip(states) {
            let claim = Claim {
                owner: "a".into(),
                attempt: row.attempts,
            };
            let settled_at = Utc::now() - chrono::Duration::days(10);
            assert!(
                inbox
                    .settle(row.id, &claim, state, "", settled_at)
                    .await
                    .expect("settle")
            );
        }
        let listed = inbox.list(None, 10).await.expect("list");
        assert!(listed.iter().all(|item| item.body_bytes == 2), "{listed:?}");
        let pruned = inbox
            .prune(Utc::now() - chrono::Duration::days(7))
            .await
            .expect("prune");
        assert_eq!(pruned, 2, "{backend:?}: done and ignored go");
        let left = inbox.list(None, 10).await.expect("list");
        assert_eq!(left.len(), 1);
        assert_eq!(
            left[0].state, "dead",
            "{backend:?}: dead items wait for an operator"
        );
    }
}

#[tokio::test]
async fn a_key_delivered_many_times_at_once_is_accepted_once() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let inbox = inbox(&database).await;
        let deliveries: Vec<_> = (0..50)
            .map(|n| {
                let inbox = inbox.clone();
                // Ten deliveries of each of five keys, all in flight together.
                tokio::spawn(async move { inbox.admit(item(n % 5)).await })
            })
            .collect();
        let mut accepted = 0;
        for delivery in deliveries {
            if delivery.await.expect("joined").expect("admitted") == Admission::Accepted {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 5, "{backend:?}");
        assert_eq!(inbox.list(None, 100).await.expect("list").len(), 5);
        // And again later, one at a time: all duplicates.
        for n in 0..5 {
            assert_eq!(
                inbox.admit(item(n)).await.expect("admitted"),
                Admission::Duplicate
            );
        }
    }
}

/// A dispatcher over `inbox` running `flows` (two attempts, quick retries), polling every
/// `poll`, gathering for `window`, `concurrency` flows at a time; cancel the token to stop it.
fn dispatching<F: dispatcher::RunFlow>(
    inbox: &Inbox,
    flows: std::sync::Arc<F>,
    poll: Duration,
    window: Duration,
    concurrency: usize,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let config = crate::config::InboxConfig {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        lease: Duration::from_secs(5),
        poll_interval: poll,
        batch_window: window,
        concurrency,
        retention: Duration::from_secs(86_400),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(dispatcher::run(
        inbox.clone(),
        flows,
        config,
        shutdown.clone(),
    ));
    (shutdown, running)
}

/// Panics on conversation 0, succeeds on the rest.
struct Panicky;

impl dispatcher::RunFlow for Panicky {
    async fn run_flow(
        &self,
        row: &InboxRow,
    ) -> Result<crate::flows::Handled, crate::flows::FlowError> {
        if row.idempotency_key.ends_with("conv_0") {
            panic!("a bug in a flow");
        }
        Ok(crate::flows::Handled::Done)
    }
}

#[tokio::test]
async fn a_panicking_flow_is_retried_then_dead_lettered_and_the_rest_still_run() {
    let database = TestDatabase::create(callmesh_testkit::Backend::Sqlite).await;
    let inbox = inbox(&database).await;
    for n in 0..3 {
        inbox.admit(item(n)).await.expect("admitted");
    }
    let (shutdown, running) = dispatching(
        &inbox,
        std::sync::Arc::new(Panicky),
        Duration::from_millis(20),
        Duration::ZERO,
        4,
    );
    let settled = callmesh_testkit::wait_until(Duration::from_secs(10), || async {
        let dead = inbox.list(Some(InboxState::Dead), 10).await.expect("list");
        let done = inbox.list(Some(InboxState::Done), 10).await.expect("list");
        dead.len() == 1 && done.len() == 2
    })
    .await;
    assert!(settled, "{:?}", inbox.list(None, 10).await);
    let dead = inbox.list(Some(InboxState::Dead), 10).await.expect("list");
    assert_eq!(dead[0].attempts, 2, "retried once before giving up");
    assert!(
        dead[0].last_error.contains("panicked") && dead[0].last_error.contains("a bug in a flow"),
        "{:?}",
        dead[0].last_error
    );
    assert!(!running.is_finished(), "the dispatcher survived the panic");
    shutdown.cancel();
    running.await.expect("stopped cleanly");
}

/// Records when each item's flow started.
#[derive(Default)]
struct Started(std::sync::Mutex<Vec<(String, std::time::Instant)>>);

impl dispatcher::RunFlow for Started {
    async fn run_flow(
        &self,
        row: &InboxRow,
    ) -> Result<crate::flows::Handled, crate::flows::FlowError> {
        if let Ok(mut started) = self.0.lock() {
            started.push((row.idempotency_key.clone(), std::time::Instant::now()));
        }
        Ok(crate::flows::Handled::Done)
    }
}

#[tokio::test]
async fn an_idle_dispatcher_gathers_the_webhooks_of_its_window_and_runs_them_together() {
    let database = TestDatabase::create(callmesh_testkit::Backend::Sqlite).await;
    let inbox = inbox(&database).await;
    let window = Duration::from_millis(400);
    let flows = std::sync::Arc::new(Started::default());
    let (shutdown, running) =
        dispatching(&inbox, flows.clone(), Duration::from_secs(30), window, 4);
    // The dispatcher finds nothing and waits.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let first_acked = std::time::Instant::now();
    inbox.admit(item(0)).await.expect("admitted");
    tokio::time::sleep(Duration::from_millis(100)).await;
    inbox.admit(item(1)).await.expect("admitted");
    let second_acked = std::time::Instant::now();

    let both = callmesh_testkit::wait_until(Duration::from_secs(10), || async {
        inbox
            .list(Some(InboxState::Done), 10)
            .await
            .expect("list")
            .len()
            == 2
    })
    .await;
    assert!(both, "{:?}", inbox.list(None, 10).await);
    let started = flows.0.lock().expect("lock").clone();
    let first = started
        .iter()
        .find(|(key, _)| key.ends_with("conv_0"))
        .map(|(_, at)| *at)
        .expect("the first webhook's flow ran");
    // The first webhook waited for the second instead of going through the services alone...
    assert!(
        first >= second_acked,
        "the first flow started {:?} before the second webhook was acknowledged",
        second_acked.duration_since(first)
    );
    // ...for about the window, not for a poll.
    let waited = first.duration_since(first_acked);
    assert!(
        waited >= window && waited < window + Duration::from_secs(5),
        "{waited:?}"
    );
    shutdown.cancel();
    running.await.expect("stopped cleanly");
}

/// Records the claim each item's flow ran under (a claim stamps its items with its time).
#[derive(Default)]
struct Claims(std::sync::Mutex<Vec<chrono::DateTime<Utc>>>);

impl dispatcher::RunFlow for Claims {
    async fn run_flow(
        &self,
        row: &InboxRow,
    ) -> Result<crate::flows::Handled, crate::flows::FlowError> {
        if let Ok(mut claims) = self.0.lock() {
            claims.push(row.updated_at);
        }
        Ok(crate::flows::Handled::Done)
    }
}

#[tokio::test]
async fn a_busy_dispatcher_that_has_caught_up_gathers_a_window_before_claiming_again() {
    let database = TestDatabase::create(callmesh_testkit::Backend::Sqlite).await;
    let inbox = inbox(&database).await;
    // A steady stream: one item coming due every 10 ms for a second.
    let first_due = Utc::now() + chrono::Duration::milliseconds(300);
    let items = (0..100).map(|n| {
        let mut item = item(n);
        item.not_before = first_due + chrono::Duration::milliseconds(10 * n as i64);
        item
    });
    for admitted in futures_util::future::join_all(items.map(|item| inbox.admit(item))).await {
        admitted.expect("admitted");
    }
    let window = Duration::from_millis(200);
    let flows = std::sync::Arc::new(Claims::default());
    let (shutdown, running) =
        dispatching(&inbox, flows.clone(), Duration::from_millis(20), window, 64);
    let all = callmesh_testkit::wait_until(Duration::from_secs(20), || async {
        inbox
            .list(Some(InboxState::Done), 200)
            .await
            .expect("list")
            .len()
            == 100
    })
    .await;
    assert!(all, "{:?}", inbox.backlog().await);
    let claims: HashSet<_> = flows.0.lock().expect("lock").iter().copied().collect();
    // Claimed a window's items at a time (a second of them: about five windows), not each as
    // it came due (one claim after another, or one each poll: dozens).
    assert!(
        claims.len() <= 8,
        "{} claims for a second's stream with a {window:?} window",
        claims.len()
    );
    shutdown.cancel();
    running.await.expect("stopped cleanly");
}

/// Holds every flow until released.
#[derive(Default)]
struct Holding {
    started: std::sync::atomic::AtomicUsize,
    release: tokio::sync::Notify,
}

impl dispatcher::RunFlow for Holding {
    async fn run_flow(
        &self,
        _row: &InboxRow,
    ) -> Result<crate::flows::Handled, crate::flows::FlowError> {
        let released = self.release.notified();
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        released.await;
        Ok(crate::flows::Handled::Done)
    }
}

#[tokio::test]
async fn a_lease_is_renewed_as_it_nears_its_end_not_as_soon_as_it_is_claimed() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let inbox = inbox(&database).await;
        // An 8 s lease: the dispatcher looks at its leases 2, 4, 6… s after it starts.
        let config = crate::config::InboxConfig {
            max_attempts: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            lease: Duration::from_secs(8),
            poll_interval: Duration::from_millis(20),
            batch_window: Duration::ZERO,
            concurrency: 4,
            retention: Duration::from_secs(86_400),
        };
        let started = std::time::Instant::now();
        let flows = std::sync::Arc::new(Holding::default());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let running = tokio::spawn(dispatcher::run(
            inbox.clone(),
            flows.clone(),
            config,
            shutdown.clone(),
        ));
        // Claimed at about 1.6 s: at the look at 2 s its lease started under half a look before.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        inbox.admit(item(1)).await.expect("admitted");
        let held = callmesh_testkit::wait_until(Duration::from_secs(5), || async {
            flows.started.load(std::sync::atomic::Ordering::SeqCst) == 1
        })
        .await;
        assert!(held, "{backend:?}: the flow never started");
        let claimed = inbox.list(None, 1).await.expect("list").remove(0);
        assert_eq!(claimed.state, "processing", "{backend:?}");

        // After the look at 2 s: the fresh lease was left as claimed.
        tokio::time::sleep(Duration::from_secs(3).saturating_sub(started.elapsed())).await;
        let looked_at = inbox.get(claimed.id).await.expect("get").expect("item");
        assert_eq!(
            looked_at.next_attempt_at, claimed.next_attempt_at,
            "{backend:?}: a lease claimed moments before was renewed"
        );

        // At the look at 4 s its lease started over half a look (1 s) before: renewed.
        let renewed = callmesh_testkit::wait_until(Duration::from_secs(6), || async {
            let item = inbox.get(claimed.id).await.expect("get").expect("item");
            item.next_attempt_at > claimed.next_attempt_at
        })
        .await;
        assert!(
            renewed,
            "{backend:?}: a long flow's lease was never renewed"
        );
        flows.release.notify_waiters();
        let done = callmesh_testkit::wait_until(Duration::from_secs(10), || async {
            inbox
                .get(claimed.id)
                .await
                .expect("get")
                .expect("item")
                .state
                == "done"
        })
        .await;
        assert!(done, "{backend:?}: {:?}", inbox.get(claimed.id).await);
        let item = inbox.get(claimed.id).await.expect("get").expect("item");
        assert_eq!(item.attempts, 1, "{backend:?}: held throughout, run once");
        shutdown.cancel();
        running.await.expect("stopped cleanly");
    }
}

#[tokio::test]
async fn outcomes_settled_together_each_count_only_with_their_claim() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let inbox = inbox(&database).await;
        for n in 0..5 {
            inbox.admit(item(n)).await.expect("admitted");
        }
        let claimed = inbox
            .claim_due("a", 10, Duration::from_secs(30))
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 5);
        let held = |row: &InboxRow| Claim {
            owner: "a".into(),
            attempt: row.attempts,
        };
        let stale = Claim {
            owner: "a".into(),
            attempt: 7,
        };
        let finished_at = Utc::now() - chrono::Duration::seconds(30);
        let retry_at = Utc::now() + chrono::Duration::hours(1);
        let outcomes = futures_util::future::join_all([
            inbox.settle(
                claimed[0].id,
                &held(&claimed[0]),
                InboxState::Done,
                "",
                finished_at,
            ),
            inbox.settle(claimed[1].id, &stale, InboxState::Done, "", finished_at),
            inbox.settle(
                claimed[2].id,
                &held(&claimed[2]),
                InboxState::Pending,
                "CRM down",
                retry_at,
            ),
            inbox.settle(
                claimed[3].id,
                &held(&claimed[3]),
                InboxState::Done,
                "",
                Utc::now(),
            ),
            inbox.settle(
                claimed[4].id,
                &held(&claimed[4]),
                InboxState::Ignored,
                "not ours",
                finished_at,
            ),
        ])
        .await;
        let outcomes: Vec<bool> = outcomes
            .into_iter()
            .map(|outcome| outcome.expect("settle"))
            .collect();
        assert_eq!(outcomes, [true, false, true, true, true], "{backend:?}");
        let mut items = Vec::new();
        for row in &claimed {
            items.push(inbox.get(row.id).await.expect("get").expect("item"));
        }
        let states: Vec<&str> = items.iter().map(|item| item.state.as_str()).collect();
        assert_eq!(
            states,
            ["done", "processing", "pending", "done", "ignored"],
            "{backend:?}"
        );
        assert_eq!(items[2].last_error, "CRM down");
        assert_eq!(items[4].last_error, "not ours");
        // Each keeps its own time: when it finished, or when it is due again.
        let close = |a: DateTime<Utc>, b: DateTime<Utc>| (a - b).num_milliseconds().abs() < 5;
        assert!(close(items[0].next_attempt_at, finished_at), "{backend:?}");
        assert!(close(items[2].next_attempt_at, retry_at), "{backend:?}");
        assert!(!close(items[3].next_attempt_at, finished_at), "{backend:?}");
    }
}

/// However many finished items are kept, a claim reads only the waiting ones: through the
/// partial index on PostgreSQL (which otherwise walked the primary key past every finished
/// item), through the (state, next attempt) index on SQLite.
#[tokio::test]
async fn a_claim_reads_the_waiting_items_not_every_finished_one() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let inbox = inbox(&database).await;
        for n in 0..2_000 {
            inbox.admit(item(n)).await.expect("admitted");
        }
        let db = &inbox.db;
        let kind = db.get_database_backend();
        db.execute_unprepared("UPDATE inbox_items SET state = 'done'")
            .await
            .expect("finish them");
        for n in 2_000..3_000 {
            inbox.admit(item(n)).await.expect("admitted");
        }

        let request = writer::ClaimRequest {
            owner: "a".into(),
            limit: 64,
            lease: Duration::from_secs(30),
        };
        let claim = kind.build(&writer::claim_statement(kind, &request, Utc::now()));
        let txn = db.begin().await.expect("begin");
        let (explain, wanted) = match kind {
            DbBackend::Postgres => {
                txn.execute_unprepared("ANALYZE inbox_items")
                    .await
                    .expect("analyze");
                ("EXPLAIN ", "idx_inbox_items_waiting")
            }
            _ => ("EXPLAIN QUERY PLAN ", "idx_inbox_items_due"),
        };
        let plan: Vec<String> = txn
            .query_all(Statement::from_sql_and_values(
                kind,
                format!("{explain}{}", claim.sql),
                claim.values.map(|values| values.0).unwrap_or_default(),
            ))
            .await
            .expect("explain")
            .iter()
            .map(|row| {
                row.try_get_by::<String, _>("detail")
                    .or_else(|_| row.try_get_by::<String, _>("QUERY PLAN"))
                    .unwrap_or_default()
            })
            .collect();
        txn.rollback().await.expect("rollback");
        assert!(
            plan.iter().any(|line| line.contains(wanted)),
            "{backend:?}: the claim does not read through {wanted}: {plan:#?}"
        );

        let claimed = inbox
            .claim_due("a", 64, Duration::from_secs(30))
            .await
            .expect("claim");
        assert_eq!(
            claimed.first().map(|row| row.idempotency_key.as_str()),
            Some("post_call_transcription:conv_2000"),
            "{backend:?}: the oldest waiting item first"
        );
        assert_eq!(claimed.len(), 64, "{backend:?}");
    }
}

/// On PostgreSQL new webhooks commit apart from the dispatcher's outcomes: one outcome held up
/// by a lock (another replica's long transaction, say) does not hold up the acknowledgement
/// of webhooks that reached the writer together with it.
#[tokio::test]
async fn new_webhooks_are_accepted_while_an_outcome_waits_for_a_lock() {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    for backend in backends().await {
        if backend != callmesh_testkit::Backend::Postgres {
            continue;
        }
        let database = TestDatabase::create(backend).await;
        let inbox = inbox(&database).await;
        inbox.admit(item(0)).await.expect("admitted");
        let claimed = inbox
            .claim_due("a", 1, Duration::from_secs(30))
            .await
            .expect("claim");
        let row = claimed.first().expect("claimed");
        let other = sea_orm::Database::connect(database.url())
            .await
            .expect("connect");
        let holder = other.begin().await.expect("begin");
        holder
            .execute(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT id FROM inbox_items WHERE id = $1 FOR UPDATE",
                [row.id.into()],
            ))
            .await
            .expect("lock the claimed item");
        // The outcome and twenty new webhooks reach the writer together (this test's runtime
        // has one thread: none of them runs before all are queued).
        let claim = Claim {
            owner: "a".into(),
            attempt: row.attempts,
        };
        let settling = {
            let inbox = inbox.clone();
            let id = row.id;
            tokio::spawn(async move {
                inbox
                    .settle(id, &claim, InboxState::Done, "", Utc::now())
                    .await
            })
        };
        let admitting: Vec<_> = (1..=20)
            .map(|n| {
                let inbox = inbox.clone();
                tokio::spawn(async move { inbox.admit(item(n)).await })
            })
            .collect();
        let accepted = tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::future::join_all(admitting),
        )
        .await
        .expect("new webhooks accepted while the outcome waits");
        for admission in accepted {
            assert_eq!(
                admission.expect("joined").expect("admitted"),
                Admission::Accepted
            );
        }
        assert!(!settling.is_finished(), "the outcome waits for the lock");
        holder.rollback().await.expect("release");
        assert!(
            settling.await.expect("joined").expect("settled"),
            "the outcome counts once the lock is released"
        );
        let item = inbox.get(row.id).await.expect("get").expect("item");
        assert_eq!(item.state, "done");
    }
}
