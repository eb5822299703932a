//! The analysis service. Its server, database and migrations are in place; its RPCs answer
//! UNIMPLEMENTED until they are built (never fake data).

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use callmesh_migration_analysis::Migrator;
use callmesh_proto::analysis::v1::analysis_service_server::{
    AnalysisService, AnalysisServiceServer,
};
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ConfigError, ServeError, grpc};

#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    pub database: DatabaseUrl,
}

impl AnalysisConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(AnalysisConfig {
            database: DatabaseUrl::from_env(Component::Analysis)?,
        })
    }
}

/// Serves the analysis service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: AnalysisConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    grpc::serve_migrated::<Migrator, _>(
        Component::Analysis,
        &config.database,
        listener,
        shutdown,
        |_db, gate| {
            tonic::service::Routes::new(AnalysisServiceServer::with_interceptor(
                AnalysisGrpc,
                gate.interceptor(),
            ))
        },
    )
    .await
}

/// Every method keeps the generated default: UNIMPLEMENTED.
struct AnalysisGrpc;

impl AnalysisService for AnalysisGrpc {}
