//! Analysis over HTTP: re-running a stored call's analysis, and interviews (sessions, a hand
//! trigger, a dry run, results by job). Interviews carry no organization, so they take the
//! admin token; a re-run is open to the admin and to the organization that owns the call.

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tonic::Code;
use utoipa::{IntoParams, ToSchema};

use callmesh_proto::analysis::v1 as pb;
use callmesh_proto::common::v1 as common;
use callmesh_proto::context::v1 as context_pb;

use crate::AppState;
use crate::auth::{Principal, authenticate, forbidden};
use crate::elevenlabs::payload;
use crate::error::{ApiError, ErrorBody};
use crate::flows::{AnalysisRun, FlowError, Party, StoredConversation};
use crate::routes::admin::{path, query, require_admin};
pub use crate::routes::analysis_views::{
    CallAnalysis, CallerName, Intent, InterviewEvaluation, InterviewSession, ScoreFactor,
};
use crate::routes::analysis_views::{analysis_view, evaluation_json, session_json};
use crate::routes::operator::{IdempotencyKey, idempotency_key};

async fn conversation(
    state: &AppState,
    conversation_id: &str,
) -> Result<StoredConversation, ApiError> {
    state
        .flows
        .stored_conversation(conversation_id)
        .await
        .map_err(flow_error)?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "conversation {conversation_id} has no transcript in callmesh or at ElevenLabs"
            ))
        })
}

