//! Database connection and migration, the same code on SQLite and PostgreSQL.
//!
//! Each process owns one database. `<NAME>_DATABASE_URL` wins, then `DATABASE_URL`, then a
//! SQLite file `<CALLMESH_DATA_DIR or ./data>/<name>.db`. Services sharing one PostgreSQL
//! database through `DATABASE_URL` stay apart: their table names are disjoint and each keeps its
//! own migration table (`seaql_migrations_<name>`).

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::config::{Component, ConfigError, env_or, env_parse, env_var};

/// A validated database URL and the variable it came from (for error messages).
#[derive(Clone)]
pub struct DatabaseUrl {
    url: String,
    source: String,
}

impl std::fmt::Debug for DatabaseUrl {
    // URLs can carry passwords: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({}, from {})", self.redacted(), self.source)
    }
}

impl DatabaseUrl {
    /// Validates `url`, read from variable `source`.
    pub fn parse(url: &str, source: &str) -> Result<Self, ConfigError> {
        let url = url.trim();
        let is_postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let is_sqlite = url.starts_with("sqlite:");
        if !is_postgres && !is_sqlite {
            return Err(ConfigError::invalid(
                source,
                "expected a postgres://user@host/db or sqlite://path URL",
            ));
        }
        if is_postgres {
            let rest = url.split_once("://").map(|(_, rest)| rest).unwrap_or("");
            let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
            if host.is_empty() || host.starts_with('/') || host.starts_with(':') {
                return Err(ConfigError::invalid(
                    source,
                    "the postgres URL names no host",
                ));
            }
        }
        let mut url = url.to_owned();
        if is_sqlite && !url.contains('?') && !url.contains(":memory:") {
            // Create the file on first start rather than fail.
            url.push_str("?mode=rwc");
        }
        Ok(DatabaseUrl {
            url,
            source: source.to_owned(),
        })
    }

    /// The URL for `component` from the environment.
    pub fn from_env(component: Component) -> Result<Self, ConfigError> {
        let own = component.database_var();
        if let Some(url) = env_var(&own) {
            return Self::parse(&url, &own);
        }
        if let Some(url) = env_var("DATABASE_URL") {
            return Self::parse(&url, "DATABASE_URL");
        }
        let dir = env_or("CALLMESH_DATA_DIR", "./data");
        std::fs::create_dir_all(&dir).map_err(|e| {
            ConfigError::invalid("CALLMESH_DATA_DIR", format!("cannot create {dir}: {e}"))
        })?;
        Self::parse(
            &format!("sqlite://{dir}/{}.db", component.name()),
            "CALLMESH_DATA_DIR",
        )
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The variable this URL came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }

    /// `source` as the error of connecting to this database, naming it without its password.
    fn connect_error(&self, source: DbErr) -> DatabaseError {
        DatabaseError::Connect {
            variable: self.source.clone(),
            url: self.redacted(),
            source,
        }
    }

    /// The URL with any password replaced, for logs.
    pub fn redacted(&self) -> String {
        match self.url.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split(':').next().unwrap_or("");
                    format!("{scheme}://{user}:***@{host}")
                }
                None => self.url.clone(),
            },
            None => self.url.clone(),
        }
    }
}

/// Why a database could not be used at start-up.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("cannot connect to the database given by {variable} ({url}): {source}")]
    Connect {
        variable: String,
        url: String,
        source: DbErr,
    },
    #[error("migrating the {component} database failed: {source}")]
    Migrate { component: String, source: DbErr },
}

/// Opens a pool on `url`. On SQLite: WAL, `synchronous=NORMAL`, and durability by group fsync
/// ([`crate::Durability`]). On PostgreSQL: large values compressed with LZ4 where the server
/// offers it.
pub async fn connect(url: &DatabaseUrl) -> Result<DatabaseConnection, DatabaseError> {
    let connect_error = |source| url.connect_error(source);
    // SQLite has one writer at a time. A single pooled connection serialises access in the
    // pool instead of failing transactions with SQLITE_BUSY when two upgrade a read to a write
    // (and group durability relies on it), so the setting sizes PostgreSQL pools only.
    let max_connections = if url.is_postgres() {
        env_parse("DATABASE_MAX_CONNECTIONS", 10u32)
            .map_err(|e| connect_error(DbErr::Custom(e.to_string())))?
            .max(1)
    } else {
        1
    };
    let mut options = pool_options(url, max_connections);
    if !url.is_postgres() && !url.as_str().contains(":memory:") {
        // WAL: readers never wait on the writer. NORMAL: a commit reaches the WAL, not the disk;
        // requests that wrote are answered only after `Durability::barrier` has forced it there,
        // one fsync for every request waiting at that moment (see `durability`).
        options.map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                // The default 2 MiB page cache misses on busy tables, a `pread` each time; 32
                // MiB is an upper bound, not an allocation.
                .pragma("cache_size", "-32768")
                // Checkpoints copy the WAL back into the database and fsync it. They run on a
                // connection of their own, beside the writes (see `durability`); one inside a
                // commit, where the connection and every request behind it wait for it, comes
                // only if those fall behind by 16,000 pages (64 MiB).
                .pragma("wal_autocheckpoint", "16000")
        });
    }
    let db = Database::connect(options.clone())
        .await
        .map_err(connect_error)?;
    if url.is_postgres() && offers_lz4(&db).await {
        // Large values (webhook bodies, analyses) are compressed with LZ4 instead of the
        // default pglz, several times faster to compress: pglz was the PostgreSQL server's
        // largest single cost in a drain. Old values keep their method and read as before.
        db.close().await.map_err(connect_error)?;
        options.map_sqlx_postgres_opts(|postgres| {
            postgres.options([("default_toast_compression", "lz4")])
        });
        return Database::connect(options).await.map_err(connect_error);
    }
    Ok(db)
}

