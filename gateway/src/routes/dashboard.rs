//! The dashboard page (static, no build step) and the read API it uses: leads with their score
//! and tier, and a lead's conversation across voice and SMS. Organization tokens see their own
//! organization only.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Html;
use serde::Deserialize;
use serde_json::{Value, json};

use callmesh_proto::common::v1 as common;
use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::lead::v1 as lead_pb;

use crate::AppState;
use crate::auth::authenticate_read;
use crate::error::ApiError;
use crate::routes::stream::lead_organization;

pub async fn page() -> Html<&'static str> {
    Html(include_str!("../../static/dashboard.html"))
}

#[derive(Deserialize)]
pub struct LeadsQuery {
    org_id: Option<String>,
    page_token: Option<String>,
    token: Option<String>,
}

pub async fn leads(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LeadsQuery>,
) -> Result<Json<Value>, ApiError> {
    let principal = authenticate_read(&state, &headers, query.token.as_deref()).await?;
    let organization_id = match (
        query.org_id.filter(|o| !o.is_empty()),
        principal.organization(),
    ) {
        (Some(asked), _) => asked,
        (None, Some(own)) => own.to_owned(),
        (None, None) => return Err(ApiError::BadRequest("org_id: is required".into())),
    };
    principal.require(&organization_id)?;
    let answer = state
        .clients
        .lead
        .clone()
        .list_leads(lead_pb::ListLeadsRequest {
            organization_id,
            page: Some(common::PageRequest {
                page_size: 100,
                page_token: query.page_token.unwrap_or_default(),
            }),
            status: 0,
        })
        .await?
        .into_inner();
    let leads: Vec<Value> = answer
        .leads
        .iter()
        .map(|lead| {
            json!({
                "id": lead.id,
                "name": lead.name,
                "phone_number": lead.phone_number,
                "score": lead.score,
                "tier": common::LeadTier::try_from(lead.tier)
                    .ok()
                    .filter(|t| *t != common::LeadTier::Unspecified)
                    .map(|t| t.as_str_name().trim_start_matches("LEAD_TIER_").to_ascii_lowercase()),
                "status": lead_pb::LeadStatus::try_from(lead.status)
                    .map(|s| s.as_str_name().trim_start_matches("LEAD_STATUS_").to_ascii_lowercase())
                    .unwrap_or_default(),
                "summary": lead.summary,
                "interaction_count": lead.interaction_count,
                "last_contact_at": lead.last_contact_at.as_ref().map(|t| t.seconds),
            })
        })
        .collect();
    Ok(Json(
        json!({"leads": leads, "next_page_token": answer.next_page_token}),
    ))
}

pub async fn messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(lead_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let principal = authenticate_read(&state, &headers, None).await?;
    lead_organization(&state, &principal, &lead_id).await?;
    let mut context = state.clients.context.clone();
    let messages = context
        .list_messages(context_pb::ListMessagesRequest {
            lead_id: lead_id.clone(),
            page: Some(common::PageRequest {
                page_size: 500,
                page_token: String::new(),
            }),
            conversation_id: String::new(),
        })
        .await?
        .into_inner()
        .messages;
    let human_control = context
        .get_human_control(context_pb::GetHumanControlRequest { lead_id })
        .await?
        .into_inner()
        .state
        .is_some_and(|s| s.enabled);
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "channel": common::Channel::try_from(m.channel).map(|c| c.as_str_name().trim_start_matches("CHANNEL_").to_ascii_lowercase()).unwrap_or_default(),
                "role": common::Role::try_from(m.role).map(|r| r.as_str_name().trim_start_matches("ROLE_").to_ascii_lowercase()).unwrap_or_default(),
                "content": m.content,
                "occurred_at": m.occurred_at.as_ref().map(|t| t.seconds),
            })
        })
        .collect();
    Ok(Json(
        json!({"messages": messages, "human_control": human_control}),
    ))
}

#[derive(Deserialize)]
pub struct DeliveriesQuery {
    org_id: Option<String>,
    state: Option<String>,
}

/// `GET /api/crm/deliveries?org_id=…&state=…`: CRM deliveries with every attempt.
pub async fn crm_deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<DeliveriesQuery>,
) -> Result<Json<Value>, ApiError> {
    use callmesh_proto::notification::v1 as pb;
    let principal = authenticate_read(&state, &headers, None).await?;
    let organization_id = match (
        query.org_id.filter(|o| !o.is_empty()),
        principal.organization(),
    ) {
        (Some(asked), _) => asked,
        (None, Some(own)) => own.to_owned(),
        (None, None) => return Err(ApiError::BadRequest("org_id: is required".into())),
    };
    principal.require(&organization_id)?;
    let wanted = match query.state.as_deref() {
        None | Some("") => pb::CrmDeliveryState::Unspecified,
        Some("pending") => pb::CrmDeliveryState::Pending,
        Some("delivered") => pb::CrmDeliveryState::Delivered,
        Some("failed") => pb::CrmDeliveryState::Failed,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "state: {other:?} is not one of pending, delivered, failed"
            )));
        }
    };
    let deliveries = state
        .clients
        .notification
        .clone()
        .list_crm_deliveries(pb::ListCrmDeliveriesRequest {
            organization_id,
            state: wanted.into(),
            limit: 100,
        })
        .await?
        .into_inner()
        .deliveries;
    let deliveries: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "call_id": d.call_id,
                "lead_id": d.lead_id,
                "state": pb::CrmDeliveryState::try_from(d.state)
                    .map(|s| s.as_str_name().trim_start_matches("CRM_DELIVERY_STATE_").to_ascii_lowercase())
                    .unwrap_or_default(),
                "record": d.record.as_ref().map(|r| json!({"subject": r.subject, "to": r.to, "name": r.name,
                    "summary": r.summary, "status": r.status, "duration": r.duration_secs})),
                "attempts": d.attempts.iter().map(|a| json!({"attempt": a.attempt, "http_status": a.http_status,
                    "error": a.error, "attempted_at": a.attempted_at.as_ref().map(|t| t.seconds)})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({"deliveries": deliveries})))
}
