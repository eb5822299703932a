//! Group durability for SQLite: many commits, one `fsync`.
//!
//! SQLite in WAL mode with `synchronous=FULL` fsyncs the write-ahead log inside every commit,
//! while holding the database's only write lock: on a disk where an fsync costs ~2 ms that caps a
//! database at a few hundred commits a second however many requests are waiting. Instead, the
//! databases run with `synchronous=NORMAL` (a commit is written to the WAL, not yet forced to
//! disk, and survives a crash of the process) and a request that wrote waits on
//! [`Durability::barrier`] before it is answered. The barrier hands out a ticket; one syncer task
//! per database forces the WAL to disk for every ticket handed out before its fsync started, so
//! all the requests that committed while the previous fsync ran share the next one. A request is
//! therefore answered only when its writes would survive a power cut, and the database commits
//! at the speed of its CPU, not of its disk.
//!
//! PostgreSQL groups concurrent commits into one WAL flush on its own; there the barrier is free.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::db::DatabaseUrl;

/// Makes commits durable in groups; cheap to clone. See the module docs.
#[derive(Clone, Default)]
pub struct Durability {
    syncer: Option<Arc<Syncer>>,
}

impl std::fmt::Debug for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.syncer {
            Some(syncer) => write!(f, "Durability(group fsync of {})", syncer.wal.display()),
            None => f.write_str("Durability(at commit)"),
        }
    }
}

struct Syncer {
    wal: PathBuf,
    /// Tickets handed out so far.
    requested: AtomicU64,
    /// The highest ticket whose commits are on disk.
    synced: watch::Sender<u64>,
    wake: Notify,
}

impl Durability {
    /// Durability for `url`: group fsync for a SQLite file, nothing to add for PostgreSQL
    /// (durable at commit) or an in-memory database. Starts the syncer task.
    pub fn for_database(url: &DatabaseUrl) -> Durability {
        let Some(database) = sqlite_file(url.as_str()) else {
            return Durability::default();
        };
        let mut wal = database.into_os_string();
        wal.push("-wal");
        let syncer = Arc::new(Syncer {
            wal: PathBuf::from(wal),
            requested: AtomicU64::new(0),
            synced: watch::Sender::new(0),
            wake: Notify::new(),
        });
        tokio::spawn(sync_loop(Arc::downgrade(&syncer)));
        tokio::spawn(checkpoint_loop(
            Arc::downgrade(&syncer),
            url.as_str().to_owned(),
        ));
        Durability {
            syncer: Some(syncer),
        }
    }

    /// True when commits need [`Durability::barrier`] to be durable (SQLite files).
    pub fn is_grouped(&self) -> bool {
        self.syncer.is_some()
    }

    /// Returns once every commit made before the call is on disk.
    pub async fn barrier(&self) {
        let Some(syncer) = &self.syncer else {
            return;
        };
        let ticket = syncer.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut synced = syncer.synced.subscribe();
        syncer.wake.notify_one();
        // The sender lives as long as `syncer`, which this handle keeps alive.
        let _ = synced.wait_for(|done| *done >= ticket).await;
    }
}

/// While commits keep arriving, an fsync starts this long after the previous one ended, so
/// that more commits share it (PostgreSQL's `commit_delay`). `SQLITE_COMMIT_DELAY_US` sets it;
/// none by default: the writes that matter come in batches already (the inbox's writer, the
/// services' batch RPCs), and the fsyncs back to back already share themselves among whatever
/// committed while the last one ran. Measured against a 1 ms delay, run alternately: durable
/// ingest 8,347, 7,995 → 9,866, 9,047/s, with processing and the 500/s phase unchanged.
fn commit_delay() -> Duration {
    static DELAY: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
        match crate::config::env_parse("SQLITE_COMMIT_DELAY_US", 0u64) {
            Ok(micros) => Duration::from_micros(micros),
            Err(error) => {
                tracing::warn!(%error, "using no commit delay");
                Duration::ZERO
            }
        }
    });
    *DELAY
}

