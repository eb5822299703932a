//! Limits shared through a database: two instances (as two replicas would hold them, each with
//! its own connection pool) on one database, on SQLite and PostgreSQL.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;

use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_runtime::limits::{Cooldown, RateLimiter, Verdict};
use callmesh_testkit::{TestDatabase, backends};

/// The tables the gateway's migrations create.
const RATES: &str = "gateway_rate_counters";
const COOLDOWNS: &str = "gateway_cooldowns";

/// Two connections to one fresh database with the limit tables in it.
async fn two_replicas(database: &TestDatabase) -> (DatabaseConnection, DatabaseConnection) {
    let a = connect(database).await;
    callmesh_migration_gateway::Migrator::up(&a, None)
        .await
        .expect("migrate");
    (a, connect(database).await)
}

async fn connect(database: &TestDatabase) -> DatabaseConnection {
    let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
    db::connect(&url).await.expect("connect")
}

#[tokio::test]
async fn two_replicas_racing_on_one_key_let_through_exactly_the_limit() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let (a, b) = two_replicas(&database).await;
        let window = Duration::from_secs(3600);
        let limiters = [
            RateLimiter::new(a, RATES, "initiation", 10, window),
            RateLimiter::new(b, RATES, "initiation", 10, window),
        ];
        // One instant for every hit, so no window boundary falls inside the race.
        let now = Utc::now();
        let hits = (0..40).map(|i| {
            let limiter = limiters[i % 2].clone();
            tokio::spawn(async move { limiter.hit_at("+12125550100", now).await.expect("hit") })
        });
        let mut allowed = 0;
        let mut counts = HashSet::new();
        for hit in hits {
            let verdict = hit.await.expect("task");
            let (Verdict::Allowed { used } | Verdict::Limited { used }) = verdict;
            allowed += usize::from(verdict.is_allowed());
            counts.insert(used);
        }
        assert_eq!(allowed, 10, "{backend:?}");
        assert_eq!(counts.len(), 40, "{backend:?}: every hit counted once");
        // Another key has a limit of its own.
        assert!(
            limiters[1]
                .hit_at("+12125550199", now)
                .await
                .expect("hit")
                .is_allowed()
        );
    }
}

#[tokio::test]
async fn the_window_slides_so_a_boundary_burst_cannot_pass_twice_the_limit() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let (a, b) = two_replicas(&database).await;
        let window = Duration::from_secs(60);
        let (one, other) = (
            RateLimiter::new(a, RATES, "sms", 4, window),
            RateLimiter::new(b, RATES, "sms", 4, window),
        );
        let at = |secs: i64| {
            Utc.timestamp_opt(1_800_000_000 + secs, 0)
                .single()
                .expect("time")
        };
        // 1_800_000_000 is a multiple of 60: windows start at 0, 60, 120 ...
        for (i, secs) in [50, 55, 56, 58].into_iter().enumerate() {
            let limiter = if i % 2 == 0 { &one } else { &other };
            assert!(
                limiter
                    .hit_at("lead-1", at(secs))
                    .await
                    .expect("hit")
                    .is_allowed()
            );
        }
        assert!(
            !one.hit_at("lead-1", at(59))
                .await
                .expect("hit")
                .is_allowed()
        );
        // Just past the boundary the previous window still weighs (5 hits, 58/60 covered).
        assert!(
            !other
                .hit_at("lead-1", at(62))
                .await
                .expect("hit")
                .is_allowed()
        );
        // A window later, little of the previous one (two hits) still weighs.
        assert!(
            one.hit_at("lead-1", at(121))
                .await
                .expect("hit")
                .is_allowed()
        );
    }
}

#[tokio::test]
async fn a_cooldown_goes_to_one_holder_across_replicas_and_its_retry_keeps_it() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let (a, b) = two_replicas(&database).await;
        let period = Duration::from_secs(3600);
        let cooldowns = [
            Cooldown::new(a, COOLDOWNS, "sms_follow_up", period),
            Cooldown::new(b, COOLDOWNS, "sms_follow_up", period),
        ];
        let takes = (0..20).map(|i| {
            let cooldown = cooldowns[i % 2].clone();
            tokio::spawn(async move {
                let holder = format!("SM{i}");
                let took = cooldown.take("lead-1", &holder).await.expect("take");
                (holder, took)
            })
        });
        let mut winners = Vec::new();
        for take in takes {
            let (holder, took) = take.await.expect("task");
            if took {
                winners.push(holder);
            }
        }
        assert_eq!(winners.len(), 1, "{backend:?}: {winners:?}");
        // The winner's retry, on the other replica, still holds it; nobody else does.
        assert!(
            cooldowns[1]
                .take("lead-1", &winners[0])
                .await
                .expect("take")
        );
        assert!(!cooldowns[0].take("lead-1", "SM-late").await.expect("take"));
        // Another lead is not held back.
        assert!(cooldowns[0].take("lead-2", "SM-late").await.expect("take"));
        // A zero period holds nobody back.
        let off = Cooldown::new(connect(&database).await, COOLDOWNS, "off", Duration::ZERO);
        assert!(off.take("lead-1", "x").await.expect("take"));
    }
}

/// Rate counters on PostgreSQL commit without waiting for the WAL flush; everything else still
/// waits. Both pools count in the same table.
#[tokio::test]
async fn counters_commit_without_waiting_for_a_flush_and_nothing_else_does() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let (main, _) = two_replicas(&database).await;
        let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
        let counters = db::connect_best_effort(&url, &main).await.expect("connect");
        if main.get_database_backend() == DbBackend::Postgres {
            let setting = |db: DatabaseConnection| async move {
                db.query_one(Statement::from_string(
                    DbBackend::Postgres,
                    "SHOW synchronous_commit",
                ))
                .await
                .expect("show")
                .expect("a row")
                .try_get_by_index::<String>(0)
                .expect("text")
            };
            assert_eq!(setting(counters.clone()).await, "off");
            assert_eq!(setting(main.clone()).await, "on");
        }
        let window = Duration::from_secs(3600);
        let fast = RateLimiter::new(counters, RATES, "initiation", 2, window);
        let slow = RateLimiter::new(main, RATES, "initiation", 2, window);
        assert!(fast.hit("+14155550100").await.expect("hit").is_allowed());
        assert!(slow.hit("+14155550100").await.expect("hit").is_allowed());
        assert!(
            !fast.hit("+14155550100").await.expect("hit").is_allowed(),
            "{backend:?}: the third hit of two allowed"
        );
    }
}
