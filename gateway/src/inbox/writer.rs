//! The inbox's one writer: what concurrent requests and flows hand it goes into the database
//! in batches, as a group commit does: the new webhooks of a batch in one commit (and one
//! fsync), a few hundred rows per statement, and the dispatcher's claims and outcomes in
//! another, after them. A request hears "accepted" only once its webhook is durable.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    CaseStatement, Expr, LockBehavior, LockType, OnConflict, Order, Query, SimpleExpr,
    UpdateStatement,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    FromQueryResult, Statement, TransactionTrait,
};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use callmesh_runtime::Durability;

use super::{Admission, Claim, InboxRow, InboxState, NewItem, entity};

/// Most writes one commit takes.
pub(super) const MAX_BATCH: usize = 512;
/// Rows one INSERT carries (well inside both databases' limits on bound values).
const ROWS_PER_INSERT: usize = 200;
/// Batches committing at once on PostgreSQL: the next one commits while the last one's WAL
/// flush is still under way, and the server groups them.
const BATCHES_IN_FLIGHT: usize = 4;
/// On SQLite, one batch writing at a time: the database has one connection, and a second
/// batch would only wait for it (1.9 ms at the median under 500/s of post-call webhooks,
/// against 0.6 ms with one). A batch's fsync is not part of it: the next batch writes while
/// the last one waits for its fsync.
const SQLITE_BATCHES_IN_FLIGHT: usize = 1;

/// The end of an attempt, as the dispatcher reports it.
#[derive(Debug, Clone)]
pub(crate) struct Settlement {
    pub id: i64,
    pub claim: Claim,
    pub state: InboxState,
    pub error: String,
    pub next_attempt_at: DateTime<Utc>,
}

/// A dispatcher asking for due items.
#[derive(Debug, Clone)]
pub(super) struct ClaimRequest {
    pub owner: String,
    pub limit: u64,
    pub lease: Duration,
}

pub(super) enum Write {
    Admit {
        item: NewItem,
        /// The W3C `traceparent` the item's flow continues ("" for none).
        trace_parent: String,
        done: oneshot::Sender<Result<Admission, String>>,
    },
    Settle {
        settlement: Settlement,
        done: oneshot::Sender<Result<bool, String>>,
    },
    Claim {
        claim: ClaimRequest,
        done: oneshot::Sender<Result<Vec<InboxRow>, String>>,
    },
}

pub(super) async fn run(
    db: DatabaseConnection,
    durability: Durability,
    mut queue: mpsc::Receiver<Write>,
    committed: Arc<Notify>,
) {
    let batches = if db.get_database_backend() == DbBackend::Sqlite {
        SQLITE_BATCHES_IN_FLIGHT
    } else {
        BATCHES_IN_FLIGHT
    };
    let in_flight = Arc::new(Semaphore::new(batches));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // A turn first, then the batch: what arrives while the batches ahead write joins the
        // next one.
        let Ok(turn) = in_flight.clone().acquire_owned().await else {
            return;
        };
        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
            break;
        }
        let writes = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        // New webhooks commit apart from the dispatcher's claims and outcomes, first: a request
        // waits for its own rows, not for a claim's scan of the waiting items (the slowest
        // statement of a drain) nor for the row locks outcomes take. On SQLite the two commit
        // one after the other, the claims and outcomes while the webhooks' fsync is under way;
        // on PostgreSQL side by side.
        let (admissions, others): (Vec<_>, Vec<_>) = writes
            .into_iter()
            .partition(|write| matches!(write, Write::Admit { .. }));
        let mut turn = Some(turn);
        for writes in [admissions, others] {
            if writes.is_empty() {
                continue;
            }
            let turn = match turn.take() {
                Some(turn) => turn,
                None => match in_flight.clone().acquire_owned().await {
                    Ok(turn) => turn,
                    Err(_) => return,
                },
            };
            let (db, durability, committed) = (db.clone(), durability.clone(), committed.clone());
            tokio::spawn(async move {
                commit(&db, &durability, &committed, writes, turn).await;
            });
        }
    }
    // Let the batches still in flight finish before the writer is gone.
    let _ = in_flight.acquire_many(batches as u32).await;
}

