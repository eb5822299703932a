//! Live updates as Server-Sent Events: `id:` on every event, resume with `Last-Event-ID`
//! (header, or `last_event_id` in the query for clients that cannot set it), a heartbeat every
//! 15 s. `replay=N` (at most 200) on a fresh connection first sends the newest N events, oldest
//! first, then goes live from the newest of them: a dashboard's feed is full the moment it
//! opens, and an EventSource reconnecting (with its `Last-Event-ID`) resumes instead. Every connection of one organization shares one notification `Subscribe` stream
//! (`crate::live`); the last one to go ends it.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tonic::Code;
use utoipa::{IntoParams, ToSchema};

use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1 as pb;

use crate::AppState;
use crate::auth::{Principal, authenticate_read, forbidden};
use crate::error::{ApiError, ErrorBody};
use crate::live::render;
use crate::routes::admin::{path, query};

const HEARTBEAT: Duration = Duration::from_secs(15);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The token, for clients that cannot send headers (EventSource); see the security schemes.
    token: Option<String>,
    /// Resume after this event id, for clients that cannot set `Last-Event-ID`.
    #[param(pattern = "^[0-9]*$")]
    last_event_id: Option<String>,
    /// How many of the newest events to send first when not resuming (at most 200).
    #[param(minimum = 0)]
    replay: Option<u32>,
}

/// The most events `replay` sends.
const MAX_REPLAY: u32 = 200;

/// `Last-Event-ID`, as a documented header parameter.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct LastEventId {
    /// Resume after this event id (what the browser sends when it reconnects).
    #[param(rename = "Last-Event-ID", pattern = "^[0-9]*$")]
    last_event_id: Option<String>,
}

/// The `data:` of each SSE event (`id:` is the event's id, `event:` its type:
/// `call_ended`, `sms_received`, `human_takeover`, ...; a `reset` event, `data:
/// {"oldest_available_id", "reason"}`, says events after the given id are no longer kept).
/// Heartbeats are comments (`: heartbeat`) every 15 s.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LiveEvent {
    pub id: u64,
    /// The SSE event name again.
    #[serde(rename = "type")]
    pub kind: String,
    pub organization_id: String,
    pub lead_id: String,
    /// Unix seconds.
    pub occurred_at: Option<i64>,
    /// The event's own fields (a call's outcome, an SMS's text, ...).
    pub payload: Value,
}

#[utoipa::path(
    get,
    path = "/api/stream/organization/{org_id}",
    tag = "streams",
    operation_id = "stream_organization",
    summary = "Live events of an organization (Server-Sent Events)",
    params(
        ("org_id" = String, Path, description = "The organization"),
        StreamQuery,
        LastEventId,
    ),
    security(("admin_token" = []), ("organization_token" = []), ("query_token" = []), ("cookie_token" = [])),
    responses(
        (status = 200, description = "An endless `text/event-stream`: each event's `data:` is a LiveEvent", content_type = "text/event-stream", body = LiveEvent),
        (status = 400, description = "`Last-Event-ID` is not an event id", body = ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = ErrorBody),
        (status = 403, description = "Another organization's stream", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 503, description = "The notification service is down", body = ErrorBody),
    ),
)]
pub async fn organization(
    State(state): State<AppState>,
    organization_id: Result<Path<String>, PathRejection>,
    params: Result<Query<StreamQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let organization_id = path(organization_id)?;
    let query = query(params)?;
    let principal = authenticate_read(&state, &headers, query.token.as_deref()).await?;
    principal.require(&organization_id)?;
    let after = last_event_id(&headers, query.last_event_id.as_deref())?;
    subscribe(&state, organization_id, String::new(), after, query.replay).await
}

