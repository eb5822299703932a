//! The admin API (`Authorization: Bearer $CALLMESH_ADMIN_TOKEN`): the inbox, and the stored
//! state of agent calls.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tonic::Code;
use utoipa::{IntoParams, ToSchema};

use callmesh_proto::telephony::v1 as telephony_pb;

use crate::AppState;
use crate::elevenlabs::api::ApiError as ElevenLabsError;
use crate::error::{ApiError, ErrorBody};
use crate::flows::CallStatusName;
use crate::inbox::{InboxState, InboxSummary};

/// Refuses the request unless it carries the admin token.
pub(crate) fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = state
        .config
        .admin_token
        .as_ref()
        .ok_or_else(|| ApiError::NotConfigured("CALLMESH_ADMIN_TOKEN is not set".into()))?;
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    if token.matches(presented) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("invalid token".into()))
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Only items in this state (`all` or absent: every state).
    #[param(pattern = "^(|all|pending|processing|done|ignored|dead)$")]
    state: Option<String>,
    /// How many items at the most (1 to 1000; 100 when absent), newest first.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

/// One webhook in the inbox, without its body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxItem {
    pub id: i64,
    /// `elevenlabs` or `twilio`.
    pub provider: String,
    /// The webhook's type (`post_call_transcription`, `sms_incoming`, ...).
    pub event_type: String,
    /// What makes a repeated delivery a duplicate.
    pub idempotency_key: String,
    /// `pending`, `processing`, `done`, `ignored` or `dead`.
    pub state: String,
    /// Attempts made so far.
    pub attempts: i32,
    #[schema(format = DateTime)]
    pub next_attempt_at: String,
    /// Why the last attempt failed; empty when none did.
    pub last_error: String,
    #[schema(format = DateTime)]
    pub received_at: String,
    /// Size of the stored raw body.
    pub body_bytes: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxList {
    pub items: Vec<InboxItem>,
}

/// How far behind the mesh is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxBacklog {
    /// Items in each state: `pending`, `processing`, `done`, `ignored`, `dead`.
    pub items: BTreeMap<String, u64>,
    /// How long the oldest unfinished (pending or processing) item has waited, in seconds;
    /// null when none is waiting.
    pub oldest_waiting_secs: Option<f64>,
}

/// A query string that does not parse is a JSON 400 like every other refusal.
pub(crate) fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))
}

/// A path that does not parse (invalid percent-encoding) is a JSON 400 too.
pub(crate) fn path<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::BadRequest(format!("path: {}", e.body_text())))
}

#[utoipa::path(
    get,
    path = "/api/inbox",
    tag = "inbox",
    operation_id = "list_inbox",
    summary = "Webhooks in the inbox, newest first",
    params(InboxQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The items", body = InboxList),
        (status = 400, description = "`state` or `limit` is not valid", body = ErrorBody),
        (status = 401, description = "No admin token, or a wrong one", body = ErrorBody),
        (status = 503, description = "`CALLMESH_ADMIN_TOKEN` is not set (`not_configured`), or the database does not answer", body = ErrorBody),
    ),
)]
pub async fn list_inbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<InboxQuery>, QueryRejection>,
) -> Result<Json<InboxList>, ApiError> {
    require_admin(&state, &headers)?;
    let query = query(params)?;
    let wanted = match query.state.as_deref() {
        None | Some("") | Some("all") => None,
        Some(name) => Some(InboxState::parse(name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "state: {name:?} is not one of pending, processing, done, ignored, dead"
            ))
        })?),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let items = state.inbox.list(wanted, limit).await?;
    Ok(Json(InboxList {
        items: items.iter().map(item_json).collect(),
    }))
}

