//! The analysis service: every finished call gets a deterministic, explainable analysis
//! (sentiment, a lead score built from named factors, summary, outcome), merged with the agent
//! platform's own evaluation. Interview evaluation answers UNIMPLEMENTED until built.

pub mod analyzer;
mod entity;
pub mod grpc;
pub mod store;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use callmesh_migration_analysis::Migrator;
use callmesh_proto::analysis::v1::analysis_service_server::AnalysisServiceServer;
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ConfigError, ServeError};

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
    callmesh_runtime::grpc::serve_migrated::<Migrator, _>(
        Component::Analysis,
        &config.database,
        listener,
        shutdown,
        |db, gate| {
            tonic::service::Routes::new(AnalysisServiceServer::with_interceptor(
                grpc::AnalysisGrpc::new(store::AnalysisStore::new(db)),
                gate.interceptor(),
            ))
        },
    )
    .await
}
