//! The lead service: organizations with the phone numbers they own, and their leads, found or
//! created by E.164 phone number.
//!
//! `LeadBook` holds the domain logic; `grpc` is the thin tonic adapter in front of it.

pub mod book;
mod entity;
pub mod error;
pub mod grpc;
pub mod model;
pub mod phone;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use callmesh_migration_lead::Migrator;
use callmesh_proto::lead::v1::lead_service_server::LeadServiceServer;
use callmesh_runtime::config::{env_or, env_var};
use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_runtime::{Component, ConfigError, ReadinessGate, ServeError};

pub use book::{DEFAULT_ORGANIZATION_ID, LeadBook};
use phone::DefaultRegion;

#[derive(Debug, Clone)]
pub struct LeadConfig {
    pub database: DatabaseUrl,
    /// Name of the organization that owns every number nobody else has claimed.
    pub default_organization_name: String,
    /// Region assumed for numbers written without a country code.
    pub default_region: DefaultRegion,
}

impl LeadConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let default_region = match env_var("DEFAULT_REGION") {
            Some(code) => DefaultRegion::parse(&code).ok_or_else(|| {
                ConfigError::invalid("DEFAULT_REGION", "expected an ISO 3166 code such as US")
            })?,
            None => DefaultRegion::default(),
        };
        Ok(LeadConfig {
            database: DatabaseUrl::from_env(Component::Lead)?,
            default_organization_name: env_or("DEFAULT_ORGANIZATION_NAME", "Default Organization"),
            default_region,
        })
    }
}

/// Serves the lead service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: LeadConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let connection = db::connect(&config.database).await?;
    let durability = callmesh_runtime::Durability::for_database(&config.database);
    let book = LeadBook::new(connection.clone(), config.default_region);
    let gate = ReadinessGate::new();
    let routes = tonic::service::Routes::new(LeadServiceServer::with_interceptor(
        grpc::LeadGrpc::new(book.clone()),
        gate.interceptor(),
    ));
    let startup = async move {
        db::migrate::<Migrator>(&connection, Component::Lead).await?;
        book.ensure_default_organization(&config.default_organization_name)
            .await
            .map_err(|e| ServeError::Startup(format!("default organization: {e}")))?;
        Ok(())
    };
    callmesh_runtime::grpc::serve(
        Component::Lead,
        listener,
        shutdown,
        routes,
        gate,
        durability,
        startup,
    )
    .await
}