/// `GET /api/inbox/backlog`: how many items are in each state and how long the oldest
/// unfinished one has waited — what an operator watches to see the mesh keeping up.
#[utoipa::path(
    get,
    path = "/api/inbox/backlog",
    tag = "inbox",
    operation_id = "inbox_backlog",
    summary = "Items per state and the oldest waiting item's age",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The backlog", body = InboxBacklog),
        (status = 401, description = "No admin token, or a wrong one", body = ErrorBody),
        (status = 503, description = "`CALLMESH_ADMIN_TOKEN` is not set, or the database does not answer", body = ErrorBody),
    ),
)]
pub async fn inbox_backlog(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<InboxBacklog>, ApiError> {
    require_admin(&state, &headers)?;
    let backlog = state.inbox.backlog().await?;
    let mut items = BTreeMap::new();
    for inbox_state in InboxState::ALL {
        let count = backlog
            .by_state
            .iter()
            .find(|(s, _)| *s == inbox_state)
            .map_or(0, |(_, n)| *n);
        items.insert(inbox_state.as_str().to_owned(), count);
    }
    let oldest_waiting_secs = backlog
        .oldest_waiting_received_at
        .map(|at| (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0);
    Ok(Json(InboxBacklog {
        items,
        oldest_waiting_secs,
    }))
}

#[utoipa::path(
    post,
    path = "/api/inbox/{id}/replay",
    tag = "inbox",
    operation_id = "replay_inbox_item",
    summary = "Runs an item's flow again (a dead letter, or any other)",
    params(("id" = i64, Path, description = "The inbox item's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The item, pending again", body = InboxItem),
        (status = 400, description = "`id` is not an inbox item id", body = ErrorBody),
        (status = 401, description = "No admin token, or a wrong one", body = ErrorBody),
        (status = 404, description = "No such item", body = ErrorBody),
        (status = 503, description = "`CALLMESH_ADMIN_TOKEN` is not set, or the database does not answer", body = ErrorBody),
    ),
)]
pub async fn replay_inbox_item(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<InboxItem>, ApiError> {
    require_admin(&state, &headers)?;
    let id = path(id)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("id: {id:?} is not an inbox item id")))?;
    let item = state
        .inbox
        .replay(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("inbox item {id} not found")))?;
    tracing::info!(item = id, "inbox item replayed by an operator");
    Ok(Json(item_json(&item)))
}

fn item_json(item: &InboxSummary) -> InboxItem {
    InboxItem {
        id: item.id,
        provider: item.provider.clone(),
        event_type: item.event_type.clone(),
        idempotency_key: item.idempotency_key.clone(),
        state: item.state.clone(),
        attempts: item.attempts,
        next_attempt_at: item.next_attempt_at.to_rfc3339(),
        last_error: item.last_error.clone(),
        received_at: item.received_at.to_rfc3339(),
        body_bytes: item.body_bytes,
    }
}

/// Which call: by its ElevenLabs conversation id or its Twilio CallSid (one at least).
#[derive(Deserialize, ToSchema)]
pub struct AgentCallQuery {
    #[serde(default)]
    conversation_id: Option<String>,
    /// Also accepted as `call_sid`.
    #[serde(default, rename = "callSid", alias = "call_sid")]
    call_sid: Option<String>,
}

/// A call's status as the call-status integration reports it, with callmesh's record.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentCallStatus {
    /// The call's conversation id, else its CallSid, else callmesh's id.
    #[serde(rename = "callId")]
    pub call_id: String,
    /// In the call-status map's names: `initiated`, `ringing`, `answered`, `voicemail`,
    /// `completed`, `busy`, `no_answer`, `canceled`, `failed`.
    pub status: String,
    /// The provider's latest word on the call: a status callback's payload, or what the
    /// ElevenLabs API just said; `{}` when there is none.
    #[serde(rename = "rawResponse")]
    pub raw_response: Value,
    /// `stored`, or `elevenlabs_api` when the record was refreshed from the API.
    pub source: String,
    pub call: StoredCall,
    /// The latest status callback's payload, null when none came.
    pub latest_payload: Value,
}

/// callmesh's record of a call.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoredCall {
    pub id: String,
    pub conversation_id: String,
    pub call_sid: String,
    /// `queued`, `initiated`, `ringing`, `in_progress`, `completed`, `busy`, `no_answer`,
    /// `canceled`, `failed`.
    pub status: String,
    pub termination_reason: String,
    pub duration_secs: i64,
    /// Unix seconds.
    pub updated_at: Option<i64>,
}

