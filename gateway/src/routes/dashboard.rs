//! The dashboard page (the files in `static/`, Chart.js vendored, no build step) and the read API
//! it uses: leads searched, filtered, sorted and keyset-paged; one lead; the analyses of a lead's
//! calls; a lead's conversation across voice and SMS; CRM deliveries. Organization tokens see
//! their own organization only.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use callmesh_proto::analysis::v1 as analysis_pb;
use callmesh_proto::common::v1 as common;
use callmesh_proto::context::v1 as context_pb;
use callmesh_proto::lead::v1 as lead_pb;

use crate::AppState;
use crate::auth::authenticate_read;
use crate::error::{ApiError, ErrorBody};
use crate::routes::analysis::analysis_json;
use crate::routes::reads::{
    AnalysisList, Conversation, ConversationMessage, CrmAttempt, CrmDeliveries, CrmDelivery,
    CrmRecord, LeadDetail, LeadPage, LeadRow,
};
use crate::routes::stream::lead_organization;

/// The page only runs its own scripts and styles, served from here (Chart.js included), and
/// talks only to this gateway: no inline script, so no injected markup could run one.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

#[utoipa::path(
    get,
    path = "/dashboard",
    tag = "dashboard",
    operation_id = "dashboard_page",
    summary = "The dashboard page (it asks for a token and reads the APIs below)",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)),
)]
pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(include_str!("../../static/dashboard.html")),
    )
}

/// `GET /dashboard/assets/{name}`: the page's script and style, and Chart.js (vendored, see
/// `static/vendor/README.md`), all inside the binary.
#[utoipa::path(
    get,
    path = "/dashboard/assets/{name}",
    tag = "dashboard",
    operation_id = "dashboard_asset",
    summary = "The dashboard's script, style and Chart.js, from the binary",
    params(("name" = String, Path, description = "`dashboard.js`, `dashboard.css` or `chart.umd.min.js`")),
    responses(
        (status = 200, description = "The asset", content(
            (String = "text/javascript"),
            (String = "text/css"),
        )),
        (status = 404, description = "No such asset", body = ErrorBody),
    ),
)]
pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (content_type, body): (&str, &'static str) = match name.as_str() {
        "dashboard.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../static/dashboard.js"),
        ),
        "dashboard.css" => (
            "text/css; charset=utf-8",
            include_str!("../../static/dashboard.css"),
        ),
        "chart.umd.min.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../static/vendor/chart.umd.min.js"),
        ),
        _ => return Err(ApiError::NotFound(format!("no dashboard asset {name:?}"))),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct LeadsQuery {
    org_id: Option<String>,
    /// Name, phone number or email contains this (case-insensitive).
    q: Option<String>,
    /// `hot`, `warm` or `cold`.
    tier: Option<String>,
    /// `new`, `contacted`, `qualified`, `converted`, `lost` or `do_not_contact`.
    status: Option<String>,
    /// `created` (oldest first, the default), `score` (best first) or `last_contact` (most
    /// recent first, never-contacted last).
    sort: Option<String>,
    /// 1-500; 100 when absent.
    page_size: Option<i32>,
    page_token: Option<String>,
    token: Option<String>,
}

