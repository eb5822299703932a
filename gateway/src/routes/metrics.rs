//! `GET /api/metrics/summary?org_id=…&since=…`: how an organization's AI phone line is doing,
//! computed from its event log and leads: conversations per day, average call duration, human
//! takeover rate, AI success rate, lead conversion by tier, and webhook acceptance; and the
//! same day by day (`daily`, every day of the period) for the dashboard's charts.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use callmesh_proto::common::v1 as common;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1 as pb;

use crate::AppState;
use crate::auth::authenticate_read;
use crate::error::{ApiError, ErrorBody};

/// Webhooks this gateway process accepted and refused since it started. Refusals cannot be
/// told apart by organization (a request that fails verification names none), so these are
/// the process's totals.
#[derive(Default)]
pub struct WebhookCounters {
    accepted: AtomicU64,
    refused: AtomicU64,
}

/// Counts webhook answers: 2xx accepted, 4xx refused (5xx are our trouble, not the sender's).
pub async fn count_webhooks(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let counted = request.method() == axum::http::Method::POST;
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let response = next.run(request).await;
    if counted {
        let status = response.status();
        if status.is_success() {
            state.webhooks.accepted.fetch_add(1, Ordering::Relaxed);
        } else if status.is_client_error() {
            state.webhooks.refused.fetch_add(1, Ordering::Relaxed);
        }
        crate::observe::webhook_answered(&route, &response);
    }
    response
}

#[derive(Deserialize)]
pub struct SummaryQuery {
    org_id: Option<String>,
    /// RFC 3339 or unix seconds; 30 days ago when absent.
    since: Option<String>,
    token: Option<String>,
}

/// Events read for one summary at the most, so a request stays bounded.
const MAX_EVENTS: usize = 100_000;