/// `POST /api/agent-calls/status`: the stored state of a call and its latest raw status
/// payload; refreshed from the ElevenLabs API when missing or stale.
#[utoipa::path(
    post,
    path = "/api/agent-calls/status",
    tag = "status",
    operation_id = "agent_call_status",
    summary = "A call's status, refreshed from ElevenLabs when stale",
    request_body = AgentCallQuery,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The call's status", body = AgentCallStatus),
        (status = 400, description = "Neither `conversation_id` nor `callSid`, or a body that is not that JSON", body = ErrorBody),
        (status = 401, description = "No admin token, or a wrong one", body = ErrorBody),
        (status = 404, description = "No such call", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 503, description = "`CALLMESH_ADMIN_TOKEN` is not set, or a service is down", body = ErrorBody),
    ),
)]
pub async fn agent_call_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<AgentCallQuery>, JsonRejection>,
) -> Result<Json<AgentCallStatus>, ApiError> {
    require_admin(&state, &headers)?;
    let Json(query) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let conversation_id = query.conversation_id.filter(|c| !c.trim().is_empty());
    let call_sid = query.call_sid.filter(|c| !c.trim().is_empty());
    if conversation_id.is_none() && call_sid.is_none() {
        return Err(ApiError::BadRequest(
            "conversation_id: a conversation_id or callSid is required".into(),
        ));
    }
    let stored = find_call(&state, conversation_id.as_deref(), call_sid.as_deref()).await?;
    let conversation = conversation_id.clone().or_else(|| {
        stored
            .as_ref()
            .map(|c| c.conversation_id.clone())
            .filter(|c| !c.is_empty())
    });
    let stale = match &stored {
        None => true,
        Some(call) => {
            !is_final(call.status) && is_older_than(call, state.config.elevenlabs.status_staleness)
        }
    };
    let mut source = "stored";
    let mut fetched = None;
    if stale && let Some(conversation_id) = &conversation {
        match state.flows.api.conversation(conversation_id).await {
            Ok(Some(remote)) => {
                source = "elevenlabs_api";
                refresh_from_api(&state, conversation_id, &remote).await?;
                fetched = Some(remote);
            }
            Ok(None) => {}
            Err(ElevenLabsError::NotConfigured) => {}
            Err(error) => tracing::warn!(%error, "cannot refresh the call from ElevenLabs"),
        }
    }
    let call = find_call(&state, conversation.as_deref(), call_sid.as_deref())
        .await?
        .ok_or_else(|| ApiError::NotFound("no such call".into()))?;
    let latest = state
        .clients
        .telephony
        .clone()
        .list_call_status_changes(telephony_pb::ListCallStatusChangesRequest {
            call_id: call.id.clone(),
        })
        .await?
        .into_inner()
        .changes
        .pop()
        .and_then(|c| serde_json::from_str::<Value>(&c.raw_payload_json).ok())
        .unwrap_or(Value::Null);
    // The documented shape: the call's id as the integration knows it (its conversation id,
    // else its CallSid), its status in the call-status map's names, and the provider's latest
    // answer about it (a status callback's payload, or what the API just said).
    let call_id = [&call.conversation_id, &call.call_sid, &call.id]
        .into_iter()
        .find(|id| !id.is_empty())
        .cloned()
        .unwrap_or_default();
    let raw_response = match (&latest, fetched) {
        (Value::Object(_), _) => latest.clone(),
        (_, Some(remote)) => remote,
        _ => json!({}),
    };
    Ok(Json(AgentCallStatus {
        call_id,
        status: status_map_name(call.status, &latest).to_owned(),
        raw_response,
        source: source.to_owned(),
        call: StoredCall {
            status: status_name(call.status),
            id: call.id,
            conversation_id: call.conversation_id,
            call_sid: call.call_sid,
            termination_reason: call.termination_reason,
            duration_secs: i64::from(call.duration_secs),
            updated_at: call.updated_at.map(|t| t.seconds),
        },
        latest_payload: latest,
    }))
}