/// `GET /api/leads`: an organization's leads, searched, filtered and sorted, a keyset page at
/// a time (`next_page_token`, empty on the last page).
#[utoipa::path(
    get,
    path = "/api/leads",
    tag = "dashboard",
    operation_id = "list_leads",
    summary = "An organization's leads with their score and tier, a page at a time",
    params(
        ("org_id" = Option<String>, Query, description = "The organization; an organization token's own when absent (required with the admin token)"),
        ("q" = Option<String>, Query, description = "Name, phone number or email contains this (case-insensitive)"),
        ("tier" = Option<String>, Query, description = "`hot`, `warm` or `cold`"),
        ("status" = Option<String>, Query, description = "`new`, `contacted`, `qualified`, `converted`, `lost` or `do_not_contact`"),
        ("sort" = Option<String>, Query, description = "`created` (oldest first, the default), `score` (best first) or `last_contact` (most recent first)"),
        ("page_size" = Option<i32>, Query, description = "1 to 500; 100 when absent"),
        ("page_token" = Option<String>, Query, description = "`next_page_token` of the previous page"),
        ("token" = Option<String>, Query, description = "The token, for clients that cannot send headers"),
    ),
    security(("admin_token" = []), ("organization_token" = []), ("query_token" = []), ("cookie_token" = [])),
    responses(
        (status = 200, description = "A page of leads", body = crate::routes::reads::LeadPage),
        (status = 400, description = "No `org_id` with the admin token, an unknown `tier`, `status` or `sort`, or a query that does not parse", body = ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = ErrorBody),
        (status = 403, description = "Another organization's leads", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 503, description = "The lead service is down", body = ErrorBody),
    ),
)]
pub async fn leads(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LeadsQuery>,
) -> Result<Json<LeadPage>, ApiError> {
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
    let given = |value: Option<String>| {
        value
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
    };
    let tier = match given(query.tier).as_deref() {
        None => common::LeadTier::Unspecified,
        Some("hot") => common::LeadTier::Hot,
        Some("warm") => common::LeadTier::Warm,
        Some("cold") => common::LeadTier::Cold,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "tier: {other:?} is not one of hot, warm, cold"
            )));
        }
    };
    let status = match given(query.status) {
        None => lead_pb::LeadStatus::Unspecified,
        Some(name) => lead_pb::LeadStatus::from_str_name(&format!("LEAD_STATUS_{}", name.to_ascii_uppercase()))
            .filter(|s| *s != lead_pb::LeadStatus::Unspecified)
            .ok_or_else(|| ApiError::BadRequest(format!(
                "status: {name:?} is not one of new, contacted, qualified, converted, lost, do_not_contact"
            )))?,
    };
    let order = match given(query.sort).as_deref() {
        None | Some("created") => lead_pb::LeadOrder::Unspecified,
        Some("score") => lead_pb::LeadOrder::Score,
        Some("last_contact") => lead_pb::LeadOrder::LastContact,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "sort: {other:?} is not one of created, score, last_contact"
            )));
        }
    };
    let answer = state
        .clients
        .lead
        .clone()
        .list_leads(lead_pb::ListLeadsRequest {
            organization_id,
            page: Some(common::PageRequest {
                page_size: query.page_size.unwrap_or(100),
                page_token: query.page_token.unwrap_or_default(),
            }),
            status: status.into(),
            tier: tier.into(),
            query: query.q.unwrap_or_default(),
            order: order.into(),
        })
        .await?
        .into_inner();
    Ok(Json(LeadPage {
        leads: answer.leads.iter().map(lead_json).collect(),
        next_page_token: answer.next_page_token,
    }))
}

/// A lead as the dashboard shows it.
pub fn lead_json(lead: &lead_pb::Lead) -> LeadRow {
    LeadRow {
        id: lead.id.clone(),
        name: lead.name.clone(),
        name_source: common::NameSource::try_from(lead.name_source)
            .ok()
            .filter(|s| *s != common::NameSource::Unspecified)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("NAME_SOURCE_")
                    .to_ascii_lowercase()
            }),
        name_evidence: lead.name_evidence.clone(),
        phone_number: lead.phone_number.clone(),
        email: lead.email.clone(),
        score: lead.score,
        tier: common::LeadTier::try_from(lead.tier)
            .ok()
            .filter(|t| *t != common::LeadTier::Unspecified)
            .map(|t| {
                t.as_str_name()
                    .trim_start_matches("LEAD_TIER_")
                    .to_ascii_lowercase()
            }),
        status: lead_pb::LeadStatus::try_from(lead.status)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("LEAD_STATUS_")
                    .to_ascii_lowercase()
            })
            .unwrap_or_default(),
        summary: lead.summary.clone(),
        interaction_count: lead.interaction_count.into(),
        last_contact_at: lead.last_contact_at.as_ref().map(|t| t.seconds),
        created_at: lead.created_at.as_ref().map(|t| t.seconds),
    }
}

/// `GET /api/leads/{lead_id}`: one lead (an organization token: its own only).
#[utoipa::path(
    get,
    path = "/api/leads/{lead_id}",
    tag = "dashboard",
    operation_id = "get_lead",
    summary = "One lead: name (with where it came from), number, score, tier, status, summary",
    params(("lead_id" = String, Path, description = "The lead's id")),
    security(("admin_token" = []), ("organization_token" = [])),
    responses(
        (status = 200, description = "The lead", body = crate::routes::reads::LeadDetail),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The lead is not this organization's (or does not exist)", body = ErrorBody),
        (status = 404, description = "No such lead (admin token)", body = ErrorBody),
    ),
)]
pub async fn lead(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(lead_id): Path<String>,
) -> Result<Json<LeadDetail>, ApiError> {
    let principal = authenticate_read(&state, &headers, None).await?;
    lead_organization(&state, &principal, &lead_id).await?;
    let lead = state
        .clients
        .lead
        .clone()
        .get_lead(lead_pb::GetLeadRequest { lead_id })
        .await?
        .into_inner()
        .lead
        .unwrap_or_default();
    Ok(Json(LeadDetail {
        lead: lead_json(&lead),
    }))
}