#[utoipa::path(
    get,
    path = "/api/metrics/summary",
    tag = "dashboard",
    operation_id = "metrics_summary",
    summary = "How an organization's AI phone line is doing",
    params(
        ("org_id" = Option<String>, Query, description = "The organization; an organization token's own when absent (required with the admin token)"),
        ("since" = Option<String>, Query, description = "RFC 3339 or unix seconds; 30 days ago when absent"),
        ("token" = Option<String>, Query, description = "The token, for clients that cannot send headers"),
    ),
    security(("admin_token" = []), ("organization_token" = []), ("query_token" = []), ("cookie_token" = [])),
    responses(
        (status = 200, description = "The summary", body = crate::routes::reads::MetricsSummary),
        (status = 400, description = "No `org_id` with the admin token, or a `since` that is no time", body = ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = ErrorBody),
        (status = 403, description = "Another organization's summary", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 500, description = "The gateway failed (logged)", body = ErrorBody),
        (status = 503, description = "A service is down", body = ErrorBody),
    ),
)]
pub async fn summary(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SummaryQuery>,
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
    let since = match query
        .since
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => Utc::now() - chrono::Duration::days(30),
        Some(raw) => parse_since(raw).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "since: {raw:?} is neither RFC 3339 nor unix seconds"
            ))
        })?,
    };

    let mut per_day: BTreeMap<String, u64> = BTreeMap::new();
    let (mut calls, mut total_duration) = (0u64, 0u64);
    let (mut successes, mut judged) = (0u64, 0u64);
    let mut conversing: HashSet<String> = HashSet::new();
    let mut taken_over: HashSet<String> = HashSet::new();
    let mut days: BTreeMap<NaiveDate, Day> = BTreeMap::new();
    let mut after = 0;
    let mut read = 0;
    let mut notification = state.clients.notification.clone();
    loop {
        let events = notification
            .list_events(pb::ListEventsRequest {
                filter: Some(pb::EventFilter {
                    organization_id: organization_id.clone(),
                    lead_id: String::new(),
                    types: vec![
                        pb::EventType::CallEnded.into(),
                        pb::EventType::SmsReceived.into(),
                        pb::EventType::HumanTakeover.into(),
                    ],
                }),
                after_event_id: after,
                limit: 500,
                // The period is chosen by the database, not by reading the whole history.
                occurred_since: Some(callmesh_runtime::timestamps::to_proto(since)),
                newest_first: false,
            })
            .await?
            .into_inner()
            .events;
        let last_page = events.len() < 500;
        for event in events {
            after = event.id;
            read += 1;
            let at = event
                .occurred_at
                .as_ref()
                .and_then(|t| DateTime::from_timestamp(t.seconds, 0));
            if at.is_none_or(|at| at < since) {
                continue;
            }
            let payload: Value = serde_json::from_str(&event.payload_json).unwrap_or(Value::Null);
            if let Some(at) = at {
                days.entry(at.date_naive())
                    .or_default()
                    .count(&event, &payload);
            }
            match pb::EventType::try_from(event.r#type) {
                Ok(pb::EventType::CallEnded) => {
                    calls += 1;
                    total_duration += payload["duration_secs"].as_u64().unwrap_or(0);
                    if let Some(day) = at.map(|at| at.format("%Y-%m-%d").to_string()) {
                        *per_day.entry(day).or_default() += 1;
                    }
                    match payload["outcome"].as_str() {
                        Some("success") => {
                            successes += 1;
                            judged += 1;
                        }
                        Some("failure") => judged += 1,
                        _ => {}
                    }
                    if !event.lead_id.is_empty() {
                        conversing.insert(event.lead_id);
                    }
                }
                Ok(pb::EventType::SmsReceived) if !event.lead_id.is_empty() => {
                    conversing.insert(event.lead_id);
                }
                Ok(pb::EventType::HumanTakeover) if !event.lead_id.is_empty() => {
                    taken_over.insert(event.lead_id);
                }
                _ => {}
            }
        }
        if last_page || read >= MAX_EVENTS {
            break;
        }
    }

    let conversion = conversion_by_tier(&state, &organization_id).await?;
    let accepted = state.webhooks.accepted.load(Ordering::Relaxed);
    let refused = state.webhooks.refused.load(Ordering::Relaxed);
    Ok(Json(json!({
        "organization_id": organization_id,
        "since": since.to_rfc3339(),
        "conversations_per_day": per_day,
        "calls": calls,
        "average_call_duration_secs": ratio(total_duration, calls),
        "human_takeover_rate": ratio(taken_over.len() as u64, conversing.len().max(taken_over.len()) as u64),
        "ai_success_rate": ratio(successes, judged),
        "lead_conversion_by_tier": conversion,
        "daily": daily(&days, since),
        "webhook_acceptance": {
            "accepted": accepted,
            "refused": refused,
            "rate": ratio(accepted, accepted + refused),
            "scope": "this gateway process since it started, all organizations",
        },
    })))
}

/// Per tier: how many leads, how many converted, and the rate, counted by the lead service.
async fn conversion_by_tier(state: &AppState, organization_id: &str) -> Result<Value, ApiError> {
    let mut tiers: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    let counts = state
        .clients
        .lead
        .clone()
        .count_leads(lead_pb::CountLeadsRequest {
            organization_id: organization_id.to_owned(),
        })
        .await?
        .into_inner()
        .counts;
    for count in counts {
        let tier = match common::LeadTier::try_from(count.tier) {
            Ok(common::LeadTier::Hot) => "hot",
            Ok(common::LeadTier::Warm) => "warm",
            Ok(common::LeadTier::Cold) => "cold",
            _ => "unscored",
        };
        let entry = tiers.entry(tier).or_default();
        entry.0 += count.leads;
        if count.status == lead_pb::LeadStatus::Converted as i32 {
            entry.1 += count.leads;
        }
    }
    Ok(Value::Object(
        tiers
            .into_iter()
            .map(|(tier, (leads, converted))| {
                (tier.to_owned(), json!({"leads": leads, "converted": converted, "rate": ratio(converted, leads)}))
            })
            .collect(),
    ))
}

/// One day of an organization's calls, for the dashboard's charts.
#[derive(Default)]
struct Day {
    calls: u64,
    duration: u64,
    successes: u64,
    judged: u64,
    conversing: HashSet<String>,
    taken_over: HashSet<String>,
}

