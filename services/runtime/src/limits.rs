//! Limits every replica of a service shares, kept in that service's own database rather than
//! in process memory: a rate limit counted in the same table by all replicas, and a cooldown
//! that one holder takes for a while. Each is one atomic statement
//! (`INSERT … ON CONFLICT DO UPDATE … RETURNING`), the same SQL on SQLite and PostgreSQL, so two
//! replicas racing on one key never both get through.
//!
//! The tables come from the migrations of each database that uses them, named for their
//! service (`gateway_rate_counters`, …) so that services sharing one database keep disjoint
//! tables; times are milliseconds since the epoch, so both backends store plain integers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, OnConflict, Query, SimpleExpr};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, DeriveIden};

/// Stale rows are deleted every this many uses of one limiter (cheap, and keeps tables small).
const PRUNE_EVERY: u64 = 1024;

/// Columns of a rate-counter table (`key`, `window_start`, `count`).
#[derive(DeriveIden)]
enum RateCounters {
    Key,
    WindowStart,
    Count,
}

/// Columns of a cooldown table (`key`, `holder`, `until_ms`).
#[derive(DeriveIden)]
enum Cooldowns {
    Key,
    Holder,
    UntilMs,
}

/// What a rate limiter answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit; `used` counts this hit.
    Allowed { used: u64 },
    /// Over the limit (this hit is counted too: hammering does not help).
    Limited { used: u64 },
}

impl Verdict {
    pub fn is_allowed(self) -> bool {
        matches!(self, Verdict::Allowed { .. })
    }
}

/// At most `limit` hits per key in any `window`, shared by every process using the database.
///
/// A sliding window approximated from two fixed ones (the current window's exact count, plus
/// the previous window's count weighted by how much of it the sliding window still covers),
/// so a burst at a window boundary cannot pass twice the limit. The current count is an atomic
/// upsert; the previous window is closed, so reading it separately races with nothing.
#[derive(Clone)]
pub struct RateLimiter {
    db: DatabaseConnection,
    table: &'static str,
    /// Prefixes every key, so several limits share one table.
    scope: &'static str,
    limit: u64,
    window_ms: i64,
    uses: Arc<AtomicU64>,
}

impl RateLimiter {
    /// Counts in `table` (created by the database's migrations), keys prefixed with `scope`.
    pub fn new(
        db: DatabaseConnection,
        table: &'static str,
        scope: &'static str,
        limit: u64,
        window: Duration,
    ) -> Self {
        RateLimiter {
            db,
            table,
            scope,
            limit,
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1),
            uses: Arc::default(),
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn window(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.window_ms).unwrap_or(0))
    }

    /// Counts one hit on `key` and says whether it is within the limit.
    pub async fn hit(&self, key: &str) -> Result<Verdict, DbErr> {
        self.hit_at(key, Utc::now()).await
    }

    /// As `hit`, at `now` (what a test moves).
    pub async fn hit_at(&self, key: &str, now: DateTime<Utc>) -> Result<Verdict, DbErr> {
        let now_ms = now.timestamp_millis();
        let key = format!("{}:{key}", self.scope);
        let start = now_ms - now_ms.rem_euclid(self.window_ms);
        let backend = self.db.get_database_backend();
        // The previous window is closed: its count is read in the same statement (a subquery in
        // `RETURNING`), one round trip for the whole verdict.
        let previous = Query::select()
            .column(RateCounters::Count)
            .from(Alias::new(self.table))
            .and_where(Expr::col(RateCounters::Key).eq(key.as_str()))
            .and_where(Expr::col(RateCounters::WindowStart).eq(start - self.window_ms))
            .to_owned();
        let mut upsert = Query::insert();
        upsert
            .into_table(Alias::new(self.table))
            .columns([
                RateCounters::Key,
                RateCounters::WindowStart,
                RateCounters::Count,
            ])
            .values([key.clone().into(), start.into(), 1i64.into()])
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .on_conflict(
                OnConflict::columns([RateCounters::Key, RateCounters::WindowStart])
                    .value(
                        RateCounters::Count,
                        Expr::col((Alias::new(self.table), RateCounters::Count)).add(1),
                    )
                    .to_owned(),
            )
            .returning(Query::returning().exprs([
                Expr::col(RateCounters::Count).into(),
                SimpleExpr::SubQuery(None, Box::new(previous.into_sub_query_statement())),
            ]));
        let (current, previous) = match self.db.query_one(backend.build(&upsert)).await? {
            Some(row) => (
                row.try_get_by_index::<i64>(0)?,
                row.try_get_by_index::<Option<i64>>(1)?.unwrap_or(0),
            ),
            None => (1, 0),
        };
        // The share of the previous window the sliding window [now - window, now] still covers.
        let covered = (self.window_ms - (now_ms - start)) as f64 / self.window_ms as f64;
        let used = u64::try_from(current).unwrap_or(0)
            + (u64::try_from(previous).unwrap_or(0) as f64 * covered).floor() as u64;
        self.prune(start).await;
        Ok(if used <= self.limit {
            Verdict::Allowed { used }
        } else {
            Verdict::Limited { used }
        })
    }

    /// Deletes windows no hit can look at any more, now and then.
    async fn prune(&self, start: i64) {
        if self.uses.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY != PRUNE_EVERY - 1 {
            return;
        }
        let stale = Query::delete()
            .from_table(Alias::new(self.table))
            .and_where(Expr::col(RateCounters::Key).like(format!("{}:%", self.scope)))
            .and_where(Expr::col(RateCounters::WindowStart).lt(start - self.window_ms))
            .to_owned();
        let backend = self.db.get_database_backend();
        if let Err(error) = self.db.execute(backend.build(&stale)).await {
            tracing::warn!(scope = self.scope, %error, "pruning rate counters failed");
        }
    }
}

