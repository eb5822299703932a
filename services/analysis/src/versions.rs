//! Analyses and interview evaluations are numbered per subject (1, 2, 3…) under a unique
//! index; two writers racing for one number both succeed, the loser taking the next.

use std::future::Future;

use sea_orm::DbErr;

use callmesh_runtime::ServiceError;

/// Inserts the next version: `existing` counts the versions so far, `insert` writes version n
/// unless the row would break a unique index (answering the rows written: `INSERT … ON CONFLICT
/// DO NOTHING`), and `key_used` says whether the idempotency key already has its row. Answers
/// whether a row was written. Version 1 is tried first without counting, since most subjects are
/// new (every finished call's first analysis); a taken number is counted and the next one tried.
/// No statement fails on a conflict, so this runs as well inside a PostgreSQL transaction, which
/// a failed statement would abort.
pub async fn insert_next<C, CF, I, IF, K, KF>(
    existing: C,
    insert: I,
    key_used: K,
) -> Result<bool, ServiceError>
where
    C: Fn() -> CF,
    CF: Future<Output = Result<u64, DbErr>>,
    I: Fn(i32) -> IF,
    IF: Future<Output = Result<u64, DbErr>>,
    K: Fn() -> KF,
    KF: Future<Output = Result<bool, DbErr>>,
{
    let mut version = 1;
    for _ in 0..6 {
        if insert(version).await? == 1 {
            return Ok(true);
        }
        if key_used().await? {
            return Ok(false);
        }
        version = i32::try_from(existing().await? + 1).unwrap_or(i32::MAX);
    }
    Err(ServiceError::Unavailable(
        "too many concurrent writers of one subject's versions".into(),
    ))
}
