//! Analyses and interview evaluations are numbered per subject (1, 2, 3…) under a unique
//! index; two writers racing for one number both succeed, the loser taking the next.

use std::future::Future;

use sea_orm::DbErr;

use callmesh_runtime::ServiceError;
use callmesh_runtime::errors::is_unique_violation;

/// Inserts the next version: `existing` counts the versions so far, `insert` writes version n
/// (answering the rows written: 0 when its idempotency key was already used). Answers whether
/// a row was written. Version 1 is tried first without counting, since most subjects are new
/// (every finished call's first analysis); a taken number is counted and the next one tried.
pub async fn insert_next<C, CF, I, IF>(existing: C, insert: I) -> Result<bool, ServiceError>
where
    C: Fn() -> CF,
    CF: Future<Output = Result<u64, DbErr>>,
    I: Fn(i32) -> IF,
    IF: Future<Output = Result<u64, DbErr>>,
{
    let mut version = 1;
    for _ in 0..6 {
        match insert(version).await {
            Ok(written) => return Ok(written == 1),
            Err(e) if is_unique_violation(&e) => {
                version = i32::try_from(existing().await? + 1).unwrap_or(i32::MAX);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServiceError::Unavailable(
        "too many concurrent writers of one subject's versions".into(),
    ))
}
