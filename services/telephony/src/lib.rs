//! The telephony service. Its server, database and migrations are in place; its RPCs answer
//! UNIMPLEMENTED until they are built (never fake data).

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use callmesh_migration_telephony::Migrator;
use callmesh_proto::telephony::v1::telephony_service_server::{
    TelephonyService, TelephonyServiceServer,
};
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ConfigError, ServeError, grpc};

#[derive(Debug, Clone)]
pub struct TelephonyConfig {
    pub database: DatabaseUrl,
}

impl TelephonyConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(TelephonyConfig {
            database: DatabaseUrl::from_env(Component::Telephony)?,
        })
    }
}

/// Serves the telephony service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: TelephonyConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    grpc::serve_migrated::<Migrator, _>(
        Component::Telephony,
        &config.database,
        listener,
        shutdown,
        |_db, gate| {
            tonic::service::Routes::new(TelephonyServiceServer::with_interceptor(
                TelephonyGrpc,
                gate.interceptor(),
            ))
        },
    )
    .await
}

/// Every method keeps the generated default: UNIMPLEMENTED.
struct TelephonyGrpc;

impl TelephonyService for TelephonyGrpc {}
