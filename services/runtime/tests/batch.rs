//! Batches applied in one transaction: a failing item (even one whose statement fails, which
//! aborts a PostgreSQL transaction) fails alone, and the others are kept, on SQLite and
//! PostgreSQL.

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, Statement};

use callmesh_runtime::batch::{all_or_each, in_one_transaction};
use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_testkit::{TestDatabase, backends};

async fn table(database: &TestDatabase) -> DatabaseConnection {
    let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
    let db = db::connect(&url).await.expect("connect");
    db.execute_unprepared("CREATE TABLE batch_items (k TEXT PRIMARY KEY)")
        .await
        .expect("create");
    db
}

/// Inserts `key` with a plain INSERT: a key already there fails the statement.
async fn insert_one(txn: &DatabaseTransaction, key: &str) -> Result<String, DbErr> {
    let backend = txn.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "INSERT INTO batch_items (k) VALUES ($1)",
        _ => "INSERT INTO batch_items (k) VALUES (?)",
    };
    txn.execute(Statement::from_sql_and_values(backend, sql, [key.into()]))
        .await?;
    Ok(key.to_owned())
}

/// Inserts each key in turn, in one transaction.
async fn insert_all(db: &DatabaseConnection, keys: &[&str]) -> Vec<Result<String, DbErr>> {
    in_one_transaction(db, keys, async |txn, key| insert_one(txn, key).await).await
}

async fn stored(db: &DatabaseConnection) -> Vec<String> {
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT k FROM batch_items ORDER BY k",
        ))
        .await
        .expect("select");
    rows.iter()
        .map(|row| row.try_get::<String>("", "k").expect("k"))
        .collect()
}

#[tokio::test]
async fn a_failing_item_fails_alone_and_the_rest_are_kept() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let db = table(&database).await;

        let answers = insert_all(&db, &["a", "b"]).await;
        assert!(
            answers.iter().all(Result::is_ok),
            "{backend:?}: {answers:?}"
        );

        // "b" is already there, and "c" twice: the batch's transaction fails at the first of
        // them, and every item is answered as it would be alone.
        let answers = insert_all(&db, &["c", "b", "d", "c"]).await;
        let ok: Vec<bool> = answers.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [true, false, true, false], "{backend:?}: {answers:?}");
        assert_eq!(stored(&db).await, ["a", "b", "c", "d"], "{backend:?}");

        // Nothing of a batch is kept when its items all fail.
        let answers = insert_all(&db, &["a", "d"]).await;
        assert!(answers.iter().all(Result::is_err), "{backend:?}");
        assert_eq!(stored(&db).await, ["a", "b", "c", "d"], "{backend:?}");
        drop(db);
    }
}

#[tokio::test]
async fn a_batch_written_all_at_once_falls_back_to_each_item_alone() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let db = table(&database).await;
        // All keys in one multi-row INSERT; one at a time when that fails.
        let insert = async |db: &DatabaseConnection, keys: &[&str]| {
            all_or_each(
                db,
                keys,
                async |txn, keys: &[&str]| {
                    let backend = txn.get_database_backend();
                    let placeholders: Vec<String> = (1..=keys.len())
                        .map(|n| match backend {
                            sea_orm::DbBackend::Postgres => format!("(${n})"),
                            _ => "(?)".to_owned(),
                        })
                        .collect();
                    txn.execute(Statement::from_sql_and_values(
                        backend,
                        format!(
                            "INSERT INTO batch_items (k) VALUES {}",
                            placeholders.join(",")
                        ),
                        keys.iter().map(|key| (*key).into()),
                    ))
                    .await?;
                    Ok::<_, DbErr>(keys.iter().map(|key| (*key).to_owned()).collect())
                },
                async |txn, key: &&str| insert_one(txn, key).await,
            )
            .await
        };
        let answers = insert(&db, &["a", "b", "c"]).await;
        assert!(
            answers.iter().all(Result::is_ok),
            "{backend:?}: {answers:?}"
        );
        let answers = insert(&db, &["d", "a", "e"]).await;
        let ok: Vec<bool> = answers.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [true, false, true], "{backend:?}: {answers:?}");
        assert_eq!(stored(&db).await, ["a", "b", "c", "d", "e"], "{backend:?}");
    }
}
