//! `POST /api/webhooks/elevenlabs/conversation-initiation`, answered while the phone rings:
//! the dynamic variables built by the context service from the caller's history. When a
//! dependency is slow or down the answer is still 200, within the deadline, with every
//! variable at a safe default: a missing variable would fail the call.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use bytes::Bytes;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use callmesh_proto::context::v1 as context_pb;
use callmesh_runtime::limits::{RateLimiter, Verdict};

use crate::AppState;
use crate::config::InitiationConfig;
use crate::elevenlabs::payload::{self, InitiationRequest};
use crate::error::{ApiError, ErrorBody};
use crate::verify::{self, elevenlabs};

/// Initiations per caller, per window, counted in the gateway database so that every gateway
/// replica counts the same calls.
///
/// The count is asked at the same time as the caller's context, so a ringing phone waits for
/// the slower of the two rather than both in turn. A caller found over the limit is remembered
/// here for the window: its later calls are counted first and turned away without the context
/// service being asked, so a caller dialling again and again costs the mesh one count per call.
/// (Before it is known here, a call over the limit may have its context built and thrown
/// away; building it only reads, except that a caller new to the called number's organization
/// is recorded as its lead, as its next allowed call would do.)
#[derive(Clone)]
pub struct CallerLimit {
    counts: RateLimiter,
    over: Option<moka::sync::Cache<String, ()>>,
}

impl CallerLimit {
    pub fn new(db: sea_orm::DatabaseConnection, config: &InitiationConfig) -> Self {
        CallerLimit {
            counts: RateLimiter::new(
                db,
                crate::RATE_COUNTERS,
                "initiation",
                u64::from(config.rate_limit.max(1)),
                config.rate_window,
            ),
            over: callmesh_runtime::cache::expiring(config.rate_window),
        }
    }

    /// Whether `caller` was over the limit when last counted here, within the window.
    fn known_over(&self, caller: &str) -> bool {
        self.over
            .as_ref()
            .is_some_and(|over| over.contains_key(caller))
    }

    /// Counts one call of `caller`: a 429 when over the limit. A database that does not answer
    /// within `deadline` lets the call through rather than fail it: the phone is ringing.
    async fn check(&self, caller: &str, config: &InitiationConfig) -> Result<(), ApiError> {
        match tokio::time::timeout(config.deadline, self.counts.hit(caller)).await {
            Ok(Ok(Verdict::Allowed { .. })) => {
                if let Some(over) = &self.over {
                    over.invalidate(caller);
                }
                Ok(())
            }
            Ok(Ok(Verdict::Limited { .. })) => {
                if let Some(over) = &self.over {
                    over.insert(caller.to_owned(), ());
                }
                Err(ApiError::TooManyRequests(format!(
                    "more than {} conversation initiations for this caller in {} s",
                    config.rate_limit,
                    config.rate_window.as_secs()
                )))
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "initiation rate limit unavailable: not applied");
                Ok(())
            }
            Err(_) => {
                tracing::warn!("initiation rate limit too slow: not applied");
                Ok(())
            }
        }
    }
}

/// The answer ElevenLabs expects: the dynamic variables for the agent's prompt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InitiationAnswer {
    /// Always `conversation_initiation_client_data`.
    #[serde(rename = "type")]
    #[schema(example = "conversation_initiation_client_data")]
    pub kind: String,
    pub dynamic_variables: DynamicVariables,
}

/// What callmesh knows of the caller; safe defaults when it knows nothing or the mesh is slow.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DynamicVariables {
    /// The last messages with this caller, voice and SMS.
    pub conversation_context: String,
    /// `Customer` when unknown.
    pub customer_name: String,
    pub organization_name: String,
    pub organization_id: String,
    /// `New Inquiry` for a new caller.
    pub lead_status: String,
    pub previous_summary: String,
    /// `new_caller` or `returning_caller`.
    pub caller_type: String,
    pub has_conversation_history: bool,
    pub total_messages: i64,
}

