//! Who is calling: the admin (bearer token from `CALLMESH_ADMIN_TOKEN`) or an organization
//! (an organization API token, checked with the lead service, which keeps only its hash).
//! Browsers' `EventSource` cannot send headers, so the token is also read from the `token`
//! query parameter or the `callmesh_token` cookie.

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

fn presented<'a>(headers: &'a HeaderMap, query_token: Option<&'a str>) -> Option<&'a str> {
    if let Some(bearer) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim());
    }
    if let Some(token) = query_token.filter(|t| !t.is_empty()) {
        return Some(token);
    }
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix("callmesh_token="))
        .next()
}

pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Principal, ApiError> {
    let token = presented(headers, query_token).ok_or_else(|| {
        ApiError::Unauthorized(
            "missing token (Authorization: Bearer, ?token= or the callmesh_token cookie)".into(),
        )
    })?;
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
