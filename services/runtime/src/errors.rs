//! The error every service's domain code returns, and its one mapping to `tonic::Status`.
//!
//! Client errors say what was wrong and where (`field: reason`, with a `google.rpc.BadRequest`
//! detail naming the field); internal errors are loud in the logs and opaque to callers.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `ErrorInfo.reason` of a provider's refusal; `domain` names the provider.
pub const PROVIDER_ERROR: &str = "PROVIDER_ERROR";

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A request field is missing or malformed; `field` names it as the request spells it.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    /// The request contradicts what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The operation cannot run in the current configuration or state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A service or provider this one depends on failed; worth retrying.
    #[error("{0}")]
    Unavailable(String),
    /// Too many requests of this kind (a rate limit); try later.
    #[error("{0}")]
    ResourceExhausted(String),
    /// An outside provider (Twilio, ElevenLabs) refused the request with its own error.
    #[error("{provider} error {code}: {message}")]
    Provider {
        provider: &'static str,
        code: String,
        message: String,
        http_status: u16,
    },
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, reason: impl ToString) -> Self {
        ServiceError::InvalidArgument {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    pub fn not_found(entity: &'static str, id: impl Into<String>) -> Self {
        ServiceError::NotFound {
            entity,
            id: id.into(),
        }
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Status {
        match error {
            ServiceError::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                format!("{field}: {reason}"),
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            ServiceError::NotFound { .. } => Status::not_found(error.to_string()),
            ServiceError::Conflict(message) => Status::already_exists(message),
            ServiceError::FailedPrecondition(message) => Status::failed_precondition(message),
            ServiceError::Unavailable(message) => Status::unavailable(message),
            ServiceError::ResourceExhausted(message) => Status::resource_exhausted(message),
            ServiceError::Provider {
                provider,
                code,
                message,
                http_status,
            } => {
                // The caller needs the provider's own code and message; they travel as ErrorInfo.
                let text = format!("{provider} error {code}: {message}");
                let info = ErrorDetails::with_error_info(
                    PROVIDER_ERROR,
                    provider,
                    [
                        ("code".to_owned(), code),
                        ("message".to_owned(), message),
                        ("http_status".to_owned(), http_status.to_string()),
                    ],
                );
                Status::with_error_details(Code::FailedPrecondition, text, info)
            }
            ServiceError::Database(db) => {
                tracing::error!(error = %db, "database error");
                Status::internal("internal error")
            }
            ServiceError::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

impl From<crate::paging::PageError> for ServiceError {
    fn from(error: crate::paging::PageError) -> Self {
        ServiceError::invalid(error.field, error.reason)
    }
}

/// A trimmed, non-empty field, or INVALID_ARGUMENT naming it.
pub fn required(field: &str, value: String) -> Result<String, ServiceError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    Ok(trimmed.to_owned())
}

/// A trimmed field, `None` when empty.
pub fn optional(value: String) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// A JSON text field: empty means `{}`; anything else must parse.
pub fn json_object(field: &str, value: &str) -> Result<String, ServiceError> {
    if value.trim().is_empty() {
        return Ok("{}".to_owned());
    }
    serde_json::from_str::<serde_json::Value>(value)
        .map(|_| value.to_owned())
        .map_err(|e| ServiceError::invalid(field, format!("not JSON: {e}")))
}

/// A unique-constraint violation, on either backend.
pub fn is_unique_violation(error: &sea_orm::DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
