//! Analysis over HTTP: re-running a stored call's analysis, and interviews (sessions, a hand
//! trigger, a dry run, results by job). Interviews carry no organization, so they take the
//! admin token; a re-run is open to the admin and to the organization that owns the call.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::Code;

use callmesh_proto::analysis::v1 as pb;
use callmesh_proto::common::v1 as common;
use callmesh_proto::context::v1 as context_pb;
use callmesh_runtime::timestamps;

use crate::AppState;
use crate::auth::{Principal, authenticate, forbidden};
use crate::elevenlabs::payload;
use crate::error::ApiError;
use crate::flows::{
    AnalysisRun, FlowError, Party, StoredConversation, analyzer_name, outcome_name, sentiment_name,
    tier_name,
};
use crate::routes::admin::require_admin;
use crate::routes::operator::idempotency_key;

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
pub async fn rerun(
    State(state): State<AppState>,
    Path(conversation_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let principal = authenticate(&state, &headers).await?;
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
    Ok(Json(json!({ "analysis": analysis_json(&analysis) })))
}

fn flow_error(error: FlowError) -> ApiError {
    match error {
        FlowError::Retryable(reason) => ApiError::Unavailable(reason),
        FlowError::Permanent(reason) => ApiError::Internal(reason),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInterview {
    candidate_name: String,
    job_role: String,
    job_id: String,
    #[serde(default)]
    conversation_id: String,
}

/// `POST /api/interviews`: a session for a candidate, a role and a job, optionally with the
/// call's conversation id already known.
pub async fn create_interview(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    Ok((status, Json(json!({ "session": session_json(&session) }))))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Complete {
    #[serde(default)]
    conversation_id: String,
}

/// `POST /api/interviews/{session_id}/complete {conversation_id}`: evaluates the session's
/// call now, reading the transcript from callmesh or, failing that, the ElevenLabs API.
pub async fn complete_interview(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &headers)?;
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
    Ok(Json(json!({
        "evaluation": evaluation_json(&answer.evaluation.unwrap_or_default()),
        "created": answer.created,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestInterview {
    conversation_id: String,
}

/// `POST /api/test-interview-analysis {conversation_id}`: evaluates a conversation as an
/// interview without keeping the result.
pub async fn test_interview(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "evaluation": evaluation_json(&answer.evaluation.unwrap_or_default()),
        "stored": false,
    })))
}

#[derive(Deserialize)]
pub struct ByJob {
    #[serde(default)]
    job_id: String,
    #[serde(default)]
    limit: Option<i32>,
}

/// `GET /api/interviews?job_id=…`: a job's sessions (oldest first, `active` or `completed`
/// with their latest evaluation) and its evaluations (newest first).
pub async fn list_interviews(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ByJob>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &headers)?;
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
    let sessions: Vec<Value> = sessions
        .iter()
        .map(|summary| {
            let mut session = session_json(&summary.session.clone().unwrap_or_default());
            let (status, latest) = match &summary.latest_evaluation {
                Some(evaluation) => ("completed", evaluation_json(evaluation)),
                None => ("active", Value::Null),
            };
            session["status"] = json!(status);
            session["latest_evaluation"] = latest;
            session
        })
        .collect();
    Ok(Json(json!({
        "job_id": query.job_id.trim(),
        "sessions": sessions,
        "evaluations": evaluations.iter().map(evaluation_json).collect::<Vec<_>>(),
    })))
}

fn time(timestamp: &Option<prost_types::Timestamp>) -> Value {
    timestamps::from_proto(*timestamp)
        .map(|t| json!(t.to_rfc3339()))
        .unwrap_or(Value::Null)
}

pub fn analysis_json(a: &pb::Analysis) -> Value {
    json!({
        "id": a.id,
        "conversation_id": a.conversation_id,
        "lead_id": a.lead_id,
        "organization_id": a.organization_id,
        "version": a.version,
        "analyzer": analyzer_name(a.analyzer),
        "sentiment": sentiment_name(a.sentiment),
        "sentiment_score": a.sentiment_score,
        "keywords": a.keywords,
        "intents": a.intents.iter().map(|i| json!({
            "name": i.name, "confidence": i.confidence, "evidence": i.evidence,
        })).collect::<Vec<_>>(),
        "action_items": a.action_items,
        "lead_score": a.lead_score,
        "score_factors": a.score_factors.iter().map(|f| json!({
            "name": f.name, "contribution": f.contribution, "detail": f.detail,
        })).collect::<Vec<_>>(),
        "tier": tier_name(a.tier),
        "summary": a.summary,
        "outcome": outcome_name(a.outcome),
        "outcome_rationale": a.outcome_rationale,
        "created_at": time(&a.created_at),
        "caller_name": a.caller_name.as_ref().map(|n| json!({
            "name": n.name,
            "source": common::NameSource::try_from(n.source)
                .map(|s| s.as_str_name().trim_start_matches("NAME_SOURCE_").to_ascii_lowercase())
                .unwrap_or_default(),
            "evidence": n.evidence,
        })),
    })
}

fn session_json(s: &pb::InterviewSession) -> Value {
    json!({
        "id": s.id,
        "candidate_name": s.candidate_name,
        "job_role": s.job_role,
        "job_id": s.job_id,
        "conversation_id": s.conversation_id,
        "created_at": time(&s.created_at),
    })
}

fn evaluation_json(e: &pb::InterviewEvaluation) -> Value {
    json!({
        "id": e.id,
        "session_id": e.session_id,
        "conversation_id": e.conversation_id,
        "version": e.version,
        "analyzer": analyzer_name(e.analyzer),
        "domain_score": e.domain_score,
        "behavioral_score": e.behavioral_score,
        "communication_score": e.communication_score,
        "overall_score": e.overall_score,
        "confidence_level": e.confidence_level,
        "cheating_detected": e.cheating_detected,
        "speech_pattern": e.speech_pattern,
        "areas_of_improvement": e.areas_of_improvement,
        "system_recommendation": e.system_recommendation,
        "not_observable": e.not_observable,
        "created_at": time(&e.created_at),
    })
}
