//! The context service. Its server, database and migrations are in place; its RPCs answer
//! UNIMPLEMENTED until they are built (never fake data).

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use callmesh_migration_context::Migrator;
use callmesh_proto::context::v1::context_service_server::{ContextService, ContextServiceServer};
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ConfigError, ServeError, grpc};

#[derive(Debug, Clone)]
pub struct ContextConfig {
    pub database: DatabaseUrl,
}

impl ContextConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(ContextConfig {
            database: DatabaseUrl::from_env(Component::Context)?,
        })
    }
}

/// Serves the context service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: ContextConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    grpc::serve_migrated::<Migrator, _>(
        Component::Context,
        &config.database,
        listener,
        shutdown,
        |_db, gate| {
            tonic::service::Routes::new(ContextServiceServer::with_interceptor(
                ContextGrpc,
                gate.interceptor(),
            ))
        },
    )
    .await
}

/// Every method keeps the generated default: UNIMPLEMENTED.
struct ContextGrpc;

impl ContextService for ContextGrpc {}
