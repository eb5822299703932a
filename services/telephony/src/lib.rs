//! The telephony service: call records and their forward-only status machine, and recordings.
//! Outbound calls, SMS and recording downloads answer UNIMPLEMENTED until they are built.

pub mod calls;
mod entity;
pub mod grpc;
pub mod model;

use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use callmesh_migration_telephony::Migrator;
use callmesh_proto::telephony::v1::telephony_service_server::TelephonyServiceServer;
use callmesh_runtime::config::{env_or, env_var};
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ConfigError, ServeError};

/// Call audio arrives whole in one message (ElevenLabs' `post_call_audio`).
const MAX_MESSAGE_BYTES: usize = 128 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct TelephonyConfig {
    pub database: DatabaseUrl,
    /// Where recordings are kept.
    pub storage_dir: PathBuf,
}

impl TelephonyConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let storage_dir = env_var("CALLMESH_STORAGE_DIR")
            .unwrap_or_else(|| format!("{}/storage", env_or("CALLMESH_DATA_DIR", "./data")));
        Ok(TelephonyConfig {
            database: DatabaseUrl::from_env(Component::Telephony)?,
            storage_dir: PathBuf::from(storage_dir),
        })
    }
}

/// Serves the telephony service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: TelephonyConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let storage_dir = config.storage_dir.clone();
    callmesh_runtime::grpc::serve_migrated::<Migrator, _>(
        Component::Telephony,
        &config.database,
        listener,
        shutdown,
        |db, gate| {
            let server = TelephonyServiceServer::new(grpc::TelephonyGrpc::new(
                calls::CallBook::new(db, storage_dir),
            ))
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
            tonic::service::Routes::new(InterceptedService::new(server, gate.interceptor()))
        },
    )
    .await
}
