//! The context service: conversation memory across voice and SMS, conversation events, and
//! the dynamic variables a call starts with, and human control of a conversation.

pub mod control;
mod entity;
pub mod grpc;
pub mod memory;
pub mod model;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use callmesh_migration_context::Migrator;
use callmesh_proto::context::v1::context_service_server::ContextServiceServer;
use callmesh_proto::lead::v1::lead_service_client::LeadServiceClient;
use callmesh_runtime::auth::authenticated;
use callmesh_runtime::clients::lazy_channel;
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ConfigError, ServeError};

#[derive(Debug, Clone)]
pub struct ContextConfig {
    pub database: DatabaseUrl,
    /// Where the lead service is reached.
    pub lead_url: String,
}

impl ContextConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(ContextConfig {
            database: DatabaseUrl::from_env(Component::Context)?,
            lead_url: Component::Lead.service_url(),
        })
    }
}

/// Serves the context service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: ContextConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let leads = LeadServiceClient::new(authenticated(lazy_channel(
        &config.lead_url,
        &Component::Lead.url_var(),
    )?));
    callmesh_runtime::grpc::serve_migrated::<Migrator, _>(
        Component::Context,
        &config.database,
        listener,
        shutdown,
        |db, gate| {
            tonic::service::Routes::new(ContextServiceServer::with_interceptor(
                grpc::ContextGrpc::new(memory::Memory::new(db), leads),
                gate.interceptor(),
            ))
        },
    )
    .await
}
