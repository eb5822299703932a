//! The durable inbox: every asynchronous webhook is committed here before the provider gets its
//! 200, and the dispatcher runs its flow from here, at least once, until it is done or
//! dead-lettered. A repeated delivery (same provider and idempotency key) is recognised by a
//! unique index and never processed twice.
//!
//! Commits are grouped: concurrent requests hand their items to one writer task, which inserts a
//! batch in one transaction and answers each request when its batch is durable.
//!
//! Items are claimed, not read: a dispatcher takes a batch of due items in one statement, holds
//! them under a lease it renews while their flows run, and settles each only while its claim
//! (owner and attempt) still stands. A dispatcher that dies stops renewing; after the lease its
//! items are due again for any other.

pub mod dispatcher;
mod entity;
#[cfg(test)]
mod tests;
mod writer;

use std::time::Duration;

use callmesh_runtime::Durability;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, LockType, Order, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::{Notify, mpsc, oneshot};

pub use entity::Model as InboxRow;

/// Requests waiting for the writer; beyond this, new webhooks wait for room (backpressure).
const QUEUE_DEPTH: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxState {
    /// Waiting for its (next) attempt.
    Pending,
    /// Claimed by a dispatcher until its lease runs out.
    Processing,
    Done,
    /// Accepted and kept, but nothing to do (unknown event types).
    Ignored,
    /// Gave up after the configured attempts, or failed for good; can be replayed.
    Dead,
}

impl InboxState {
    pub const ALL: [InboxState; 5] = [
        InboxState::Pending,
        InboxState::Processing,
        InboxState::Done,
        InboxState::Ignored,
        InboxState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InboxState::Pending => "pending",
            InboxState::Processing => "processing",
            InboxState::Done => "done",
            InboxState::Ignored => "ignored",
            InboxState::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<InboxState> {
        InboxState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A webhook to keep.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub provider: &'static str,
    pub event_type: String,
    pub idempotency_key: String,
    pub raw_body: Vec<u8>,
    /// Items with nothing to do are stored as `Ignored`.
    pub state: InboxState,
    /// When the first attempt may run (later for scheduled checks).
    pub not_before: DateTime<Utc>,
}

/// The answer to an accepted delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Accepted,
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("inbox database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("the inbox writer has stopped")]
    WriterStopped,
}

/// Handle onto the inbox: admission through the group-commit writer, claims, and queries.
#[derive(Clone)]
pub struct Inbox {
    db: DatabaseConnection,
    writer: mpsc::Sender<writer::Write>,
    /// Woken after each commit, so the dispatcher starts at once instead of at its next poll.
    pub(crate) committed: Arc<Notify>,
}

/// An item as listed for operators: everything but its body, which can be megabytes of audio.
#[derive(Debug, Clone, FromQueryResult)]
pub struct InboxSummary {
    pub id: i64,
    pub provider: String,
    pub event_type: String,
    pub idempotency_key: String,
    pub received_at: DateTime<Utc>,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: String,
    pub body_bytes: i64,
}

/// Who holds a claimed item, for which attempt: renewals and results count only with both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    pub owner: String,
    pub attempt: i32,
}

impl Inbox {
    /// Starts the writer task; it ends when every `Inbox` handle is dropped. `durability` makes
    /// each batch durable before its requests are answered.
    pub fn start(db: DatabaseConnection, durability: Durability) -> Inbox {
        let (writer, queue) = mpsc::channel(QUEUE_DEPTH);
        let committed = Arc::new(Notify::new());
        tokio::spawn(writer::run(
            db.clone(),
            durability,
            queue,
            committed.clone(),
        ));
        Inbox {
            db,
            writer,
            committed,
        }
    }

    /// Commits `item` durably, or recognises it as a repeat. Returns once it is on disk.
    pub async fn admit(&self, item: NewItem) -> Result<Admission, InboxError> {
        // The item's flow continues the trace it arrived in (the webhook's, or the flow's that
        // scheduled it).
        let trace_parent = callmesh_runtime::telemetry::current_traceparent();
        self.through_writer(|done| writer::Write::Admit {
            item,
            trace_parent,
            done,
        })
        .await
    }

