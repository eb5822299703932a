//! The durable inbox: every asynchronous webhook is committed here before the provider gets its
//! 200, and the dispatcher runs its flow from here, at least once, until it is done or
//! dead-lettered. A repeated delivery (same provider and idempotency key) is recognised by a
//! unique index and never processed twice.
//!
//! Commits are grouped: concurrent requests hand their items to one writer task, which inserts a
//! batch in one transaction (one fsync) and answers each request when its batch is durable.

pub mod dispatcher;
mod entity;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::{Notify, mpsc, oneshot};

pub use entity::Model as InboxRow;

/// Largest batch one commit takes.
const MAX_BATCH: usize = 512;
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

struct Pending {
    item: NewItem,
    done: oneshot::Sender<Result<Admission, String>>,
}

/// Handle onto the inbox: admission through the group-commit writer, and queries.
#[derive(Clone)]
pub struct Inbox {
    db: DatabaseConnection,
    writer: mpsc::Sender<Pending>,
    /// Woken after each commit, so the dispatcher starts at once instead of at its next poll.
    pub(crate) committed: Arc<Notify>,
}

impl Inbox {
    /// Starts the writer task; it ends when every `Inbox` handle is dropped.
    pub fn start(db: DatabaseConnection) -> Inbox {
        let (writer, queue) = mpsc::channel(QUEUE_DEPTH);
        let committed = Arc::new(Notify::new());
        tokio::spawn(write_batches(db.clone(), queue, committed.clone()));
        Inbox {
            db,
            writer,
            committed,
        }
    }

    /// Commits `item` durably, or recognises it as a repeat. Returns once it is on disk.
    pub async fn admit(&self, item: NewItem) -> Result<Admission, InboxError> {
        let (done, answer) = oneshot::channel();
        self.writer
            .send(Pending { item, done })
            .await
            .map_err(|_| InboxError::WriterStopped)?;
        answer
            .await
            .map_err(|_| InboxError::WriterStopped)?
            .map_err(|e| InboxError::Database(sea_orm::DbErr::Custom(e)))
    }

    /// Items in `state` (all when `None`), newest first.
    pub async fn list(
        &self,
        state: Option<InboxState>,
        limit: u64,
    ) -> Result<Vec<InboxRow>, InboxError> {
        let mut query = entity::Entity::find()
            .order_by_desc(entity::Column::Id)
            .limit(limit);
        if let Some(state) = state {
            query = query.filter(entity::Column::State.eq(state.as_str()));
        }
        Ok(query.all(&self.db).await?)
    }

    pub async fn get(&self, id: i64) -> Result<Option<InboxRow>, InboxError> {
        Ok(entity::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Puts an item back in line for an immediate attempt, whatever its state (unless it is
    /// being processed right now). Returns the item as it now stands.
    pub async fn replay(&self, id: i64) -> Result<Option<InboxRow>, InboxError> {
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
        self.committed.notify_one();
        self.get(id).await
    }

    /// Items due now, oldest first: pending ones whose time has come, and claimed ones whose
    /// claimant's lease ran out (it died).
    pub(crate) async fn due(&self, limit: u64) -> Result<Vec<InboxRow>, InboxError> {
        Ok(entity::Entity::find()
            .filter(entity::Column::State.is_in([
                InboxState::Pending.as_str(),
                InboxState::Processing.as_str(),
            ]))
            .filter(entity::Column::NextAttemptAt.lte(Utc::now()))
            .order_by_asc(entity::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Claims `row` for one attempt; false when another dispatcher got it first. The attempt
    /// counter doubles as the version checked by the update.
    pub(crate) async fn claim(&self, row: &InboxRow, lease: Duration) -> Result<bool, InboxError> {
        let now = Utc::now();
        let until =
            now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
        let claimed = entity::Entity::update_many()
            .col_expr(
                entity::Column::State,
                InboxState::Processing.as_str().into(),
            )
            .col_expr(entity::Column::Attempts, (row.attempts + 1).into())
            .col_expr(entity::Column::NextAttemptAt, until.into())
            .col_expr(entity::Column::UpdatedAt, now.into())
            .filter(entity::Column::Id.eq(row.id))
            .filter(entity::Column::Attempts.eq(row.attempts))
            .filter(entity::Column::State.eq(row.state.as_str()))
            .exec(&self.db)
            .await?;
        Ok(claimed.rows_affected == 1)
    }

    /// Records the end of an attempt: `state` with `error` and, for a retry, when.
    pub(crate) async fn settle(
        &self,
        id: i64,
        state: InboxState,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), InboxError> {
        entity::Entity::update_many()
            .col_expr(entity::Column::State, state.as_str().into())
            .col_expr(entity::Column::LastError, error.into())
            .col_expr(entity::Column::NextAttemptAt, next_attempt_at.into())
            .col_expr(entity::Column::UpdatedAt, Utc::now().into())
            .filter(entity::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

async fn write_batches(
    db: DatabaseConnection,
    mut queue: mpsc::Receiver<Pending>,
    committed: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let items: Vec<&NewItem> = batch.iter().map(|p| &p.item).collect();
        match insert_batch(&db, &items).await {
            Ok(admissions) => {
                for (pending, admission) in batch.drain(..).zip(admissions) {
                    let _ = pending.done.send(Ok(admission));
                }
                committed.notify_one();
            }
            Err(error) => {
                tracing::error!(%error, size = batch.len(), "inbox commit failed");
                for pending in batch.drain(..) {
                    let _ = pending.done.send(Err(error.to_string()));
                }
            }
        }
    }
}

async fn insert_batch(
    db: &DatabaseConnection,
    items: &[&NewItem],
) -> Result<Vec<Admission>, sea_orm::DbErr> {
    let txn = db.begin().await?;
    let mut admissions = Vec::with_capacity(items.len());
    for item in items {
        admissions.push(insert_one(&txn, item).await?);
    }
    txn.commit().await?;
    Ok(admissions)
}

async fn insert_one(
    db: &impl ConnectionTrait,
    item: &NewItem,
) -> Result<Admission, sea_orm::DbErr> {
    let now = Utc::now();
    let inserted = entity::Entity::insert(entity::ActiveModel {
        provider: Set(item.provider.to_owned()),
        event_type: Set(item.event_type.clone()),
        idempotency_key: Set(item.idempotency_key.clone()),
        raw_body: Set(item.raw_body.clone()),
        received_at: Set(now),
        state: Set(item.state.as_str().to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(item.not_before),
        last_error: Set(String::new()),
        updated_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([entity::Column::Provider, entity::Column::IdempotencyKey])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(if inserted == 1 {
        Admission::Accepted
    } else {
        Admission::Duplicate
    })
}