#[utoipa::path(
    post,
    path = "/api/webhooks/elevenlabs/conversation-initiation",
    tag = "webhooks",
    operation_id = "elevenlabs_conversation_initiation",
    summary = "ElevenLabs asks for the caller's dynamic variables while the phone rings",
    request_body(content = crate::routes::payloads::InitiationWebhook, content_type = "application/json"),
    params(crate::routes::payloads::InitiationSecrets),
    responses(
        (status = 200, description = "The variables (defaults when a service is slow or down)", body = InitiationAnswer),
        (status = 400, description = "Not an initiation request (the field is named)", body = ErrorBody),
        (status = 401, description = "Header secret or signature missing or wrong", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody),
        (status = 413, description = "Body over `ELEVENLABS_MAX_BODY_BYTES`", body = ErrorBody),
        (status = 429, description = "Too many initiations for this caller", body = ErrorBody),
        (status = 503, description = "No initiation secret configured (`not_configured`)", body = ErrorBody),
    ),
)]
pub async fn conversation_initiation(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<InitiationAnswer>, ApiError> {
    let el = &state.config.elevenlabs;
    let body = body?;
    let signed = headers.contains_key(elevenlabs::HEADER);
    let verified = match (
        &el.initiation_header_secret,
        signed,
        el.initiation_secrets.is_empty(),
    ) {
        (None, _, true) => {
            return Err(ApiError::NotConfigured(
                "ELEVENLABS_CONVERSATION_INITIATION_WEBHOOK_SECRET is not set".into(),
            ));
        }
        (Some(secret), false, _) | (Some(secret), true, true) => {
            verify::header_secret(&headers, &el.initiation_header, secret, body)?
        }
        (Some(secret), true, false) => {
            // Both: the header secret, and the signature that came along.
            let body = verify::header_secret(&headers, &el.initiation_header, secret, body)?;
            elevenlabs::verify(
                &el.initiation_secrets,
                &headers,
                body.into_body(),
                Utc::now().timestamp(),
            )?
        }
        (None, _, false) => elevenlabs::verify(
            &el.initiation_secrets,
            &headers,
            body,
            Utc::now().timestamp(),
        )?,
    };
    let request: InitiationRequest =
        payload::parse(verified.body()).map_err(ApiError::BadRequest)?;
    let caller = request.caller_id.clone().unwrap_or_default();
    let limit_key = if caller.is_empty() {
        "anonymous".to_owned()
    } else {
        caller.clone()
    };
    let call_sid = request
        .call_sid
        .clone()
        .or(request.call_id.clone())
        .unwrap_or_default();
    let build = context_pb::BuildInitiationDataRequest {
        caller_number: caller,
        called_number: request.called_number.clone().unwrap_or_default(),
        agent_id: request.agent_id.clone().unwrap_or_default(),
        call_sid: call_sid.clone(),
    };
    let limit = &state.caller_limit;
    let counted = limit.check(&limit_key, &state.config.initiation);
    let mut context = state.clients.context.clone();
    let built = async {
        Ok::<_, ApiError>(
            tokio::time::timeout(
                state.config.initiation.deadline,
                context.build_initiation_data(build),
            )
            .await,
        )
    };
    let answer = if limit.known_over(&limit_key) {
        counted.await?;
        built.await?
    } else {
        // Both at once; a 429 does not wait for the context.
        tokio::try_join!(counted, built)?.1
    };
    let variables = match answer {
        Ok(Ok(answer)) => match answer.into_inner().data {
            Some(data) => variables(&data),
            None => fallback(&state, &call_sid, "context answered no data"),
        },
        Ok(Err(status)) => fallback(
            &state,
            &call_sid,
            &format!("{:?}: {}", status.code(), status.message()),
        ),
        Err(_) => fallback(&state, &call_sid, "deadline exceeded"),
    };
    Ok(Json(InitiationAnswer {
        kind: "conversation_initiation_client_data".to_owned(),
        dynamic_variables: variables,
    }))
}

fn variables(data: &context_pb::InitiationData) -> DynamicVariables {
    DynamicVariables {
        conversation_context: data.conversation_context.clone(),
        customer_name: data.customer_name.clone(),
        organization_name: data.organization_name.clone(),
        organization_id: data.organization_id.clone(),
        lead_status: data.lead_status.clone(),
        previous_summary: data.previous_summary.clone(),
        caller_type: data.caller_type.clone(),
        has_conversation_history: data.has_conversation_history,
        total_messages: i64::from(data.total_messages),
    }
}

/// Every variable, at values that are true of any caller we know nothing about.
fn fallback(state: &AppState, call_sid: &str, why: &str) -> DynamicVariables {
    tracing::warn!(%call_sid, reason = why, "conversation initiation answered with defaults");
    variables(&context_pb::InitiationData {
        conversation_context: String::new(),
        customer_name: "Customer".into(),
        organization_name: state.config.default_organization_name.clone(),
        organization_id: String::new(),
        lead_status: "New Inquiry".into(),
        previous_summary: String::new(),
        caller_type: "new_caller".into(),
        has_conversation_history: false,
        total_messages: 0,
        lead_id: String::new(),
    })
}