async fn find_call(
    state: &AppState,
    conversation_id: Option<&str>,
    call_sid: Option<&str>,
) -> Result<Option<telephony_pb::Call>, ApiError> {
    let request = telephony_pb::GetCallRequest {
        call_id: String::new(),
        call_sid: call_sid.unwrap_or_default().to_owned(),
        conversation_id: if call_sid.is_some() {
            String::new()
        } else {
            conversation_id.unwrap_or_default().to_owned()
        },
    };
    match state.clients.telephony.clone().get_call(request).await {
        Ok(answer) => Ok(answer.into_inner().call),
        Err(status) if status.code() == Code::NotFound => Ok(None),
        Err(status) => Err(status.into()),
    }
}

/// Stores what the API says: a finished conversation goes through the post-call recipe (call
/// outcome, transcript, analysis, lead); one in progress moves the call's state forward.
async fn refresh_from_api(
    state: &AppState,
    conversation_id: &str,
    remote: &Value,
) -> Result<(), ApiError> {
    let status = remote
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if status == "done" {
        let call = serde_json::from_value(remote.clone())
            .map_err(|e| ApiError::Internal(format!("ElevenLabs conversation: {e}")))?;
        return state
            .flows
            .finished_call(call)
            .await
            .map(|_| ())
            .map_err(|e| ApiError::Unavailable(format!("{e:?}")));
    }
    let mapped = match status {
        "initiated" => telephony_pb::CallStatus::Initiated,
        "in-progress" => telephony_pb::CallStatus::InProgress,
        "processing" => telephony_pb::CallStatus::Completed,
        "failed" => telephony_pb::CallStatus::Failed,
        _ => return Ok(()),
    };
    let request = telephony_pb::UpdateCallStatusRequest {
        idempotency_key: format!("elevenlabs_api:{conversation_id}:{status}"),
        call_sid: String::new(),
        status: mapped.into(),
        sequence_number: 0,
        duration_secs: 0,
        answered_by: String::new(),
        raw_payload_json: json!({"source": "elevenlabs_api", "status": status, "metadata": remote.get("metadata")}).to_string(),
        occurred_at: Some(callmesh_runtime::timestamps::to_proto(chrono::Utc::now())),
        conversation_id: conversation_id.to_owned(),
        reason: String::new(),
    };
    match state
        .clients
        .telephony
        .clone()
        .update_call_status(request)
        .await
    {
        Ok(_) => Ok(()),
        Err(status) if status.code() == Code::NotFound => Ok(()),
        Err(status) => Err(status.into()),
    }
}

fn is_final(status: i32) -> bool {
    use telephony_pb::CallStatus as S;
    matches!(
        S::try_from(status),
        Ok(S::Completed | S::Busy | S::NoAnswer | S::Canceled | S::Failed)
    )
}

fn is_older_than(call: &telephony_pb::Call, age: std::time::Duration) -> bool {
    let updated = call.updated_at.as_ref().map(|t| t.seconds).unwrap_or(0);
    chrono::Utc::now().timestamp() - updated > age.as_secs() as i64
}

/// A stored call status in the names of the call-status map (`call.<name>` events): the
/// latest callback's own name when it is one of them, else the name for the stored state.
fn status_map_name(status: i32, latest: &Value) -> &'static str {
    use telephony_pb::CallStatus as S;
    let stored = telephony_pb::CallStatus::try_from(status).unwrap_or(S::Unspecified);
    if let Some(name) = latest
        .get("event_type")
        .and_then(Value::as_str)
        .and_then(CallStatusName::from_event)
        && name.call_status() == stored
    {
        return name.as_str();
    }
    match stored {
        S::Unspecified | S::Queued | S::Initiated => CallStatusName::Initiated.as_str(),
        S::Ringing => CallStatusName::Ringing.as_str(),
        S::InProgress => CallStatusName::Answered.as_str(),
        S::Completed => CallStatusName::Completed.as_str(),
        S::Busy => CallStatusName::Busy.as_str(),
        S::NoAnswer => CallStatusName::NoAnswer.as_str(),
        S::Canceled => CallStatusName::Canceled.as_str(),
        S::Failed => CallStatusName::Failed.as_str(),
    }
}

fn status_name(status: i32) -> String {
    telephony_pb::CallStatus::try_from(status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("CALL_STATUS_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}