    /// Hands `write` to the writer and waits for its batch to commit.
    async fn through_writer<T>(
        &self,
        write: impl FnOnce(oneshot::Sender<Result<T, String>>) -> writer::Write,
    ) -> Result<T, InboxError> {
        let (done, answer) = oneshot::channel();
        self.writer
            .send(write(done))
            .await
            .map_err(|_| InboxError::WriterStopped)?;
        answer
            .await
            .map_err(|_| InboxError::WriterStopped)?
            .map_err(|e| InboxError::Database(sea_orm::DbErr::Custom(e)))
    }

    /// Items in `state` (all when `None`), newest first, without their bodies.
    pub async fn list(
        &self,
        state: Option<InboxState>,
        limit: u64,
    ) -> Result<Vec<InboxSummary>, InboxError> {
        let mut query = entity::Entity::find()
            .order_by_desc(entity::Column::Id)
            .limit(limit);
        if let Some(state) = state {
            query = query.filter(entity::Column::State.eq(state.as_str()));
        }
        Ok(summarised(query).all(&self.db).await?)
    }

    /// One item, without its body.
    pub async fn get(&self, id: i64) -> Result<Option<InboxSummary>, InboxError> {
        Ok(summarised(entity::Entity::find_by_id(id))
            .one(&self.db)
            .await?)
    }

    /// Puts an item back in line for an immediate attempt, whatever its state (unless it is
    /// being processed right now). Returns the item as it now stands.
    pub async fn replay(&self, id: i64) -> Result<Option<InboxSummary>, InboxError> {
        let now = Utc::now();
        entity::Entity::update_many()
            .col_expr(entity::Column::State, InboxState::Pending.as_str().into())
            .col_expr(entity::Column::Attempts, 0.into())
            .col_expr(entity::Column::NextAttemptAt, now.into())
            .col_expr(entity::Column::UpdatedAt, now.into())
            .filter(entity::Column::Id.eq(id))
            .filter(entity::Column::State.ne(InboxState::Processing.as_str()))
            .exec(&self.db)
            .await?;
        // Read before waking the dispatcher, so the answer is the item as the replay left it
        // (`pending`), not already claimed again.
        let item = self.get(id).await?;
        self.committed.notify_one();
        Ok(item)
    }

    /// Claims up to `limit` due items for `owner`, oldest first: pending ones whose time has
    /// come, and claimed ones whose claimant's lease ran out (it died). Replicas never claim
    /// the same item; each claimed item's attempt counter goes up by one (`writer::claim`).
    pub(crate) async fn claim_due(
        &self,
        owner: &str,
        limit: u64,
        lease: Duration,
    ) -> Result<Vec<InboxRow>, InboxError> {
        // Through the writer: the claim shares a transaction (on SQLite, the one connection)
        // with the webhooks and outcomes being written, and sees the webhooks of its batch.
        let claim = writer::ClaimRequest {
            owner: owner.to_owned(),
            limit,
            lease,
        };
        self.through_writer(|done| writer::Write::Claim { claim, done })
            .await
    }

    /// Extends the lease of every item in `ids` that `owner` still holds.
    pub(crate) async fn renew(
        &self,
        owner: &str,
        ids: &[i64],
        lease: Duration,
    ) -> Result<u64, InboxError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = Utc::now();
        let mut held = Query::select();
        held.column(entity::Column::Id)
            .from(entity::Entity)
            .and_where(entity::Column::Id.is_in(ids.iter().copied()))
            .and_where(entity::Column::ClaimedBy.eq(owner))
            .and_where(entity::Column::State.eq(InboxState::Processing.as_str()))
            .order_by(entity::Column::Id, Order::Asc);
        if self.db.get_database_backend() == DbBackend::Postgres {
            // Lock in id order, as the writer settles: no deadlock between the two.
            held.lock(LockType::Update);
        }
        let renewed = entity::Entity::update_many()
            .col_expr(entity::Column::NextAttemptAt, lease_end(now, lease).into())
            .filter(entity::Column::Id.in_subquery(held))
            .exec(&self.db)
            .await?;
        Ok(renewed.rows_affected)
    }

