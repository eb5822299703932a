//! The pools `db::connect` opens, against a real database.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_testkit::{Backend, TestDatabase, backends};

#[tokio::test]
async fn large_values_are_compressed_with_lz4_where_postgresql_offers_it() {
    for backend in backends().await {
        if backend != Backend::Postgres {
            continue;
        }
        let database = TestDatabase::create(backend).await;
        let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
        let pool = db::connect(&url).await.expect("connect");
        let query = |sql: &str| Statement::from_string(DbBackend::Postgres, sql);
        let offers_lz4 = pool
            .query_one(query(
                "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' \
                 AND 'lz4' = ANY(enumvals)",
            ))
            .await
            .expect("read the settings")
            .is_some();
        pool.execute_unprepared(
            "CREATE TABLE bodies (body bytea); \
             INSERT INTO bodies VALUES (convert_to(repeat('{\"turn\": \"hello\"}', 1000), 'UTF8'))",
        )
        .await
        .expect("store a 17 KB body");
        let row = pool
            .query_one(query(
                "SELECT pg_column_compression(body) AS method, length(body) AS size FROM bodies",
            ))
            .await
            .expect("read it back")
            .expect("a row");
        let method: String = row.try_get("", "method").expect("method");
        let size: i32 = row.try_get("", "size").expect("size");
        assert_eq!(size, 17_000, "stored whole");
        assert_eq!(method, if offers_lz4 { "lz4" } else { "pglz" });
    }
}
