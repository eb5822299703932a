//! The analysis service: every finished call gets a deterministic, explainable analysis
//! (sentiment, keywords, intents with evidence, action items, a lead score built from named
//! factors, a summary, an outcome), merged with the agent platform's own evaluation; an LLM
//! answers instead when one is configured, with the rules as its fallback. Interview calls get
//! a hiring evaluation. Every result is versioned, never overwritten.

pub mod analyzer;
pub mod engine;
mod entity;
pub mod grpc;
pub mod interviews;
pub mod llm;
pub mod settings;
pub mod store;
mod versions;

use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use callmesh_migration_analysis::Migrator;
use callmesh_proto::analysis::v1::analysis_service_server::AnalysisServiceServer;
use callmesh_runtime::config::env_var;
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ConfigError, ServeError};

use crate::engine::Engine;
use crate::llm::{LlmAnalyzer, LlmConfig};
use crate::settings::{AnalysisSettings, SettingsSource};

#[derive(Debug, Clone)]
pub struct AnalysisConfig {
    pub database: DatabaseUrl,
    /// `ANALYSIS_CONFIG`: the JSON file of score weights and vocabularies.
    pub settings_file: Option<PathBuf>,
    pub llm: Option<LlmConfig>,
}

impl AnalysisConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let settings_file = env_var("ANALYSIS_CONFIG").map(PathBuf::from);
        if let Some(path) = &settings_file {
            SettingsSource::from_file(path)
                .map_err(|reason| ConfigError::invalid("ANALYSIS_CONFIG", reason))?;
        }
        Ok(AnalysisConfig {
            database: DatabaseUrl::from_env(Component::Analysis)?,
            settings_file,
            llm: LlmConfig::from_env()?,
        })
    }

    fn engine(&self) -> Result<Engine, ServeError> {
        let settings = match &self.settings_file {
            Some(path) => SettingsSource::from_file(path).map_err(|reason| {
                ServeError::from(ConfigError::invalid("ANALYSIS_CONFIG", reason))
            })?,
            None => SettingsSource::fixed(AnalysisSettings::default()),
        };
        match &self.llm {
            Some(llm) => {
                tracing::info!(provider = ?llm.provider, "analysis uses an LLM, with the rules as fallback")
            }
            None => tracing::info!("no OPENAI_API_KEY or AZURE_OPENAI_*: analysis is rule-based"),
        }
        Ok(Engine::new(
            settings,
            self.llm.clone().map(LlmAnalyzer::new),
        ))
    }
}

/// Serves the analysis service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: AnalysisConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let engine = std::sync::Arc::new(config.engine()?);
    callmesh_runtime::grpc::serve_migrated::<Migrator, _>(
        Component::Analysis,
        &config.database,
        listener,
        shutdown,
        move |db, gate| {
            // Transcripts as long as the post-call webhooks that carry them.
            let server = AnalysisServiceServer::new(grpc::AnalysisGrpc::new(
                store::AnalysisStore::new(db.clone()),
                interviews::InterviewStore::new(db),
                engine.clone(),
            ))
            .max_decoding_message_size(callmesh_runtime::grpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(callmesh_runtime::grpc::MAX_MESSAGE_BYTES);
            tonic::service::Routes::new(tonic::service::interceptor::InterceptedService::new(
                server,
                gate.interceptor(),
            ))
        },
    )
    .await
}
