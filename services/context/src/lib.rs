//! The context service: conversation memory across voice and SMS, conversation events, and
//! the dynamic variables a call starts with, and human control of a conversation.

pub mod control;
mod entity;
pub mod grpc;
pub mod memory;
pub mod model;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use callmesh_migration_context::Migrator;
use callmesh_proto::context::v1::context_service_server::ContextServiceServer;
use callmesh_proto::lead::v1::lead_service_client::LeadServiceClient;
use callmesh_runtime::auth::authenticated;
use callmesh_runtime::clients::lazy_channel;
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::grpc::MAX_MESSAGE_BYTES;
use callmesh_runtime::{Component, ConfigError, ServeError};

#[derive(Debug, Clone)]
pub struct ContextConfig {
    pub database: DatabaseUrl,
    /// Where the lead service is reached.
    pub lead_url: String,
    /// How long a ringing phone reuses which organization owns the number it called
    /// (`ORGANIZATION_CACHE_SECS`, as in the gateway; zero asks every time).
    pub organization_cache: std::time::Duration,
}

impl ContextConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(ContextConfig {
            database: DatabaseUrl::from_env(Component::Context)?,
            lead_url: Component::Lead.service_url(),
            organization_cache: std::time::Duration::from_secs(
                callmesh_runtime::config::env_parse("ORGANIZATION_CACHE_SECS", 5)?,
            ),
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
            // Transcripts as long as the post-call webhooks that carry them.
            let server = ContextServiceServer::new(grpc::ContextGrpc::new(
                memory::Memory::new(db),
                leads,
                config.organization_cache,
            ))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
            tonic::service::Routes::new(InterceptedService::new(server, gate.interceptor()))
        },
    )
    .await
}
