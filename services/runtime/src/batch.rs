//! The server's half of the `Batch…` RPCs: many requests of one kind applied in one transaction,
//! so a batch pays for one commit (and on SQLite one group fsync) instead of one per request.

use std::collections::HashSet;

use callmesh_proto::ItemResult;
use sea_orm::sea_query::{IntoColumnRef, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, Insert,
    QueryTrait, TransactionTrait,
};
use tonic::Status;

/// Inserts `rows` with one statement, skipping each row that conflicts with one stored (on any
/// unique key), and answers the `key` (a text column) of each row it wrote: a row left out is
/// one whose key was taken, before or earlier in the same statement. No rows, no statement.
pub async fn insert_new<A: ActiveModelTrait>(
    txn: &DatabaseTransaction,
    rows: Vec<A>,
    key: impl IntoColumnRef,
) -> Result<HashSet<String>, DbErr> {
    insert_new_on(txn, rows, OnConflict::new().do_nothing().to_owned(), key).await
}

/// As [`insert_new`], skipping only the rows `conflict` (an `ON CONFLICT (…) DO NOTHING` with
/// its own target) matches.
pub async fn insert_new_on<A: ActiveModelTrait>(
    txn: &DatabaseTransaction,
    rows: Vec<A>,
    conflict: OnConflict,
    key: impl IntoColumnRef,
) -> Result<HashSet<String>, DbErr> {
    let mut written = HashSet::new();
    if rows.is_empty() {
        return Ok(written);
    }
    let mut query = Insert::many(rows).on_conflict(conflict).into_query();
    query.returning(Query::returning().column(key));
    for row in txn
        .query_all(txn.get_database_backend().build(&query))
        .await?
    {
        written.insert(row.try_get_by_index::<String>(0)?);
    }
    Ok(written)
}

/// Runs `run` for every item in one transaction and commits once. If any item fails, nothing
/// of the batch is kept and every item runs again in a transaction of its own, so an item's
/// answer, failed or not, is the one it would have had alone and one bad item cannot fail the
/// others. `run` must therefore leave nothing behind outside the transaction before it commits.
pub async fn in_one_transaction<I, T, E, F>(
    db: &DatabaseConnection,
    items: &[I],
    run: F,
) -> Vec<Result<T, E>>
where
    E: From<DbErr>,
    F: AsyncFn(&DatabaseTransaction, &I) -> Result<T, E>,
{
    // Not `all_or_each` with a closure over `run`: a closure borrowing another makes the
    // handlers' futures fail the compiler's `Send` check (a higher-ranked lifetime).
    if items.len() > 1
        && let Ok(answers) = together(db, items, &run).await
    {
        return answers.into_iter().map(Ok).collect();
    }
    let mut answers = Vec::with_capacity(items.len());
    for item in items {
        answers.push(alone(db, item, &run).await);
    }
    answers
}

/// Like [`in_one_transaction`], but the items go to `together` all at once (which can write
/// them with fewer statements than one item at a time), and to `alone` one by one when that
/// fails.
pub async fn all_or_each<I, T, E, A, B>(
    db: &DatabaseConnection,
    items: &[I],
    together: A,
    each: B,
) -> Vec<Result<T, E>>
where
    E: From<DbErr>,
    A: AsyncFn(&DatabaseTransaction, &[I]) -> Result<Vec<T>, E>,
    B: AsyncFn(&DatabaseTransaction, &I) -> Result<T, E>,
{
    if items.len() > 1
        && let Ok(answers) = all_at_once(db, items, &together).await
    {
        return answers.into_iter().map(Ok).collect();
    }
    let mut answers = Vec::with_capacity(items.len());
    for item in items {
        answers.push(alone(db, item, &each).await);
    }
    answers
}

async fn all_at_once<I, T, E, A>(
    db: &DatabaseConnection,
    items: &[I],
    together: &A,
) -> Result<Vec<T>, E>
where
    E: From<DbErr>,
    A: AsyncFn(&DatabaseTransaction, &[I]) -> Result<Vec<T>, E>,
{
    let txn = db.begin().await?;
    match together(&txn, items).await {
        Ok(answers) if answers.len() == items.len() => {
            txn.commit().await?;
            Ok(answers)
        }
        Ok(_) => {
            let _ = txn.rollback().await;
            Err(DbErr::Custom("a batch got more or fewer answers than items".into()).into())
        }
        Err(error) => {
            let _ = txn.rollback().await;
            Err(error)
        }
    }
}

async fn together<I, T, E, F>(db: &DatabaseConnection, items: &[I], run: &F) -> Result<Vec<T>, E>
where
    E: From<DbErr>,
    F: AsyncFn(&DatabaseTransaction, &I) -> Result<T, E>,
{
    let txn = db.begin().await?;
    let mut answers = Vec::with_capacity(items.len());
    for item in items {
        match run(&txn, item).await {
            Ok(answer) => answers.push(answer),
            Err(error) => {
                // Dropped, it would roll back as well, but only before the connection's next use.
                let _ = txn.rollback().await;
                return Err(error);
            }
        }
    }
    txn.commit().await?;
    Ok(answers)
}

async fn alone<I, T, E, F>(db: &DatabaseConnection, item: &I, run: &F) -> Result<T, E>
where
    E: From<DbErr>,
    F: AsyncFn(&DatabaseTransaction, &I) -> Result<T, E>,
{
    let txn = db.begin().await?;
    match run(&txn, item).await {
        Ok(answer) => {
            txn.commit().await?;
            Ok(answer)
        }
        Err(error) => {
            let _ = txn.rollback().await;
            Err(error)
        }
    }
}

/// The most items one batch may carry; more is INVALID_ARGUMENT, so one call cannot hold a
/// database's only writer for long.
pub const MAX_ITEMS: usize = 1_000;

/// Answers a `Batch…` RPC: every item is checked by `parse` (an invalid item is answered with its
/// own error), the valid ones are applied together by `apply`, and `respond` makes each result
/// the response the item alone would have had. Answers are in the order of `items`.
pub async fn answer<Q, P, T, E, R>(
    items: Vec<Q>,
    parse: impl Fn(Q) -> Result<P, Status>,
    apply: impl AsyncFnOnce(Vec<P>) -> Vec<Result<T, E>>,
    respond: impl Fn(T) -> R::Response,
) -> Result<Vec<R>, Status>
where
    E: Into<Status>,
    R: ItemResult,
{
    if items.len() > MAX_ITEMS {
        return Err(Status::invalid_argument(format!(
            "items: {} in one batch, at most {MAX_ITEMS}",
            items.len()
        )));
    }
    let mut answers: Vec<Option<Result<R::Response, Status>>> = Vec::with_capacity(items.len());
    let mut valid = Vec::with_capacity(items.len());
    let mut slots = Vec::with_capacity(items.len());
    for item in items {
        match parse(item) {
            Ok(parsed) => {
                slots.push(answers.len());
                valid.push(parsed);
                answers.push(None);
            }
            Err(status) => answers.push(Some(Err(status))),
        }
    }
    let applied = apply(valid).await;
    for (slot, result) in slots.into_iter().zip(applied) {
        answers[slot] = Some(result.map(&respond).map_err(Into::into));
    }
    Ok(answers
        .into_iter()
        .map(|answer| {
            R::from_result(
                answer.unwrap_or_else(|| Err(Status::internal("a batch item was not applied"))),
            )
        })
        .collect())
}