async fn sync_loop(syncer: std::sync::Weak<Syncer>) {
    let mut known_inode: Option<u64> = None;
    let mut busy = false;
    loop {
        let Some(strong) = syncer.upgrade() else {
            return;
        };
        if *strong.synced.borrow() >= strong.requested.load(Ordering::SeqCst) {
            busy = false;
            // Re-check now and then: the last handle may have gone while nothing was asked.
            let _ = tokio::time::timeout(Duration::from_secs(1), strong.wake.notified()).await;
            continue;
        }
        let delay = commit_delay();
        if busy && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        busy = true;
        let target = strong.requested.load(Ordering::SeqCst);
        let wal = strong.wal.clone();
        let mut seen = known_inode;
        match tokio::task::spawn_blocking(move || sync_file(&wal, &mut seen).map(|()| seen)).await {
            Ok(Ok(seen)) => {
                known_inode = seen;
                strong.synced.send_replace(target);
            }
            Ok(Err(error)) => {
                tracing::error!(%error, wal = %strong.wal.display(), "cannot fsync the write-ahead log; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(join) => {
                tracing::error!(%join, "the fsync task failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// How often the write-ahead log is copied back into the database, beside the writes.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Copies the write-ahead log back into the database file every [`CHECKPOINT_EVERY`], on a
/// connection of its own, for as long as the database's [`Durability`] is in use.
///
/// Left to SQLite, a checkpoint runs inside the commit that crosses `wal_autocheckpoint`: it
/// copies the log's pages and fsyncs the database file while the database's one connection
/// waits, and every request queued behind that commit with it (~40 ms on this kind of disk).
/// Here a passive checkpoint runs on another connection: writers go on appending to the log
/// while it copies, and once it has copied everything the next write starts the log again from
/// its beginning. `wal_autocheckpoint` stays as the backstop, should this one fall behind.
/// With `synchronous=NORMAL` a checkpoint fsyncs the log before copying it and the database
/// file after, so nothing it copies depends on the group fsync.
async fn checkpoint_loop(syncer: std::sync::Weak<Syncer>, url: String) {
    use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
    use sea_orm::sqlx::{ConnectOptions, Connection};
    use std::str::FromStr;

    let mut connection: Option<SqliteConnection> = None;
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if syncer.strong_count() == 0 {
            if let Some(connection) = connection.take() {
                let _ = connection.close().await;
            }
            return;
        }
        if connection.is_none() {
            let options = match SqliteConnectOptions::from_str(&url) {
                Ok(options) => options.busy_timeout(Duration::from_secs(1)),
                Err(error) => {
                    tracing::error!(%error, "cannot open a checkpointing connection; SQLite checkpoints at commits instead");
                    return;
                }
            };
            match options.connect().await {
                Ok(opened) => connection = Some(opened),
                Err(error) => {
                    tracing::warn!(%error, "cannot open a checkpointing connection; retrying");
                    continue;
                }
            }
        }
        let Some(open) = connection.as_mut() else {
            continue;
        };
        if let Err(error) = sea_orm::sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut *open)
            .await
        {
            tracing::warn!(%error, "checkpoint failed; retrying");
            connection = None;
        }
    }
}

/// Forces `wal` to disk, and its directory entry the first time a WAL file is seen (it may have
/// just been created). A missing WAL holds nothing to force: SQLite removes it only after
/// checkpointing it into the (synced) database file.
fn sync_file(wal: &std::path::Path, known: &mut Option<u64>) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::File::open(wal) {
        Ok(file) => {
            file.sync_data()?;
            let inode = file.metadata()?.ino();
            if *known != Some(inode) {
                if let Some(dir) = wal.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::File::open(dir)?.sync_all()?;
                }
                *known = Some(inode);
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// A tower layer for a gRPC server: a call that may have written is answered only after
/// [`Durability::barrier`]. Calls that only read (`Get…`, `List…`, `Search…`, `Resolve…`,
/// `Authenticate…`, streams, health, reflection) are answered at once, and so is a call whose
/// handler found it had nothing to write and said so with [`NothingWritten`].
#[derive(Clone)]
pub struct DurableWrites(pub Durability);

/// Put in a response's extensions by a handler of a method that may write, when this call
/// wrote nothing (the lead already existed, the key had already been answered): the answer
/// then need not wait for an fsync.
#[derive(Clone, Copy, Debug)]
pub struct NothingWritten;

/// `response`, marked as having written nothing.
pub fn nothing_written<T>(mut response: tonic::Response<T>) -> tonic::Response<T> {
    response.extensions_mut().insert(NothingWritten);
    response
}

impl<S> tower::Layer<S> for DurableWrites {
    type Service = DurableWritesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DurableWritesService {
            inner,
            durability: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct DurableWritesService<S> {
    inner: S,
    durability: Durability,
}

impl<S, B, R> tower::Service<http::Request<B>> for DurableWritesService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let durability = if self.durability.is_grouped() && may_write(request.uri().path()) {
            Some(self.durability.clone())
        } else {
            None
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if let Some(durability) = durability
                && response.extensions().get::<NothingWritten>().is_none()
            {
                durability.barrier().await;
            }
            Ok(response)
        })
    }
}

/// Whether the gRPC method at `path` (`/package.Service/Method`) may write.
fn may_write(path: &str) -> bool {
    if path.starts_with("/grpc.") {
        return false;
    }
    let method = path.rsplit('/').next().unwrap_or(path);
    const READS: [&str; 6] = [
        "Get",
        "List",
        "Search",
        "Resolve",
        "Authenticate",
        "Subscribe",
    ];
    !READS.iter().any(|prefix| method.starts_with(prefix))
}

/// The file behind a `sqlite:` URL, or `None` for other databases and in-memory ones.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_file_behind_sqlite_urls_only() {
        assert_eq!(
            sqlite_file("sqlite://data/lead.db?mode=rwc"),
            Some(PathBuf::from("data/lead.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:/tmp/x.db"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }

    /// Group durability of `x.db` in a new directory (the caller removes it).
    fn sqlite_in_temp_dir() -> (Durability, PathBuf) {
        let dir = std::env::temp_dir().join(format!("durability-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = DatabaseUrl::parse(&format!("sqlite://{}/x.db", dir.display()), "TEST")
            .expect("valid url");
        (Durability::for_database(&url), dir)
    }

    #[tokio::test]
    async fn every_waiter_is_released_by_a_sync_that_started_after_it_asked() {
        let (durability, dir) = sqlite_in_temp_dir();
        assert!(durability.is_grouped());
        std::fs::write(dir.join("x.db-wal"), b"frames").expect("write a wal");
        let waiters: Vec<_> = (0..50)
            .map(|_| {
                let durability = durability.clone();
                tokio::spawn(async move { durability.barrier().await })
            })
            .collect();
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(10), waiter)
                .await
                .expect("released")
                .expect("joined");
        }
        let syncer = durability.syncer.as_ref().expect("grouped");
        assert_eq!(*syncer.synced.borrow(), 50, "all 50 tickets covered");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn only_calls_that_may_write_wait() {
        assert!(may_write("/callmesh.lead.v1.LeadService/FindOrCreateLead"));
        assert!(may_write(
            "/callmesh.notification.v1.NotificationService/Publish"
        ));
        assert!(may_write(
            "/callmesh.context.v1.ContextService/BuildInitiationData"
        ));
        assert!(!may_write("/callmesh.lead.v1.LeadService/GetLead"));
        assert!(!may_write(
            "/callmesh.notification.v1.NotificationService/Subscribe"
        ));
        assert!(!may_write("/grpc.health.v1.Health/Check"));
    }

    #[tokio::test]
    async fn a_call_that_wrote_nothing_is_answered_without_a_sync() {
        use tower::{Layer, Service, ServiceExt};
        let (durability, dir) = sqlite_in_temp_dir();
        let syncer = durability.syncer.clone().expect("grouped");
        let handler = tower::service_fn(|request: http::Request<()>| async move {
            let mut response = http::Response::new(());
            if request.uri().path().ends_with("/Found") {
                response.extensions_mut().insert(NothingWritten);
            }
            Ok::<_, std::convert::Infallible>(response)
        });
        let mut service = DurableWrites(durability).layer(handler);
        let call = |path: &str| {
            http::Request::builder()
                .uri(path)
                .body(())
                .expect("request")
        };

        service
            .ready()
            .await
            .expect("ready")
            .call(call("/callmesh.lead.v1.LeadService/Found"))
            .await
            .expect("answered");
        assert_eq!(syncer.requested.load(Ordering::SeqCst), 0, "no sync asked");

        service
            .ready()
            .await
            .expect("ready")
            .call(call("/callmesh.lead.v1.LeadService/Create"))
            .await
            .expect("answered");
        assert_eq!(
            syncer.requested.load(Ordering::SeqCst),
            1,
            "the write waited"
        );
        assert_eq!(*syncer.synced.borrow(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_log_is_copied_into_the_database_beside_the_writes() {
        use sea_orm::ConnectionTrait;
        let dir = std::env::temp_dir().join(format!("checkpoint-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = DatabaseUrl::parse(&format!("sqlite://{}/x.db", dir.display()), "TEST")
            .expect("valid url");
        let db = crate::db::connect(&url).await.expect("connect");
        let durability = Durability::for_database(&url);
        db.execute_unprepared("CREATE TABLE t (body BLOB)")
            .await
            .expect("table");
        // 2 MiB: far below the 64 MiB at which a commit would checkpoint.
        for _ in 0..32 {
            db.execute_unprepared("INSERT INTO t VALUES (randomblob(65536))")
                .await
                .expect("insert");
        }
        durability.barrier().await;
        let database_size = || std::fs::metadata(dir.join("x.db")).map_or(0, |m| m.len());
        let written = 2 * 1024 * 1024;
        let started = std::time::Instant::now();
        while database_size() < written && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            database_size() >= written,
            "the database file holds {} bytes: the log was not checkpointed",
            database_size()
        );
        drop(db);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn postgres_needs_no_barrier() {
        let url = DatabaseUrl::parse("postgres://u@localhost/db", "TEST").expect("valid url");
        let durability = Durability::for_database(&url);
        assert!(!durability.is_grouped());
        durability.barrier().await;
    }
}
