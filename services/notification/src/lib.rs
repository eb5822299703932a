//! The notification service: the append-only event log of the mesh, its live fan-out to
//! subscribers (server-streaming `Subscribe`, resumable from an event id), and CRM forwarding.

pub mod crm;
mod entity;
pub mod grpc;
pub mod log;
pub mod subscribe;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use callmesh_migration_notification::Migrator;
use callmesh_proto::notification::v1::notification_service_server::NotificationServiceServer;
use std::time::Duration;

use callmesh_runtime::config::{env_parse, env_var};
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ConfigError, ServeError};

#[derive(Debug, Clone)]
pub struct NotificationConfig {
    pub database: DatabaseUrl,
    pub crm: crm::CrmConfig,
    /// Events older than this are pruned; resuming from before them gets a reset.
    pub retention: chrono::Duration,
}

impl NotificationConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut config = NotificationConfig::new(DatabaseUrl::from_env(Component::Notification)?);
        config.crm.default_url = env_var("CRM_WEBHOOK_URL");
        if config.crm.default_url.is_none() {
            tracing::warn!(
                "CRM_WEBHOOK_URL is not set: call outcomes go only to organizations with their own CRM webhook"
            );
        }
        config.crm.max_attempts = env_parse("CRM_MAX_ATTEMPTS", 8)?;
        config.crm.base_delay = Duration::from_millis(env_parse("CRM_RETRY_BASE_MS", 2000)?);
        config.crm.max_delay = Duration::from_millis(env_parse("CRM_RETRY_MAX_MS", 600_000)?);
        config.retention = chrono::Duration::days(env_parse("EVENT_RETENTION_DAYS", 30)?);
        Ok(config)
    }

    /// Defaults: no CRM, 30 days of events.
    pub fn new(database: DatabaseUrl) -> Self {
        NotificationConfig {
            database,
            crm: crm::CrmConfig {
                default_url: None,
                max_attempts: 8,
                base_delay: Duration::from_secs(2),
                max_delay: Duration::from_secs(600),
            },
            retention: chrono::Duration::days(30),
        }
    }
}

/// Serves the notification service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: NotificationConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let background = shutdown.child_token();
    // The CRM sender is waited for on the way out: it gives back the deliveries it holds.
    let sender = tokio_util::task::TaskTracker::new();
    let tracked = sender.clone();
    let served = callmesh_runtime::grpc::serve_migrated::<Migrator, _>(
        Component::Notification,
        &config.database,
        listener,
        shutdown,
        |db, gate| {
            let log = log::EventLog::new(db.clone());
            let streams = background.clone();
            let crm = crm::CrmForwarder::new(db, config.crm.clone(), log.clone());
            // Background work starts once the tables exist.
            let ready = gate.clone();
            let (forwarder, pruned_log, retention) = (crm.clone(), log.clone(), config.retention);
            tokio::spawn(async move {
                while !ready.is_open() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tracked.spawn(forwarder.run(background.clone()));
                prune(pruned_log, retention, background).await;
            });
            tonic::service::Routes::new(NotificationServiceServer::with_interceptor(
                grpc::NotificationGrpc::new(log, crm, streams),
                gate.interceptor(),
            ))
        },
    )
    .await;
    sender.close();
    sender.wait().await;
    served
}

/// Drops events past their retention once an hour.
async fn prune(log: log::EventLog, retention: chrono::Duration, shutdown: CancellationToken) {
    loop {
        match log.prune(retention).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "old events pruned"),
            Err(error) => tracing::warn!(%error, "cannot prune events"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
