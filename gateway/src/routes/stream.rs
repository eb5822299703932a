//! Live updates as Server-Sent Events: one notification `Subscribe` stream per connection,
//! `id:` on every event, resume with `Last-Event-ID` (header, or `last_event_id` in the query
//! for clients that cannot set it), a heartbeat every 15 s, and teardown when the client goes
//! (dropping the response drops the gRPC stream, which ends the subscription).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::Code;

use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1 as pb;

use crate::AppState;
use crate::auth::{Principal, authenticate_read, forbidden};
use crate::error::ApiError;

const HEARTBEAT: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
pub struct StreamQuery {
    token: Option<String>,
    last_event_id: Option<String>,
}

pub async fn organization(
    State(state): State<AppState>,
    Path(organization_id): Path<String>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let principal = authenticate_read(&state, &headers, query.token.as_deref()).await?;
    principal.require(&organization_id)?;
    let after = last_event_id(&headers, query.last_event_id.as_deref())?;
    subscribe(&state, organization_id, String::new(), after).await
}

pub async fn conversation(
    State(state): State<AppState>,
    Path(lead_id): Path<String>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let principal = authenticate_read(&state, &headers, query.token.as_deref()).await?;
    let after = last_event_id(&headers, query.last_event_id.as_deref())?;
    let organization_id = lead_organization(&state, &principal, &lead_id).await?;
    subscribe(&state, organization_id, lead_id, after).await
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

fn last_event_id(headers: &HeaderMap, query: Option<&str>) -> Result<u64, ApiError> {
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
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>> + use<>>, ApiError> {
    let request = pb::SubscribeRequest {
        filter: Some(pb::EventFilter {
            organization_id,
            lead_id,
            types: Vec::new(),
        }),
        after_event_id: after,
    };
    let events = state
        .clients
        .notification
        .clone()
        .subscribe(request)
        .await?
        .into_inner();
    // An error ends the stream; EventSource reconnects with the last id it saw.
    let stream = events
        .take_while(|item| {
            if let Err(status) = item {
                tracing::info!(code = ?status.code(), message = status.message(), "live stream ended");
            }
            futures_util::future::ready(item.is_ok())
        })
        .filter_map(|item| futures_util::future::ready(item.ok().and_then(to_sse).map(Ok)));
    let stream = stream.take_until(state.shutdown.clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat")))
}

fn to_sse(response: pb::SubscribeResponse) -> Option<Event> {
    match response.item? {
        pb::subscribe_response::Item::Event(event) => {
            let name = event_name(event.r#type);
            let payload: Value = serde_json::from_str(&event.payload_json).unwrap_or(Value::Null);
            let data = json!({
                "id": event.id,
                "type": name,
                "organization_id": event.organization_id,
                "lead_id": event.lead_id,
                "occurred_at": event.occurred_at.map(|t| t.seconds),
                "payload": payload,
            });
            Some(
                Event::default()
                    .id(event.id.to_string())
                    .event(name)
                    .data(data.to_string()),
            )
        }
        pb::subscribe_response::Item::Reset(reset) => {
            let data =
                json!({"oldest_available_id": reset.oldest_available_id, "reason": reset.reason});
            Some(Event::default().event("reset").data(data.to_string()))
        }
    }
}

/// `call_ended`, `sms_received`, ...: the SSE event name of an event type.
pub fn event_name(kind: i32) -> String {
    pb::EventType::try_from(kind)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("EVENT_TYPE_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "event".to_owned())
}
