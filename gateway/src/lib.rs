//! The callmesh HTTP gateway: the edge of the mesh. Providers' webhooks, the REST API and
//! live streams come in here and leave as gRPC calls to the five services.

pub mod config;
pub mod error;
mod health;
mod router;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use callmesh_migration_gateway::Migrator;
use callmesh_runtime::{Component, ServeError, db};

pub use config::GatewayConfig;
pub use router::router;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<GatewayConfig>,
    pub db: sea_orm::DatabaseConnection,
    pub services: Arc<health::ServiceHealth>,
}

/// Serves the gateway on `listener` until `shutdown` is cancelled; in-flight requests finish.
pub async fn serve(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let connection = db::connect(&config.database).await?;
    db::migrate::<Migrator>(&connection, Component::Gateway).await?;
    let services = health::ServiceHealth::new(&config.service_urls)?;
    let state = AppState {
        config: Arc::new(config),
        db: connection,
        services: Arc::new(services),
    };
    let local_addr = listener.local_addr()?;
    tracing::info!(%local_addr, "gateway listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    tracing::info!("gateway stopped");
    Ok(())
}
