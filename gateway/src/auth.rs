//! Who is calling: the admin (bearer token from `CALLMESH_ADMIN_TOKEN`) or an organization
//! (an organization API token, checked with the lead service, which keeps only its hash).
//! Browsers' `EventSource` cannot send headers, so reads (GET) also accept the token from the
//! `token` query parameter or the `callmesh_token` cookie; anything that changes state takes
//! the `Authorization` header only, so another site cannot make a browser do it (CSRF).

use axum::http::HeaderMap;
use tonic::Code;

use callmesh_proto::lead::v1 as lead_pb;

use crate::AppState;
use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Organization(String),
}

impl Principal {
    /// Refuses access to another organization's data, whatever id was guessed.
    pub fn require(&self, organization_id: &str) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Organization(own) if own == organization_id => Ok(()),
            Principal::Organization(_) => Err(forbidden()),
        }
    }

    pub fn organization(&self) -> Option<&str> {
        match self {
            Principal::Admin => None,
            Principal::Organization(id) => Some(id),
        }
    }
}

pub fn forbidden() -> ApiError {
    ApiError::Forbidden("this token cannot access that organization".into())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix("callmesh_token="))
        .next()
}

/// Authenticates a request by its `Authorization: Bearer` header alone: what every request
/// that changes something must use, since a browser attaches cookies to any site's form post.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let token = bearer(headers)
        .ok_or_else(|| ApiError::Unauthorized("missing token (Authorization: Bearer)".into()))?;
    principal_of(state, token).await
}

/// Authenticates a GET (a page, a stream, a read): the bearer header, else `?token=`, else the
/// `callmesh_token` cookie, which is all an `EventSource` can send. Never use it for a request
/// that changes anything.
pub async fn authenticate_read(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Principal, ApiError> {
    let token = bearer(headers)
        .or(query_token.filter(|t| !t.is_empty()))
        .or_else(|| cookie(headers))
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "missing token (Authorization: Bearer, ?token= or the callmesh_token cookie)"
                    .into(),
            )
        })?;
    principal_of(state, token).await
}

async fn principal_of(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    if let Some(admin) = &state.config.admin_token
        && admin.matches(token.as_bytes())
    {
        return Ok(Principal::Admin);
    }
    let answer = state
        .clients
        .lead
        .clone()
        .authenticate_token(lead_pb::AuthenticateTokenRequest {
            secret: token.to_owned(),
        })
        .await;
    match answer {
        Ok(answer) => {
            let token = answer.into_inner().token.unwrap_or_default();
            Ok(Principal::Organization(token.organization_id))
        }
        Err(status) if status.code() == Code::Unauthenticated => {
            Err(ApiError::Unauthorized("unknown or revoked token".into()))
        }
        Err(status) => Err(status.into()),
    }
}