/// `POST /api/conversations/{conversation_id}/analysis/run`: analyses a stored call again
/// (after a vocabulary change, or with the LLM enabled) as a new version, and applies it to
/// the lead.
#[utoipa::path(
    post,
    path = "/api/conversations/{conversation_id}/analysis/run",
    tag = "analysis",
    operation_id = "rerun_analysis",
    summary = "Analyses a stored call again, as a new version applied to its lead",
    params(
        ("conversation_id" = String, Path, description = "The call's ElevenLabs conversation id"),
        IdempotencyKey,
    ),
    security(("admin_token" = []), ("organization_token" = [])),
    responses(
        (status = 200, description = "The new analysis", body = AnalysisRerun),
        (status = 400, description = "The path is not valid", body = ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = ErrorBody),
        (status = 403, description = "The call belongs to another organization (or, for an organization, does not exist)", body = ErrorBody),
        (status = 404, description = "No transcript in callmesh or at ElevenLabs", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 503, description = "A service or ElevenLabs is down", body = ErrorBody),
    ),
)]
pub async fn rerun(
    State(state): State<AppState>,
    conversation_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<AnalysisRerun>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
    let conversation_id = path(conversation_id)?;
    if conversation_id.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "conversation_id: is required".to_owned(),
        ));
    }
    if let Some(own) = principal.organization() {
        // Ownership first, from callmesh's own records: nothing is asked of ElevenLabs about a
        // conversation this organization may not see.
        let request = context_pb::GetTranscriptRequest {
            conversation_id: conversation_id.clone(),
        };
        match state.clients.context.clone().get_transcript(request).await {
            Ok(answer) => {
                let owner = answer.into_inner().transcript.unwrap_or_default();
                if owner.organization_id != own {
                    return Err(forbidden());
                }
            }
            Err(status) if status.code() == Code::NotFound => return Err(forbidden()),
            Err(status) => return Err(status.into()),
        }
    }
    let stored = match conversation(&state, &conversation_id).await {
        // An organization cannot tell a missing conversation from another's.
        Err(ApiError::NotFound(_)) if principal != Principal::Admin => return Err(forbidden()),
        other => other?,
    };
    if stored.organization_id.is_empty() {
        if principal != Principal::Admin {
            return Err(forbidden());
        }
    } else {
        principal.require(&stored.organization_id)?;
    }
    let key = idempotency_key(
        &headers,
        &stored.organization_id,
        &format!("analysis_run:{conversation_id}"),
    );
    let party = Party {
        organization_id: stored.organization_id,
        lead_id: stored.lead_id,
    };
    let analysis = state
        .flows
        .analyse_and_apply(
            &party,
            AnalysisRun {
                key,
                conversation_id,
                turns: stored.turns,
                provider_analysis_json: stored.provider_analysis_json,
                duration_secs: stored.duration_secs,
                ended_at: None,
                revision: true,
                context: json!({"source": "re-run"}),
            },
        )
        .await
        .map_err(flow_error)?;
    Ok(Json(AnalysisRerun {
        analysis: analysis_json(&analysis),
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AnalysisRerun {
    pub analysis: CallAnalysis,
}

fn flow_error(error: FlowError) -> ApiError {
    match error {
        FlowError::Retryable(reason) => ApiError::Unavailable(reason),
        FlowError::Permanent(reason) => ApiError::Internal(reason),
    }
}

/// A screening interview: who, for which role and job.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInterview {
    candidate_name: String,
    job_role: String,
    job_id: String,
    #[serde(default)]
    conversation_id: String,
}

/// `POST /api/interviews`: a session for a candidate, a role and a job, optionally with the
/// call's conversation id already known.
#[utoipa::path(
    post,
    path = "/api/interviews",
    tag = "interviews",
    operation_id = "create_interview",
    summary = "Creates an interview session",
    request_body(content = NewInterview, content_type = "application/json"),
    params(IdempotencyKey),
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The new session", body = InterviewSessionCreated),
        (status = 200, description = "The session this `Idempotency-Key` already made", body = InterviewSessionCreated),
        (status = 400, description = "A field is missing or wrong (named in the message)", body = ErrorBody),
        (status = 401, description = "No admin token, or a wrong one", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 503, description = "`CALLMESH_ADMIN_TOKEN` is not set, or the analysis service is down", body = ErrorBody),
    ),
)]
pub async fn create_interview(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<InterviewSessionCreated>), ApiError> {
    require_admin(&state, &headers)?;
    let request: NewInterview = payload::parse(&body?).map_err(ApiError::BadRequest)?;
    let answer = state
        .clients
        .analysis
        .clone()
        .create_interview_session(pb::CreateInterviewSessionRequest {
            // Interviews are the admin's; its keys are its own.
            idempotency_key: idempotency_key(&headers, "admin", "interview"),
            candidate_name: request.candidate_name,
            job_role: request.job_role,
            job_id: request.job_id,
            conversation_id: request.conversation_id,
        })
        .await?
        .into_inner();
    let status = if answer.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let session = answer.session.unwrap_or_default();
    Ok((
        status,
        Json(InterviewSessionCreated {
            session: session_json(&session),
        }),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InterviewSessionCreated {
    pub session: InterviewSession,
}

/// The call to evaluate; the session's own when absent (the body may be empty).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Complete {
    #[serde(default)]
    conversation_id: String,
}

/// `POST /api/interviews/{session_id}/complete {conversation_id}`: evaluates the session's
/// call now, reading the transcript from callmesh or, failing that, the ElevenLabs API.
#[utoipa::path(
    post,
    path = "/api/interviews/{session_id}/complete",
    tag = "interviews",
    operation_id = "complete_interview",
    summary = "Evaluates the session's call now",
    request_body(content = Option<Complete>, content_type = "application/json"),
    params(("session_id" = String, Path, description = "The interview session"), IdempotencyKey),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The evaluation", body = InterviewCompleted),
        (status = 400, description = "No conversation id, or a body that is not that JSON", body = ErrorBody),
        (status = 401, description = "No admin token, or a wrong one", body = ErrorBody),
        (status = 404, description = "No such session, or no transcript for its call", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 503, description = "`CALLMESH_ADMIN_TOKEN` is not set, or a service or ElevenLabs is down", body = ErrorBody),
    ),
)]
pub async fn complete_interview(
    State(state): State<AppState>,
    session_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<InterviewCompleted>, ApiError> {
    require_admin(&state, &headers)?;
    let session_id = path(session_id)?;
    let body = body?;
    let request: Complete = if body.iter().all(u8::is_ascii_whitespace) {
        Complete::default()
    } else {
        payload::parse(&body).map_err(ApiError::BadRequest)?
    };
    let mut analysis = state.clients.analysis.clone();
    let session = match analysis
        .get_interview_session(pb::GetInterviewSessionRequest {
            session_id: session_id.clone(),
            conversation_id: String::new(),
        })
        .await
    {
        Ok(answer) => answer.into_inner().session.unwrap_or_default(),
        Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {
            return Err(ApiError::NotFound(format!(
                "interview session {session_id} not found"
            )));
        }
        Err(status) => return Err(status.into()),
    };
    let conversation_id = match request.conversation_id.trim() {
        "" if session.conversation_id.is_empty() => {
            return Err(ApiError::BadRequest(
                "conversation_id: required, the session has no conversation yet".into(),
            ));
        }
        "" => session.conversation_id.clone(),
        given => given.to_owned(),
    };
    let stored = conversation(&state, &conversation_id).await?;
    let answer = analysis
        .analyze_interview(pb::AnalyzeInterviewRequest {
            idempotency_key: idempotency_key(
                &headers,
                "admin",
                &format!("interview_complete:{session_id}"),
            ),
            session_id,
            conversation_id,
            turns: stored.turns,
        })
        .await?
        .into_inner();
    Ok(Json(InterviewCompleted {
        evaluation: evaluation_json(&answer.evaluation.unwrap_or_default()),
        created: answer.created,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InterviewCompleted {
    pub evaluation: InterviewEvaluation,
    /// False when this `Idempotency-Key` already made it.
    pub created: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InterviewDryRun {
    pub evaluation: InterviewEvaluation,
    /// Always false: a dry run keeps nothing.
    pub stored: bool,
}

/// The call to evaluate as an interview.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestInterview {
    conversation_id: String,
}

/// `POST /api/test-interview-analysis {conversation_id}`: evaluates a conversation as an
/// interview without keeping the result.
#[utoipa::path(
    post,
    path = "/api/test-interview-analysis",
    tag = "interviews",
    operation_id = "test_interview",
    summary = "Evaluates a call as an interview without keeping the result",
    request_body(content = TestInterview, content_type = "application/json"),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The evaluation, not stored", body = InterviewDryRun),
        (status = 400, description = "`conversation_id` is missing or empty", body = ErrorBody),
        (status = 401, description = "No admin token, or a wrong one", body = ErrorBody),
        (status = 404, description = "No transcript in callmesh or at ElevenLabs", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 503, description = "`CALLMESH_ADMIN_TOKEN` is not set, or a service or ElevenLabs is down", body = ErrorBody),
    ),
)]
pub async fn test_interview(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<InterviewDryRun>, ApiError> {
    require_admin(&state, &headers)?;
    let request: TestInterview = payload::parse(&body?).map_err(ApiError::BadRequest)?;
    let conversation_id = request.conversation_id.trim().to_owned();
    if conversation_id.is_empty() {
        return Err(ApiError::BadRequest(
            "conversation_id: must not be empty".into(),
        ));
    }
    let stored = conversation(&state, &conversation_id).await?;
    let answer = state
        .clients
        .analysis
        .clone()
        .analyze_interview(pb::AnalyzeInterviewRequest {
            idempotency_key: String::new(),
            session_id: String::new(),
            conversation_id,
            turns: stored.turns,
        })
        .await?
        .into_inner();
    Ok(Json(InterviewDryRun {
        evaluation: evaluation_json(&answer.evaluation.unwrap_or_default()),
        stored: false,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ByJob {
    /// The job whose interviews to list.
    #[serde(default)]
    #[param(required = true, min_length = 1)]
    job_id: String,
    /// Sessions and evaluations, each, at the most (100 when absent).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InterviewList {
    pub job_id: String,
    /// Oldest first.
    pub sessions: Vec<InterviewSessionSummary>,
    /// Newest first.
    pub evaluations: Vec<InterviewEvaluation>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InterviewSessionSummary {
    #[serde(flatten)]
    pub session: InterviewSession,
    /// `active` until evaluated, then `completed`.
    pub status: String,
    /// The latest evaluation; null while `active`.
    pub latest_evaluation: Option<InterviewEvaluation>,
}

/// `GET /api/interviews?job_id=…`: a job's sessions (oldest first, `active` or `completed`
/// with their latest evaluation) and its evaluations (newest first).
#[utoipa::path(
    get,
    path = "/api/interviews",
    tag = "interviews",
    operation_id = "list_interviews",
    summary = "A job's interview sessions and evaluations",
    params(ByJob),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The job's sessions and evaluations", body = InterviewList),
        (status = 400, description = "No `job_id`, or a query that does not parse", body = ErrorBody),
        (status = 401, description = "No admin token, or a wrong one", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 503, description = "`CALLMESH_ADMIN_TOKEN` is not set, or the analysis service is down", body = ErrorBody),
    ),
)]
pub async fn list_interviews(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<ByJob>, QueryRejection>,
) -> Result<Json<InterviewList>, ApiError> {
    require_admin(&state, &headers)?;
    let query = query(params)?;
    if query.job_id.trim().is_empty() {
        return Err(ApiError::BadRequest("job_id: required".into()));
    }
    let page = || {
        Some(common::PageRequest {
            page_size: query.limit.unwrap_or(100),
            page_token: String::new(),
        })
    };
    let mut analysis = state.clients.analysis.clone();
    let sessions = analysis
        .list_interview_sessions(pb::ListInterviewSessionsRequest {
            job_id: query.job_id.trim().to_owned(),
            page: page(),
        })
        .await?
        .into_inner()
        .sessions;
    let evaluations = analysis
        .list_interview_evaluations(pb::ListInterviewEvaluationsRequest {
            job_id: query.job_id.trim().to_owned(),
            page: page(),
        })
        .await?
        .into_inner()
        .evaluations;
    // Each session as the interview integration groups them: `active` until evaluated, then
    // `completed` with its latest evaluation.
    let sessions = sessions
        .iter()
        .map(|summary| InterviewSessionSummary {
            session: session_json(&summary.session.clone().unwrap_or_default()),
            status: match summary.latest_evaluation {
                Some(_) => "completed",
                None => "active",
            }
            .to_owned(),
            latest_evaluation: summary.latest_evaluation.as_ref().map(evaluation_json),
        })
        .collect();
    Ok(Json(InterviewList {
        job_id: query.job_id.trim().to_owned(),
        sessions,
        evaluations: evaluations.iter().map(evaluation_json).collect(),
    }))
}

/// A call's analysis as the API answers it.
pub fn analysis_json(a: &pb::Analysis) -> CallAnalysis {
    analysis_view(a)
}