async fn commit(
    db: &DatabaseConnection,
    durability: &Durability,
    committed: &Notify,
    writes: Vec<Write>,
    turn: OwnedSemaphorePermit,
) {
    let mut items = Vec::new();
    let mut admitted = Vec::new();
    let mut settling = Vec::new();
    let mut claims = Vec::new();
    let mut claimants = Vec::new();
    for write in writes {
        match write {
            Write::Admit {
                item,
                trace_parent,
                done,
            } => {
                items.push((item, trace_parent));
                admitted.push(done);
            }
            Write::Settle { settlement, done } => settling.push((settlement, done)),
            Write::Claim { claim, done } => {
                claims.push(claim);
                claimants.push(done);
            }
        }
    }
    // Rows are locked in id order, as renewals lock them: two transactions never wait on
    // each other in a circle.
    settling.sort_by_key(|(settlement, _)| settlement.id);
    let (settlements, settled): (Vec<_>, Vec<_>) = settling.into_iter().unzip();
    let written = write_batch(db, &items, &settlements, &claims).await;
    // Written (or not): the next batch may write while this one waits for its fsync.
    drop(turn);
    match written {
        Ok((admissions, outcomes, claimed)) => {
            if !items.is_empty() {
                // Nobody hears "accepted" before the batch would survive a power cut.
                durability.barrier().await;
                committed.notify_one();
            }
            for (done, admission) in admitted.into_iter().zip(admissions) {
                let _ = done.send(Ok(admission));
            }
            for (done, outcome) in settled.into_iter().zip(outcomes) {
                let _ = done.send(Ok(outcome));
            }
            for (done, rows) in claimants.into_iter().zip(claimed) {
                let _ = done.send(Ok(rows));
            }
        }
        Err(error) => {
            tracing::error!(%error, items = items.len(), outcomes = settlements.len(), claims = claims.len(), "inbox commit failed");
            for done in admitted {
                let _ = done.send(Err(error.to_string()));
            }
            for done in settled {
                let _ = done.send(Err(error.to_string()));
            }
            for done in claimants {
                let _ = done.send(Err(error.to_string()));
            }
        }
    }
}

async fn write_batch(
    db: &DatabaseConnection,
    items: &[(NewItem, String)],
    settlements: &[Settlement],
    claims: &[ClaimRequest],
) -> Result<(Vec<Admission>, Vec<bool>, Vec<Vec<InboxRow>>), DbErr> {
    // Keys are inserted in one order by every batch, so two batches carrying the same keys
    // wait on each other at most one way.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        (items[a].0.provider, &items[a].0.idempotency_key)
            .cmp(&(items[b].0.provider, &items[b].0.idempotency_key))
            .then(a.cmp(&b))
    });
    let sorted: Vec<&(NewItem, String)> = order.iter().map(|&i| &items[i]).collect();
    let mut admissions = vec![Admission::Duplicate; items.len()];
    if settlements.is_empty() && claims.is_empty() && items.len() <= ROWS_PER_INSERT {
        // New webhooks alone, as many as one INSERT carries: that statement is atomic on its
        // own, one round trip where a transaction around it takes three.
        for (position, admission) in insert_rows(db, &sorted).await?.into_iter().enumerate() {
            admissions[order[position]] = admission;
        }
        return Ok((admissions, Vec::new(), Vec::new()));
    }
    let txn = db.begin().await?;
    let mut position = 0;
    for chunk in sorted.chunks(ROWS_PER_INSERT) {
        for admission in insert_rows(&txn, chunk).await? {
            admissions[order[position]] = admission;
            position += 1;
        }
    }
    let outcomes = settle(&txn, settlements).await?;
    // After the inserts: a claim sees the webhooks of its own batch.
    let mut claimed = Vec::with_capacity(claims.len());
    for request in claims {
        claimed.push(claim(&txn, request).await?);
    }
    txn.commit().await?;
    Ok((admissions, outcomes, claimed))
}

