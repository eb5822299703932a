//! Throwaway databases for tests: a SQLite file in a fresh directory, and — when PostgreSQL is
//! reachable — a freshly created PostgreSQL database with a unique name, dropped when the
//! handle goes out of scope (even when the test panics).
//!
//! `CALLMESH_TEST_POSTGRES_URL` points at the server (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `CALLMESH_REQUIRE_POSTGRES=1` turns an
//! unreachable server into a failure instead of a skip, which is how CI proves both backends.

use std::path::PathBuf;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends this run tests: SQLite always, PostgreSQL when reachable (or required).
pub async fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    match admin_connection().await {
        Ok(_) => backends.push(Backend::Postgres),
        Err(error) if postgres_required() => {
            panic!("PostgreSQL is required (CALLMESH_REQUIRE_POSTGRES) but unreachable: {error}")
        }
        Err(error) => eprintln!("skipping PostgreSQL: unreachable ({error})"),
    }
    backends
}

fn postgres_required() -> bool {
    std::env::var("CALLMESH_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true")
}

fn admin_url() -> String {
    std::env::var("CALLMESH_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

async fn admin_connection() -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(admin_url());
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(3))
        .sqlx_logging(false);
    Database::connect(options).await
}

/// A database that exists for one test.
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Directory(PathBuf),
    PostgresDatabase(String),
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> TestDatabase {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("callmesh-test-{unique}"));
                std::fs::create_dir_all(&dir).expect("create a temporary directory");
                TestDatabase {
                    url: format!("sqlite://{}/test.db", dir.display()),
                    cleanup: Cleanup::Directory(dir),
                }
            }
            Backend::Postgres => {
                let name = format!("callmesh_test_{unique}");
                let admin = admin_connection().await.expect("connect to PostgreSQL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create a test database");
                let base = admin_url();
                let server = base
                    .rsplit_once('/')
                    .map(|(server, _)| server)
                    .unwrap_or(&base);
                TestDatabase {
                    url: format!("{server}/{name}"),
                    cleanup: Cleanup::PostgresDatabase(name),
                }
            }
        }
    }

    /// The URL to hand to a service as its database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::PostgresDatabase(name) => {
                // Drop runs inside the test's runtime: do the async work on a thread of its own.
                let name = name.clone();
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async {
                        let admin = admin_connection()
                            .await
                            .map_err(|e| std::io::Error::other(e.to_string()))?;
                        admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await
                            .map_err(|e| std::io::Error::other(e.to_string()))?;
                        Ok::<_, std::io::Error>(())
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("could not drop a test database: {dropped:?}");
                }
            }
        }
    }
}

/// Waits until `check` holds, polling every 20 ms, for at most `deadline`.
pub async fn wait_until<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let give_up = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= give_up {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