impl Day {
    fn count(&mut self, event: &pb::Event, payload: &Value) {
        let lead = (!event.lead_id.is_empty()).then(|| event.lead_id.clone());
        match pb::EventType::try_from(event.r#type) {
            Ok(pb::EventType::CallEnded) => {
                self.calls += 1;
                self.duration += payload["duration_secs"].as_u64().unwrap_or(0);
                match payload["outcome"].as_str() {
                    Some("success") => {
                        self.successes += 1;
                        self.judged += 1;
                    }
                    Some("failure") => self.judged += 1,
                    _ => {}
                }
                self.conversing.extend(lead);
            }
            Ok(pb::EventType::SmsReceived) => self.conversing.extend(lead),
            Ok(pb::EventType::HumanTakeover) => self.taken_over.extend(lead),
            _ => {}
        }
    }
}

/// The most days `daily` lists (the last of a longer period).
const MAX_DAYS: usize = 400;

/// Every day from `since` to today (UTC), quiet days included, so a chart of a week has seven
/// points: calls, average duration, AI success rate and human takeover rate of each.
fn daily(days: &BTreeMap<NaiveDate, Day>, since: DateTime<Utc>) -> Value {
    let quiet = Day::default();
    let today = Utc::now().date_naive();
    // A longer period lists its last MAX_DAYS days.
    let first = since
        .date_naive()
        .max(today - chrono::Days::new(MAX_DAYS as u64 - 1));
    let series: Vec<Value> = first
        .iter_days()
        .take_while(|day| *day <= today)
        .map(|date| {
            let day = days.get(&date).unwrap_or(&quiet);
            json!({
                "day": date.format("%Y-%m-%d").to_string(),
                "calls": day.calls,
                "average_call_duration_secs": ratio(day.duration, day.calls),
                "ai_success_rate": ratio(day.successes, day.judged),
                "human_takeover_rate": ratio(
                    day.taken_over.len() as u64,
                    day.conversing.len().max(day.taken_over.len()) as u64,
                ),
            })
        })
        .collect();
    Value::Array(series)
}

fn ratio(part: u64, whole: u64) -> Value {
    if whole == 0 {
        Value::Null
    } else {
        json!((part as f64 / whole as f64 * 1000.0).round() / 1000.0)
    }
}

fn parse_since(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(seconds) = raw.parse::<i64>() {
        return DateTime::from_timestamp(seconds, 0);
    }
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_day_of_the_period_is_a_point_and_a_long_period_ends_today() {
        let today = Utc::now().date_naive();
        let mut days = BTreeMap::new();
        let event = |kind: pb::EventType| pb::Event {
            r#type: kind.into(),
            lead_id: "lead_1".into(),
            ..Default::default()
        };
        let day: &mut Day = days.entry(today).or_default();
        day.count(
            &event(pb::EventType::CallEnded),
            &json!({"duration_secs": 90, "outcome": "success"}),
        );
        day.count(
            &event(pb::EventType::CallEnded),
            &json!({"duration_secs": 30, "outcome": "failure"}),
        );
        day.count(&event(pb::EventType::HumanTakeover), &Value::Null);

        let week_start = (today - chrono::Days::new(6))
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or_else(Utc::now);
        let week = daily(&days, week_start);
        let points = week.as_array().cloned().unwrap_or_default();
        assert_eq!(points.len(), 7);
        assert_eq!(points[0]["calls"], 0, "a quiet day is a point too");
        assert_eq!(points[6]["day"], today.format("%Y-%m-%d").to_string());
        assert_eq!(points[6]["calls"], 2);
        assert_eq!(points[6]["average_call_duration_secs"], 60.0);
        assert_eq!(points[6]["ai_success_rate"], 0.5);
        assert_eq!(points[6]["human_takeover_rate"], 1.0);

        let years = daily(&days, Utc::now() - chrono::Duration::days(1000));
        let points = years.as_array().cloned().unwrap_or_default();
        assert_eq!(points.len(), MAX_DAYS);
        assert_eq!(points[MAX_DAYS - 1]["calls"], 2, "the last point is today");
    }
}