/// Inserts `items` in one statement; each is `Accepted` when its row went in, `Duplicate`
/// when its key was already stored (or came earlier in the same batch).
async fn insert_rows(
    connection: &impl ConnectionTrait,
    items: &[&(NewItem, String)],
) -> Result<Vec<Admission>, DbErr> {
    use entity::Column;
    let now = Utc::now();
    let mut insert = Query::insert();
    insert.into_table(entity::Entity).columns([
        Column::Provider,
        Column::EventType,
        Column::IdempotencyKey,
        Column::RawBody,
        Column::ReceivedAt,
        Column::State,
        Column::Attempts,
        Column::NextAttemptAt,
        Column::LastError,
        Column::UpdatedAt,
        Column::ClaimedBy,
        Column::TraceParent,
    ]);
    for (item, trace_parent) in items.iter().map(|pair| (&pair.0, &pair.1)) {
        insert
            .values([
                item.provider.into(),
                item.event_type.clone().into(),
                item.idempotency_key.clone().into(),
                item.raw_body.clone().into(),
                now.into(),
                item.state.as_str().into(),
                0i32.into(),
                item.not_before.into(),
                "".into(),
                now.into(),
                "".into(),
                trace_parent.clone().into(),
            ])
            .map_err(|e| DbErr::Custom(format!("inbox insert: {e}")))?;
    }
    insert
        .on_conflict(
            OnConflict::columns([Column::Provider, Column::IdempotencyKey])
                .do_nothing()
                .to_owned(),
        )
        .returning(Query::returning().columns([Column::Provider, Column::IdempotencyKey]));
    let backend = connection.get_database_backend();
    let mut inserted: HashMap<(String, String), ()> = HashMap::new();
    for row in connection.query_all(backend.build(&insert)).await? {
        let provider: String = row.try_get_by_index(0)?;
        let key: String = row.try_get_by_index(1)?;
        inserted.insert((provider, key), ());
    }
    Ok(items
        .iter()
        .map(|item| {
            // The first of repeated keys took the row; the rest are its duplicates.
            match inserted.remove(&(item.0.provider.to_owned(), item.0.idempotency_key.clone())) {
                Some(()) => Admission::Accepted,
                None => Admission::Duplicate,
            }
        })
        .collect())
}

/// Records the outcomes of attempts, each while its claim still stands (false for one whose
/// claim no longer did). One statement for every state and reason: all of a batch's `done`
/// items go together.
async fn settle(txn: &DatabaseTransaction, settlements: &[Settlement]) -> Result<Vec<bool>, DbErr> {
    let now = Utc::now();
    let mut moves: BTreeMap<(&str, &str, &str), Vec<&Settlement>> = BTreeMap::new();
    for settlement in settlements {
        moves
            .entry((
                settlement.state.as_str(),
                settlement.error.as_str(),
                settlement.claim.owner.as_str(),
            ))
            .or_default()
            .push(settlement);
    }
    let backend = txn.get_database_backend();
    let mut settled = HashSet::with_capacity(settlements.len());
    for ((state, error, owner), group) in moves {
        if backend == DbBackend::Postgres {
            settled.extend(settle_on_postgres(txn, state, error, owner, &group, now).await?);
            continue;
        }
        use entity::Column;
        // Each item's own time: when it is due again, or when it finished.
        let mut due = CaseStatement::new();
        for settlement in &group {
            due = due.case(
                Expr::col(Column::Id).eq(settlement.id),
                settlement.next_attempt_at,
            );
        }
        let ids = group.iter().map(|settlement| settlement.id);
        let mut update = Query::update();
        update
            .table(entity::Entity)
            .values([
                (Column::State, state.into()),
                (Column::LastError, error.into()),
                (Column::NextAttemptAt, due.into()),
                (Column::UpdatedAt, now.into()),
                (Column::ClaimedBy, "".into()),
            ])
            // The ids alone as well: SQLite finds the rows by key from a plain list.
            .and_where(Column::Id.is_in(ids))
            .and_where(
                Expr::tuple([
                    Expr::col(Column::Id).into(),
                    Expr::col(Column::Attempts).into(),
                ])
                .in_tuples(
                    group
                        .iter()
                        .map(|settlement| (settlement.id, settlement.claim.attempt)),
                ),
            )
            .and_where(Column::ClaimedBy.eq(owner))
            .and_where(Column::State.eq(InboxState::Processing.as_str()))
            .returning_col(Column::Id);
        for row in txn.query_all(backend.build(&update)).await? {
            settled.insert(row.try_get_by_index::<i64>(0)?);
        }
    }
    Ok(settlements
        .iter()
        .map(|settlement| settled.contains(&settlement.id))
        .collect())
}

