//! The outside APIs telephony talks to, each at a configurable base URL: Twilio (SMS, call
//! updates, recording media) and ElevenLabs (outbound agent calls, speech-to-text).

pub mod elevenlabs;
pub mod twilio;

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// Tries within one request while the provider certainly did not act.
const RETRIES: usize = 2;
/// The longest a request waits between tries, whatever `Retry-After` asks; beyond it the
/// caller (the inbox, a client) tries again later.
const MAX_WAIT: Duration = Duration::from_secs(3);

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
    /// The provider answered 429 or 5xx: it did not act, and asks to be tried later.
    #[error("{provider} busy ({http_status})")]
    Busy {
        provider: &'static str,
        http_status: u16,
        retry_after: Option<Duration>,
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
    /// The provider did not act and may well if asked again: it was busy or unreachable.
    /// A timeout is not: the request may have been acted on, and asking again could send twice.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Busy { .. } | ProviderError::NotSent { .. }
        )
    }

    /// A busy answer for an HTTP status that means "try later", with its `Retry-After`.
    pub(crate) fn busy(
        provider: &'static str,
        status: reqwest::StatusCode,
        headers: &reqwest::header::HeaderMap,
    ) -> Option<Self> {
        let busy = status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
        busy.then(|| ProviderError::Busy {
            provider,
            http_status: status.as_u16(),
            retry_after: headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        })
    }

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
            ProviderError::NotSent { .. }
            | ProviderError::Unknown { .. }
            | ProviderError::Busy { .. } => ServiceError::Unavailable(error.to_string()),
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

/// Runs `send`, trying again while the provider is busy or unreachable: after its
/// `Retry-After` (at most [`MAX_WAIT`]) or an exponential backoff, [`RETRIES`] times at most.
pub(crate) async fn with_retries<T, F, Fut>(send: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(MAX_WAIT)
        .with_max_times(RETRIES)
        .with_jitter();
    send.retry(backoff)
        .when(ProviderError::is_transient)
        .adjust(|error, next| {
            let asked = match error {
                ProviderError::Busy { retry_after, .. } => *retry_after,
                _ => None,
            };
            next.map(|backoff| asked.map_or(backoff, |asked| asked.min(MAX_WAIT)))
        })
        .notify(|error, wait| tracing::warn!(%error, ?wait, "provider busy; trying again"))
        .await
}
