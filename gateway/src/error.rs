//! The gateway's one error type and its one mapping to HTTP: a status code and a JSON body
//! `{"error": {"code": ..., "message": ...}}` naming the problem.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use callmesh_runtime::redact::mask_numbers;

use crate::verify::VerifyError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// An outside provider refused the request; carries its own code and message.
    #[error("{provider} error {code}: {message}")]
    Provider {
        provider: String,
        code: String,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// The feature needs configuration it does not have; names the variable.
    #[error("{0}")]
    NotConfigured(String),
    /// A dependency is down; the caller may retry.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Every error response's body: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// What was wrong, naming the field when a field was (`to: ...`); `internal error` for
    /// the gateway's own failures, which are logged, not told.
    pub message: String,
    /// With `provider_error`: the outside API that refused (`twilio`, `elevenlabs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// With `provider_error`: the provider's own error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_code: Option<String>,
}

/// The kind of error, one per HTTP status the gateway answers with (503 has two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400
    BadRequest,
    /// 401
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 405: the path exists, not with this method.
    MethodNotAllowed,
    /// 408
    RequestTimeout,
    /// 413
    PayloadTooLarge,
    /// 429
    RateLimited,
    /// 500
    Internal,
    /// 502: an outside provider refused the request.
    ProviderError,
    /// 503: the feature needs configuration it does not have.
    NotConfigured,
    /// 503: a dependency is down; retry later.
    Unavailable,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            ApiError::Provider { .. } => (StatusCode::BAD_GATEWAY, ErrorCode::ProviderError),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::PayloadTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge)
            }
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, ErrorCode::RequestTimeout),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
            ApiError::NotConfigured(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::NotConfigured)
            }
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Provider {
            provider,
            code: provider_code,
            message,
        } = &self
        {
            // By code: providers' messages quote the numbers they refused.
            tracing::warn!(%provider, %provider_code, "provider refused the request");
            let body = ErrorBody {
                error: ErrorDetail {
                    code,
                    message: message.clone(),
                    provider: Some(provider.clone()),
                    provider_code: Some(provider_code.clone()),
                },
            };
            let mut response = (status, Json(body)).into_response();
            response.extensions_mut().insert(code);
            return response;
        }
        let message = match &self {
            ApiError::Internal(error) => {
                // Loud in the logs, opaque to callers.
                tracing::error!(%error, "internal error");
                "internal error".to_owned()
            }
            other => {
                let error = other.to_string();
                let error = mask_numbers(&error);
                if status.is_client_error() {
                    tracing::info!(%status, %error, "request refused");
                } else {
                    tracing::warn!(%status, %error, "request not served");
                }
                other.to_string()
            }
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                provider: None,
                provider_code: None,
            },
        };
        let mut response = (status, Json(body)).into_response();
        // For the metrics: refusals are counted by code.
        response.extensions_mut().insert(code);
        response
    }
}

impl From<VerifyError> for ApiError {
    fn from(error: VerifyError) -> Self {
        ApiError::Unauthorized(error.to_string())
    }
}

impl From<crate::inbox::InboxError> for ApiError {
    fn from(error: crate::inbox::InboxError) -> Self {
        // The provider retries a 503; nothing was acknowledged, so nothing is lost.
        tracing::error!(%error, "inbox unavailable");
        ApiError::Unavailable("cannot store the webhook right now".into())
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        use tonic_types::StatusExt;
        if let Some(info) = status.get_details_error_info()
            && info.reason == callmesh_runtime::errors::PROVIDER_ERROR
        {
            let field = |name: &str| info.metadata.get(name).cloned().unwrap_or_default();
            return ApiError::Provider {
                provider: info.domain.clone(),
                code: field("code"),
                message: field("message"),
            };
        }
        match status.code() {
            tonic::Code::ResourceExhausted => {
                ApiError::TooManyRequests(status.message().to_owned())
            }
            tonic::Code::FailedPrecondition => ApiError::NotConfigured(status.message().to_owned()),
            tonic::Code::InvalidArgument => ApiError::BadRequest(status.message().to_owned()),
            tonic::Code::NotFound => ApiError::NotFound(status.message().to_owned()),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                ApiError::Unavailable(status.message().to_owned())
            }
            _ => ApiError::Internal(format!("{:?}: {}", status.code(), status.message())),
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        if timed_out(&rejection) {
            ApiError::RequestTimeout("the request body did not arrive in time".into())
        } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("body exceeds this endpoint's size limit".into())
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    }
}

/// The JSON body for a path no route matches.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".to_owned())
}

/// Every refusal is JSON, including axum's own (a query or path that does not parse, a method
/// the route does not have), which answer in plain text or not at all: those are rewrapped
/// here as an [`ErrorBody`] carrying their text.
pub async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::header;
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => ErrorCode::BadRequest,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
        other if other.is_client_error() => ErrorCode::BadRequest,
        _ => ErrorCode::Internal,
    };
    let message = if text.is_empty() || code == ErrorCode::Internal {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    let body = ErrorBody {
        error: ErrorDetail {
            code,
            message,
            provider: None,
            provider_code: None,
        },
    };
    let mut rewrapped = (status, Json(body)).into_response();
    // `Allow` on a 405 says which methods the path has.
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        rewrapped.headers_mut().insert(header::ALLOW, allow.clone());
    }
    rewrapped
}

/// Whether reading the body stopped at the body-read timeout.
fn timed_out(rejection: &axum::extract::rejection::BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = source {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn logs_name_provider_errors_by_code_and_show_last_four_digits() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let _ = ApiError::Provider {
                provider: "twilio".into(),
                code: "21211".into(),
                message: "The 'To' number +15005550001 is not a valid phone number.".into(),
            }
            .into_response();
            let _ = ApiError::BadRequest("to: +1 (415) 555-0123 is not reachable".into())
                .into_response();
        });
        let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
        assert!(logs.contains("21211"), "{logs}");
        for whole in ["5005550001", "not a valid phone number", "555-0123"] {
            assert!(!logs.contains(whole), "{whole:?} logged: {logs}");
        }
        assert!(logs.contains("0123"), "{logs}");
    }
}
