//! The notification service. Its server, database and migrations are in place; its RPCs answer
//! UNIMPLEMENTED until they are built (never fake data).

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use callmesh_migration_notification::Migrator;
use callmesh_proto::notification::v1::notification_service_server::{
    NotificationService, NotificationServiceServer,
};
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ConfigError, ServeError, grpc};

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
    grpc::serve_migrated::<Migrator, _>(
        Component::Notification,
        &config.database,
        listener,
        shutdown,
        |_db, gate| {
            tonic::service::Routes::new(NotificationServiceServer::with_interceptor(
                NotificationGrpc,
                gate.interceptor(),
            ))
        },
    )
    .await
}

/// Every method keeps the generated default: UNIMPLEMENTED.
struct NotificationGrpc;

impl NotificationService for NotificationGrpc {}
