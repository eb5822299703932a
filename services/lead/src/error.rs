//! The lead service's one error type and its one mapping to gRPC status codes.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum LeadError {
    /// A request field is missing or malformed; `field` names it as the request spells it.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    /// The request contradicts what is stored (e.g. a number another organization owns).
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl LeadError {
    pub fn invalid(field: impl Into<String>, reason: impl ToString) -> Self {
        LeadError::InvalidArgument {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    pub fn not_found(entity: &'static str, id: impl Into<String>) -> Self {
        LeadError::NotFound {
            entity,
            id: id.into(),
        }
    }
}

impl From<LeadError> for Status {
    fn from(error: LeadError) -> Status {
        match error {
            LeadError::InvalidArgument { field, reason } => Status::with_error_details(
                Code::InvalidArgument,
                format!("{field}: {reason}"),
                ErrorDetails::with_bad_request_violation(field, reason),
            ),
            LeadError::NotFound { .. } => Status::not_found(error.to_string()),
            LeadError::Conflict(message) => Status::already_exists(message),
            LeadError::Database(db) => {
                // Loud in the logs, opaque to callers.
                tracing::error!(error = %db, "lead database error");
                Status::internal("internal error")
            }
        }
    }
}