/// [`settle`]'s statement for one group on PostgreSQL. Its text is the same however many items
/// it carries (they travel as one JSON parameter), so each connection prepares it once and the
/// server plans it once: as a list of `(id, attempts) IN (…)` and a `CASE` of every item, it was
/// planned afresh for each batch, 2.2 ms a batch, the largest planning cost of a drain.
async fn settle_on_postgres(
    txn: &DatabaseTransaction,
    state: &str,
    error: &str,
    owner: &str,
    group: &[&Settlement],
    now: DateTime<Utc>,
) -> Result<Vec<i64>, DbErr> {
    // Rows are locked in id order, as renewals lock them: the two never wait on each other in
    // a circle.
    const SETTLE: &str = r#"WITH moved AS MATERIALIZED (
            SELECT * FROM jsonb_to_recordset($1) AS moved(id bigint, attempts integer, due timestamptz)
        ), held AS (
            SELECT "id" FROM "inbox_items" WHERE "id" = ANY (ARRAY(SELECT id FROM moved))
            ORDER BY "id" FOR UPDATE
        )
        UPDATE "inbox_items"
        SET "state" = $2, "last_error" = $3, "next_attempt_at" = moved.due, "updated_at" = $4,
            "claimed_by" = ''
        FROM moved
        WHERE "inbox_items"."id" = ANY (ARRAY(SELECT "id" FROM held))
          AND "inbox_items"."id" = moved.id AND "inbox_items"."attempts" = moved.attempts
          AND "inbox_items"."claimed_by" = $5 AND "inbox_items"."state" = 'processing'
        RETURNING "inbox_items"."id""#;
    let moved: Vec<serde_json::Value> = group
        .iter()
        .map(|settlement| {
            serde_json::json!({
                "id": settlement.id,
                "attempts": settlement.claim.attempt,
                "due": settlement.next_attempt_at,
            })
        })
        .collect();
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        SETTLE,
        [
            serde_json::Value::Array(moved).into(),
            state.into(),
            error.into(),
            now.into(),
            owner.into(),
        ],
    );
    txn.query_all(statement)
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<i64>(0))
        .collect()
}

/// Claims up to `limit` due items for `owner`, oldest first: pending ones whose time has
/// come, and claimed ones whose claimant's lease ran out (it died). One statement; on
/// PostgreSQL rows another replica is claiming are skipped (`FOR UPDATE SKIP LOCKED`), so
/// replicas never claim the same item. Each claimed item's attempt counter goes up by one.
async fn claim(txn: &DatabaseTransaction, request: &ClaimRequest) -> Result<Vec<InboxRow>, DbErr> {
    let backend = txn.get_database_backend();
    let mut claimed = txn
        .query_all(backend.build(&claim_statement(backend, request, Utc::now())))
        .await?
        .iter()
        .map(|row| InboxRow::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?;
    claimed.sort_by_key(|row| row.id);
    Ok(claimed)
}

/// The claim's one statement, as of `now`.
pub(super) fn claim_statement(
    backend: DbBackend,
    request: &ClaimRequest,
    now: DateTime<Utc>,
) -> UpdateStatement {
    use entity::Column;
    let mut due = Query::select();
    // The states are written into the statement rather than bound: only then may PostgreSQL
    // read the items waiting through the partial index kept for them there
    // (`idx_inbox_items_waiting`), instead of every item ever kept, in id order.
    let waiting = [InboxState::Pending, InboxState::Processing]
        .map(|state| SimpleExpr::Constant(state.as_str().into()));
    due.column(Column::Id)
        .from(entity::Entity)
        .and_where(Expr::col(Column::State).is_in(waiting))
        .and_where(Column::NextAttemptAt.lte(now))
        .order_by(Column::Id, Order::Asc)
        .limit(request.limit);
    if backend == DbBackend::Postgres {
        due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    // One statement: choosing and marking cannot be split by another claimant (SQLite runs it
    // as one write; PostgreSQL skips rows being claimed elsewhere).
    let mut claim = Query::update();
    claim
        .table(entity::Entity)
        .values([
            (Column::State, InboxState::Processing.as_str().into()),
            (Column::Attempts, Expr::col(Column::Attempts).add(1)),
            (Column::ClaimedBy, request.owner.as_str().into()),
            (
                Column::NextAttemptAt,
                super::lease_end(now, request.lease).into(),
            ),
            (Column::UpdatedAt, now.into()),
        ])
        .and_where(Expr::col(Column::Id).in_subquery(due))
        .returning_all();
    claim
}