/// Whether the PostgreSQL server behind `db` can compress with LZ4 (version 14 on, built
/// with it).
async fn offers_lz4(db: &DatabaseConnection) -> bool {
    let probe = Statement::from_string(
        DbBackend::Postgres,
        "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' \
         AND 'lz4' = ANY(enumvals)",
    );
    matches!(db.query_one(probe).await, Ok(Some(_)))
}

/// A pool on `url` for writes a crash may lose without harm (rate-limit counters), beside `db`,
/// the pool for everything else. On PostgreSQL its commits do not wait for the WAL flush
/// (`synchronous_commit=off`, for these connections only): a counter on the path of a ringing
/// phone does not queue behind the fsyncs of every other commit, and a crash forgets at most
/// the last fraction of a second of counts. On SQLite, `db` itself, whose commits do not wait
/// for an fsync unless the caller asks for one (see `durability`).
pub async fn connect_best_effort(
    url: &DatabaseUrl,
    db: &DatabaseConnection,
) -> Result<DatabaseConnection, DatabaseError> {
    if !url.is_postgres() {
        return Ok(db.clone());
    }
    // Its four connections are opened at start, so the first rings after a quiet spell do not
    // wait for a connection to be set up (a TLS handshake and a login).
    let mut options = pool_options(url, BEST_EFFORT_CONNECTIONS);
    options.min_connections(BEST_EFFORT_CONNECTIONS);
    options.map_sqlx_postgres_opts(|postgres| postgres.options([("synchronous_commit", "off")]));
    Database::connect(options)
        .await
        .map_err(|source| url.connect_error(source))
}

/// The size of the pool [`connect_best_effort`] opens on PostgreSQL.
const BEST_EFFORT_CONNECTIONS: u32 = 4;

/// What every pool on `url` shares: at most `max_connections`, one kept open.
fn pool_options(url: &DatabaseUrl, max_connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.as_str());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // A ping before every use is a round trip on every query; a broken connection fails
        // its query instead, and the caller's retry gets a fresh one.
        .test_before_acquire(false)
        .sqlx_logging(false);
    options
}

/// Applies `M`'s pending migrations. On PostgreSQL the whole run holds a transaction-scoped
/// advisory lock, so replicas starting together migrate one after the other: the second finds
/// nothing left to do.
pub async fn migrate<M: MigratorTrait>(
    db: &DatabaseConnection,
    component: Component,
) -> Result<(), DatabaseError> {
    let migrate_error = |source| DatabaseError::Migrate {
        component: component.name().to_owned(),
        source,
    };
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await.map_err(migrate_error)?;
            txn.execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({})",
                advisory_lock_key(component)
            ))
            .await
            .map_err(migrate_error)?;
            M::up(&txn, None).await.map_err(migrate_error)?;
            txn.commit().await.map_err(migrate_error)?;
        }
        _ => M::up(db, None).await.map_err(migrate_error)?,
    }
    Ok(())
}

/// A stable lock key per component (FNV-1a of its name), so different services sharing one
/// PostgreSQL database do not wait on each other.
pub fn advisory_lock_key(component: Component) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("callmesh:migrate:{}", component.name()).bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_urls_of_other_schemes_naming_the_variable() {
        let err = DatabaseUrl::parse("mysql://root@localhost/db", "LEAD_DATABASE_URL")
            .expect_err("mysql is not supported");
        assert_eq!(err.variable, "LEAD_DATABASE_URL");
        let err = DatabaseUrl::parse("not a url", "DATABASE_URL").expect_err("garbage");
        assert_eq!(err.variable, "DATABASE_URL");
        assert!(DatabaseUrl::parse("postgres://", "DATABASE_URL").is_err());
    }

    #[test]
    fn sqlite_files_are_created_on_first_start() {
        let url = DatabaseUrl::parse("sqlite://data/lead.db", "X").expect("valid");
        assert_eq!(url.as_str(), "sqlite://data/lead.db?mode=rwc");
    }

    #[test]
    fn passwords_never_reach_logs() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db:5432/callmesh", "X").expect("ok");
        assert!(!url.redacted().contains("s3cret"));
        assert!(!format!("{url:?}").contains("s3cret"));
    }

    #[test]
    fn lock_keys_differ_per_component() {
        let keys: std::collections::HashSet<_> =
            Component::ALL.into_iter().map(advisory_lock_key).collect();
        assert_eq!(keys.len(), Component::ALL.len());
    }
}
