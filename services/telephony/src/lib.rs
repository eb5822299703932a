//! The telephony service: calls and SMS with their forward-only status machines, outbound
//! agent calls through ElevenLabs, SMS and call updates through Twilio, and recordings.

pub mod calls;
mod entity;
pub mod grpc;
pub mod model;
pub mod outbound;
pub mod providers;
pub mod sms;
pub mod sms_status;

use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use callmesh_migration_telephony::Migrator;
use callmesh_proto::telephony::v1::telephony_service_server::TelephonyServiceServer;
use callmesh_runtime::config::{env_or, env_parse, env_var};
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ConfigError, ServeError};

/// Call audio arrives whole in one message (ElevenLabs' `post_call_audio`).
const MAX_MESSAGE_BYTES: usize = 128 * 1024 * 1024;

#[derive(Clone)]
pub struct TelephonyConfig {
    pub database: DatabaseUrl,
    /// Where recordings are kept.
    pub storage_dir: PathBuf,
    pub twilio: TwilioConfig,
    pub elevenlabs: ElevenLabsConfig,
}

#[derive(Clone)]
pub struct TwilioConfig {
    pub api_base_url: String,
    pub account_sid: Option<String>,
    /// API key SID and secret, or account SID and auth token.
    pub credentials: Option<(String, String)>,
    /// Number SMS go out from when nothing else says.
    pub phone_number: Option<String>,
    /// `PUBLIC_BASE_URL`: Twilio reports delivery to its SMS status webhook there.
    pub public_base_url: Option<String>,
    pub sms_per_lead_limit: u64,
    pub sms_window_secs: i64,
}

#[derive(Clone)]
pub struct ElevenLabsConfig {
    pub api_base_url: String,
    pub api_key: Option<String>,
    pub speech_to_text_url: Option<String>,
    pub speech_to_text_model: String,
}

impl std::fmt::Debug for TelephonyConfig {
    // Credentials never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelephonyConfig")
            .field("database", &self.database)
            .field("storage_dir", &self.storage_dir)
            .field("twilio_api", &self.twilio.api_base_url)
            .field("elevenlabs_api", &self.elevenlabs.api_base_url)
            .finish_non_exhaustive()
    }
}

impl TelephonyConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let storage_dir = env_var("CALLMESH_STORAGE_DIR")
            .unwrap_or_else(|| format!("{}/storage", env_or("CALLMESH_DATA_DIR", "./data")));
        let account_sid = env_var("TWILIO_ACCOUNT_SID");
        let credentials = match (
            env_var("TWILIO_API_KEY_SID"),
            env_var("TWILIO_API_KEY_SECRET"),
        ) {
            (Some(key), Some(secret)) => Some((key, secret)),
            _ => account_sid.clone().zip(env_var("TWILIO_AUTH_TOKEN")),
        };
        if credentials.is_none() {
            tracing::warn!(
                "TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN are not set: sending SMS, redirecting calls and fetching recordings are refused"
            );
        }
        let api_key = env_var("ELEVENLABS_API_KEY");
        if api_key.is_none() {
            tracing::warn!("ELEVENLABS_API_KEY is not set: outbound agent calls are refused");
        }
        let mut config = TelephonyConfig::new(
            DatabaseUrl::from_env(Component::Telephony)?,
            PathBuf::from(storage_dir),
        );
        config.twilio = TwilioConfig {
            api_base_url: env_or("TWILIO_API_BASE_URL", "https://api.twilio.com"),
            account_sid,
            credentials,
            phone_number: env_var("TWILIO_PHONE_NUMBER"),
            public_base_url: env_var("PUBLIC_BASE_URL"),
            sms_per_lead_limit: env_parse("SMS_RATE_LIMIT", 50)?,
            sms_window_secs: env_parse("SMS_RATE_WINDOW_SECS", 300)?,
        };
        config.elevenlabs = ElevenLabsConfig {
            api_base_url: env_or("ELEVENLABS_API_BASE_URL", "https://api.elevenlabs.io"),
            api_key,
            speech_to_text_url: env_var("SPEECH_TO_TEXT_URL"),
            speech_to_text_model: env_or("SPEECH_TO_TEXT_MODEL", "scribe_v2"),
        };
        Ok(config)
    }

    /// Everything off but the database and storage: for tests and embedding.
    pub fn new(database: DatabaseUrl, storage_dir: PathBuf) -> Self {
        TelephonyConfig {
            database,
            storage_dir,
            twilio: TwilioConfig {
                api_base_url: "https://api.twilio.com".into(),
                account_sid: None,
                credentials: None,
                phone_number: None,
                public_base_url: None,
                sms_per_lead_limit: 50,
                sms_window_secs: 300,
            },
            elevenlabs: ElevenLabsConfig {
                api_base_url: "https://api.elevenlabs.io".into(),
                api_key: None,
                speech_to_text_url: None,
                speech_to_text_model: "scribe_v2".into(),
            },
        }
    }
}

/// Serves the telephony service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: TelephonyConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let twilio = providers::twilio::TwilioApi::new(
        &config.twilio.api_base_url,
        config.twilio.account_sid.clone(),
        config.twilio.credentials.clone(),
    );
    let elevenlabs = providers::elevenlabs::ElevenLabsApi::new(
        &config.elevenlabs.api_base_url,
        config.elevenlabs.api_key.clone(),
        config.elevenlabs.speech_to_text_url.clone(),
        config.elevenlabs.speech_to_text_model.clone(),
    );
    let policy = sms::SendPolicy {
        default_from: config.twilio.phone_number.clone(),
        status_callback: config.twilio.public_base_url.as_ref().map(|base| {
            format!(
                "{}/api/webhooks/twilio/sms/status",
                base.trim_end_matches('/')
            )
        }),
        per_lead_limit: config.twilio.sms_per_lead_limit,
        window: chrono::Duration::seconds(config.twilio.sms_window_secs),
    };
    let storage_dir = config.storage_dir.clone();
    callmesh_runtime::grpc::serve_migrated::<Migrator, _>(
        Component::Telephony,
        &config.database,
        listener,
        shutdown,
        |db, gate| {
            let calls = calls::CallBook::new(db.clone(), storage_dir, twilio.clone(), elevenlabs);
            let sms = sms::SmsBook::new(db, twilio, policy);
            let server = TelephonyServiceServer::new(grpc::TelephonyGrpc::new(calls, sms))
                .max_decoding_message_size(MAX_MESSAGE_BYTES);
            tonic::service::Routes::new(InterceptedService::new(server, gate.interceptor()))
        },
    )
    .await
}