/// `GET /api/leads/{lead_id}/analyses`: the analyses of a lead's calls, newest first (each
/// conversation's versions included), with every factor, intent and its evidence.
#[utoipa::path(
    get,
    path = "/api/leads/{lead_id}/analyses",
    tag = "dashboard",
    operation_id = "list_lead_analyses",
    summary = "The analyses of a lead's calls, newest first, with factors, intents and evidence",
    params(("lead_id" = String, Path, description = "The lead's id")),
    security(("admin_token" = []), ("organization_token" = [])),
    responses(
        (status = 200, description = "The analyses: summary, sentiment, intents with evidence, score factors, action items, outcome and rationale, analyzer and version, caller name", body = crate::routes::reads::AnalysisList),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The lead is not this organization's (or does not exist)", body = ErrorBody),
        (status = 404, description = "No such lead (admin token)", body = ErrorBody),
    ),
)]
pub async fn analyses(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(lead_id): Path<String>,
) -> Result<Json<AnalysisList>, ApiError> {
    let principal = authenticate_read(&state, &headers, None).await?;
    let organization_id = lead_organization(&state, &principal, &lead_id).await?;
    let analyses = state
        .clients
        .analysis
        .clone()
        .list_analyses(analysis_pb::ListAnalysesRequest {
            conversation_id: String::new(),
            lead_id,
            page: Some(common::PageRequest {
                page_size: 50,
                page_token: String::new(),
            }),
        })
        .await?
        .into_inner()
        .analyses;
    Ok(Json(AnalysisList {
        analyses: analyses
            .iter()
            .filter(|a| a.organization_id == organization_id)
            .map(analysis_json)
            .collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/conversations/{lead_id}/messages",
    tag = "dashboard",
    operation_id = "conversation_messages",
    summary = "A lead's conversation across voice and SMS, and who has it",
    params(("lead_id" = String, Path, description = "The lead")),
    security(("admin_token" = []), ("organization_token" = []), ("cookie_token" = [])),
    responses(
        (status = 200, description = "The conversation", body = crate::routes::reads::Conversation),
        (status = 401, description = "No token, or an unknown one", body = ErrorBody),
        (status = 403, description = "Another organization's lead (or, for an organization, no such lead)", body = ErrorBody),
        (status = 404, description = "No such lead (admin token)", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 503, description = "A service is down", body = ErrorBody),
    ),
)]
pub async fn messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(lead_id): Path<String>,
) -> Result<Json<Conversation>, ApiError> {
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
    let messages = messages
        .iter()
        .map(|m| ConversationMessage {
            channel: common::Channel::try_from(m.channel)
                .map(|c| {
                    c.as_str_name()
                        .trim_start_matches("CHANNEL_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_default(),
            role: common::Role::try_from(m.role)
                .map(|r| {
                    r.as_str_name()
                        .trim_start_matches("ROLE_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_default(),
            content: m.content.clone(),
            occurred_at: m.occurred_at.as_ref().map(|t| t.seconds),
        })
        .collect();
    Ok(Json(Conversation {
        messages,
        human_control,
    }))
}

#[derive(Deserialize)]
pub struct DeliveriesQuery {
    org_id: Option<String>,
    state: Option<String>,
}

/// `GET /api/crm/deliveries?org_id=…&state=…`: CRM deliveries with every attempt.
#[utoipa::path(
    get,
    path = "/api/crm/deliveries",
    tag = "dashboard",
    operation_id = "crm_deliveries",
    summary = "Call outcomes forwarded to the CRM, with every attempt",
    params(
        ("org_id" = Option<String>, Query, description = "The organization; an organization token's own when absent (required with the admin token)"),
        ("state" = Option<String>, Query, description = "Only `pending`, `delivered` or `failed` deliveries"),
    ),
    security(("admin_token" = []), ("organization_token" = []), ("cookie_token" = [])),
    responses(
        (status = 200, description = "The latest 100 deliveries", body = crate::routes::reads::CrmDeliveries),
        (status = 400, description = "No `org_id` with the admin token, or an unknown `state`", body = ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = ErrorBody),
        (status = 403, description = "Another organization's deliveries", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 503, description = "The notification service is down", body = ErrorBody),
    ),
)]
pub async fn crm_deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<DeliveriesQuery>,
) -> Result<Json<CrmDeliveries>, ApiError> {
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
    let deliveries = deliveries
        .iter()
        .map(|d| CrmDelivery {
            id: d.id.clone(),
            call_id: d.call_id.clone(),
            lead_id: d.lead_id.clone(),
            state: pb::CrmDeliveryState::try_from(d.state)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("CRM_DELIVERY_STATE_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_default(),
            record: d.record.as_ref().map(|r| CrmRecord {
                subject: r.subject.clone(),
                to: r.to.clone(),
                name: r.name.clone(),
                summary: r.summary.clone(),
                status: r.status.clone(),
                duration: r.duration_secs.into(),
            }),
            attempts: d
                .attempts
                .iter()
                .map(|a| CrmAttempt {
                    attempt: a.attempt,
                    http_status: a.http_status,
                    error: a.error.clone(),
                    attempted_at: a.attempted_at.as_ref().map(|t| t.seconds),
                })
                .collect(),
        })
        .collect();
    Ok(Json(CrmDeliveries { deliveries }))
}