/// A per-key quiet period: whoever takes it first holds it for `period`; others are turned
/// away until it ends. The holder (an event's key, say) taking it again is answered yes, so a
/// retried flow does not lock itself out of what its first attempt began.
#[derive(Clone)]
pub struct Cooldown {
    db: DatabaseConnection,
    table: &'static str,
    scope: &'static str,
    period_ms: i64,
    uses: Arc<AtomicU64>,
}

impl Cooldown {
    /// Kept in `table` (created by the database's migrations), keys prefixed with `scope`.
    pub fn new(
        db: DatabaseConnection,
        table: &'static str,
        scope: &'static str,
        period: Duration,
    ) -> Self {
        Cooldown {
            db,
            table,
            scope,
            period_ms: i64::try_from(period.as_millis()).unwrap_or(i64::MAX),
            uses: Arc::default(),
        }
    }

    /// Whether `holder` has the cooldown of `key`: it was free (or had ended) and is now
    /// `holder`'s, or `holder` already had it. A zero period never holds anyone back.
    pub async fn take(&self, key: &str, holder: &str) -> Result<bool, DbErr> {
        if self.period_ms == 0 {
            return Ok(true);
        }
        let key = format!("{}:{key}", self.scope);
        let now = Utc::now().timestamp_millis();
        let backend = self.db.get_database_backend();
        let mut take = Query::insert();
        take.into_table(Alias::new(self.table))
            .columns([Cooldowns::Key, Cooldowns::Holder, Cooldowns::UntilMs])
            .values([
                key.clone().into(),
                holder.into(),
                now.saturating_add(self.period_ms).into(),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .on_conflict(
                OnConflict::column(Cooldowns::Key)
                    .update_columns([Cooldowns::Holder, Cooldowns::UntilMs])
                    .action_and_where(
                        Expr::col((Alias::new(self.table), Cooldowns::UntilMs)).lte(now),
                    )
                    .to_owned(),
            )
            .returning_col(Cooldowns::Holder);
        let taken = self.db.query_one(backend.build(&take)).await?.is_some();
        self.prune(now).await;
        if taken {
            return Ok(true);
        }
        let current = Query::select()
            .column(Cooldowns::Holder)
            .from(Alias::new(self.table))
            .and_where(Expr::col(Cooldowns::Key).eq(key.as_str()))
            .to_owned();
        let current = self
            .db
            .query_one(backend.build(&current))
            .await?
            .map(|row| row.try_get_by_index::<String>(0))
            .transpose()?;
        Ok(current.as_deref() == Some(holder))
    }

    async fn prune(&self, now: i64) {
        if self.uses.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY != PRUNE_EVERY - 1 {
            return;
        }
        let ended = Query::delete()
            .from_table(Alias::new(self.table))
            .and_where(Expr::col(Cooldowns::Key).like(format!("{}:%", self.scope)))
            .and_where(Expr::col(Cooldowns::UntilMs).lt(now))
            .to_owned();
        let backend = self.db.get_database_backend();
        if let Err(error) = self.db.execute(backend.build(&ended)).await {
            tracing::warn!(scope = self.scope, %error, "pruning cooldowns failed");
        }
    }
}
