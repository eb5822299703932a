//! The outside APIs telephony talks to, each at a configurable base URL: Twilio (SMS, call
//! updates, recording media) and ElevenLabs (outbound agent calls, speech-to-text).

pub mod elevenlabs;
pub mod twilio;

/// A provider refused or failed a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider is not configured; names the variable.
    #[error("{0} is not set")]
    NotConfigured(&'static str),
    /// The request certainly never reached the provider (connection refused): safe to retry.
    #[error("{provider} unreachable: {message}")]
    NotSent {
        provider: &'static str,
        message: String,
    },
    /// The provider may or may not have acted (timeout, broken response): never resend blindly.
    #[error("{provider} outcome unknown: {message}")]
    Unknown {
        provider: &'static str,
        message: String,
    },
    /// The provider answered with an error.
    #[error("{provider} error {code}: {message}")]
    Rejected {
        provider: &'static str,
        /// The provider's own error code (Twilio's 21211, ...), or the HTTP status.
        code: String,
        message: String,
        http_status: u16,
    },
}

impl ProviderError {
    pub(crate) fn from_transport(provider: &'static str, error: reqwest::Error) -> Self {
        if error.is_connect() {
            ProviderError::NotSent {
                provider,
                message: error.to_string(),
            }
        } else {
            ProviderError::Unknown {
                provider,
                message: error.to_string(),
            }
        }
    }
}

impl From<ProviderError> for callmesh_runtime::ServiceError {
    fn from(error: ProviderError) -> Self {
        use callmesh_runtime::ServiceError;
        match error {
            ProviderError::NotConfigured(_) => ServiceError::FailedPrecondition(error.to_string()),
            ProviderError::NotSent { .. } | ProviderError::Unknown { .. } => {
                ServiceError::Unavailable(error.to_string())
            }
            ProviderError::Rejected {
                provider,
                code,
                message,
                http_status,
            } => ServiceError::Provider {
                provider,
                code,
                message,
                http_status,
            },
        }
    }
}