#[utoipa::path(
    get,
    path = "/api/stream/conversation/{lead_id}",
    tag = "streams",
    operation_id = "stream_conversation",
    summary = "Live events of one lead's conversation (Server-Sent Events)",
    params(
        ("lead_id" = String, Path, description = "The lead"),
        StreamQuery,
        LastEventId,
    ),
    security(("admin_token" = []), ("organization_token" = []), ("query_token" = []), ("cookie_token" = [])),
    responses(
        (status = 200, description = "An endless `text/event-stream`: each event's `data:` is a LiveEvent", content_type = "text/event-stream", body = LiveEvent),
        (status = 400, description = "`Last-Event-ID` is not an event id", body = ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = ErrorBody),
        (status = 403, description = "Another organization's lead (or, for an organization, no such lead)", body = ErrorBody),
        (status = 404, description = "No such lead (admin token)", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 503, description = "A service is down", body = ErrorBody),
    ),
)]
pub async fn conversation(
    State(state): State<AppState>,
    lead_id: Result<Path<String>, PathRejection>,
    params: Result<Query<StreamQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let lead_id = path(lead_id)?;
    let query = query(params)?;
    let principal = authenticate_read(&state, &headers, query.token.as_deref()).await?;
    let after = last_event_id(&headers, query.last_event_id.as_deref())?;
    let organization_id = lead_organization(&state, &principal, &lead_id).await?;
    subscribe(&state, organization_id, lead_id, after, query.replay).await
}

/// The organization of a lead the principal may see. An organization token gets 403 for a
/// lead that is not its own whether or not it exists, so ids cannot be probed.
pub async fn lead_organization(
    state: &AppState,
    principal: &Principal,
    lead_id: &str,
) -> Result<String, ApiError> {
    let answer = state
        .clients
        .lead
        .clone()
        .get_lead(lead_pb::GetLeadRequest {
            lead_id: lead_id.to_owned(),
        })
        .await;
    let lead = match answer {
        Ok(answer) => answer.into_inner().lead.unwrap_or_default(),
        Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {
            return Err(match principal {
                Principal::Admin => ApiError::NotFound(format!("lead {lead_id} not found")),
                Principal::Organization(_) => forbidden(),
            });
        }
        Err(status) => return Err(status.into()),
    };
    principal.require(&lead.organization_id)?;
    Ok(lead.organization_id)
}

pub(crate) fn last_event_id(headers: &HeaderMap, query: Option<&str>) -> Result<u64, ApiError> {
    let raw = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(query)
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match raw {
        None => Ok(0),
        Some(raw) => raw.parse().map_err(|_| {
            ApiError::BadRequest(format!("Last-Event-ID: {raw:?} is not an event id"))
        }),
    }
}

async fn subscribe(
    state: &AppState,
    organization_id: String,
    lead_id: String,
    after: u64,
    replay: Option<u32>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>> + use<>>, ApiError> {
    let recent = match replay {
        Some(wanted) if after == 0 && wanted > 0 => {
            newest_events(state, &organization_id, &lead_id, wanted.min(MAX_REPLAY)).await?
        }
        _ => Vec::new(),
    };
    // Live from the newest event replayed: whatever came after it is caught up from the log.
    let after = recent.last().map_or(after, |event| event.id);
    let replayed = futures_util::stream::iter(recent.iter().map(render).collect::<Vec<_>>());
    let events = state
        .live
        .subscribe(&organization_id, &lead_id, after)
        .await?;
    let events = replayed.chain(events).map(Ok);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat")))
}

/// The newest `limit` events of the organization (of one lead when `lead_id` is set), oldest
/// first.
async fn newest_events(
    state: &AppState,
    organization_id: &str,
    lead_id: &str,
    limit: u32,
) -> Result<Vec<pb::Event>, ApiError> {
    let mut events = state
        .clients
        .notification
        .clone()
        .list_events(pb::ListEventsRequest {
            filter: Some(pb::EventFilter {
                organization_id: organization_id.to_owned(),
                lead_id: lead_id.to_owned(),
                types: Vec::new(),
            }),
            after_event_id: 0,
            limit: i32::try_from(limit).unwrap_or(50),
            occurred_since: None,
            newest_first: true,
        })
        .await?
        .into_inner()
        .events;
    events.reverse();
    Ok(events)
}