    /// Records the end of an attempt: `state` with `error` and, for a retry, when. Counts only
    /// while `claim` still holds the item; returns false when it no longer did (its lease ran
    /// out and another dispatcher took it over: that one's result stands). Goes through the
    /// writer, so the outcomes of many attempts share one commit.
    pub(crate) async fn settle(
        &self,
        id: i64,
        claim: &Claim,
        state: InboxState,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<bool, InboxError> {
        let settlement = writer::Settlement {
            id,
            claim: claim.clone(),
            state,
            error: error.to_owned(),
            next_attempt_at,
        };
        self.through_writer(|done| writer::Write::Settle { settlement, done })
            .await
    }

    /// Deletes finished (`done`, `ignored`) items settled before `before`; dead ones stay for
    /// an operator. Returns how many went.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64, InboxError> {
        let deleted = entity::Entity::delete_many()
            .filter(
                entity::Column::State
                    .is_in([InboxState::Done.as_str(), InboxState::Ignored.as_str()]),
            )
            .filter(entity::Column::NextAttemptAt.lt(before))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// How many items are in each state, and when the oldest waiting one arrived.
    pub async fn backlog(&self) -> Result<Backlog, InboxError> {
        self.counted(None).await
    }

    /// What is still to be done: items pending, processing and dead, and the arrival of the
    /// oldest one not finished. Only those rows are read (through the state index), so it stays
    /// cheap however many finished items are kept; metrics scrapes ask for it every few seconds.
    pub async fn waiting(&self) -> Result<Backlog, InboxError> {
        self.counted(Some(&[
            InboxState::Pending,
            InboxState::Processing,
            InboxState::Dead,
        ]))
        .await
    }

    /// Items counted by state (only `states` when given), and the oldest unfinished arrival.
    async fn counted(&self, states: Option<&[InboxState]>) -> Result<Backlog, InboxError> {
        #[derive(FromQueryResult)]
        struct Count {
            state: String,
            items: i64,
        }
        let mut counts = entity::Entity::find()
            .select_only()
            .column(entity::Column::State)
            .column_as(entity::Column::Id.count(), "items")
            .group_by(entity::Column::State);
        if let Some(states) = states {
            counts = counts.filter(entity::Column::State.is_in(states.iter().map(|s| s.as_str())));
        }
        let counts = counts.into_model::<Count>().all(&self.db).await?;
        let oldest = entity::Entity::find()
            .select_only()
            .column_as(entity::Column::ReceivedAt.min(), "oldest")
            .filter(entity::Column::State.is_in([
                InboxState::Pending.as_str(),
                InboxState::Processing.as_str(),
            ]))
            .into_tuple::<Option<DateTime<Utc>>>()
            .one(&self.db)
            .await?
            .flatten();
        let mut backlog = Backlog {
            oldest_waiting_received_at: oldest,
            ..Backlog::default()
        };
        for count in counts {
            if let Some(state) = InboxState::parse(&count.state) {
                backlog
                    .by_state
                    .push((state, u64::try_from(count.items).unwrap_or(0)));
            }
        }
        Ok(backlog)
    }
}

/// The inbox's counts by state and the arrival of its oldest unfinished item.
#[derive(Debug, Clone, Default)]
pub struct Backlog {
    pub by_state: Vec<(InboxState, u64)>,
    pub oldest_waiting_received_at: Option<DateTime<Utc>>,
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60))
}

/// `query` as operators see items: every column but the body, and the body's size.
fn summarised(
    query: sea_orm::Select<entity::Entity>,
) -> sea_orm::Selector<sea_orm::SelectModel<InboxSummary>> {
    query
        .select_only()
        .columns([
            entity::Column::Id,
            entity::Column::Provider,
            entity::Column::EventType,
            entity::Column::IdempotencyKey,
            entity::Column::ReceivedAt,
            entity::Column::State,
            entity::Column::Attempts,
            entity::Column::NextAttemptAt,
            entity::Column::LastError,
        ])
        .column_as(Expr::cust("CAST(LENGTH(raw_body) AS BIGINT)"), "body_bytes")
        .into_model::<InboxSummary>()
}
