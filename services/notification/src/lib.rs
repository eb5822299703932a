//! The notification service: the append-only event log of the mesh (Publish, ListEvents).
//! Live `Subscribe` streams and CRM forwarding answer UNIMPLEMENTED until they are built.

mod entity;
pub mod grpc;
pub mod log;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use callmesh_migration_notification::Migrator;
use callmesh_proto::notification::v1::notification_service_server::NotificationServiceServer;
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ConfigError, ServeError};

#[derive(Debug, Clone)]
pub struct NotificationConfig {
    pub database: DatabaseUrl,
}

impl NotificationConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(NotificationConfig {
            database: DatabaseUrl::from_env(Component::Notification)?,
        })
    }
}

/// Serves the notification service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: NotificationConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    callmesh_runtime::grpc::serve_migrated::<Migrator, _>(
        Component::Notification,
        &config.database,
        listener,
        shutdown,
        |db, gate| {
            tonic::service::Routes::new(NotificationServiceServer::with_interceptor(
                grpc::NotificationGrpc::new(log::EventLog::new(db)),
                gate.interceptor(),
            ))
        },
    )
    .await
}
