//! The dashboard's read API responses: what the handlers in `dashboard` answer, and what the
//! OpenAPI document describes. (`MetricsSummary` is built as JSON by `metrics::summary` and
//! described here; schemathesis checks the answers against it.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeadPage {
    pub leads: Vec<LeadRow>,
    /// Pass as `page_token` for the next page; empty on the last.
    pub next_page_token: String,
}

/// A lead as the dashboard shows it (`dashboard::lead_json`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeadRow {
    pub id: String,
    pub name: String,
    /// Where the name came from: `agent` (ElevenLabs' data collection), `caller` (the
    /// caller's own words), ...; null when no name is known.
    pub name_source: Option<String>,
    /// The sentence or data collection item the name was read from.
    pub name_evidence: String,
    pub phone_number: String,
    pub email: String,
    /// 0 to 100.
    pub score: i32,
    /// `hot`, `warm`, `cold`; null until a call is analysed.
    pub tier: Option<String>,
    /// `new`, `contacted`, `qualified`, `converted`, `lost`, `do_not_contact`.
    pub status: String,
    pub summary: String,
    pub interaction_count: i64,
    /// Unix seconds.
    pub last_contact_at: Option<i64>,
    /// Unix seconds.
    pub created_at: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeadDetail {
    pub lead: LeadRow,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AnalysisList {
    /// Newest first, each conversation's versions included.
    pub analyses: Vec<crate::routes::analysis::CallAnalysis>,
}

/// A lead's conversation across voice and SMS, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    pub messages: Vec<ConversationMessage>,
    /// Whether a human has the conversation (the AI stays quiet).
    pub human_control: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationMessage {
    /// `voice` or `sms`.
    pub channel: String,
    /// `user`, `agent`, `operator`, `system`.
    pub role: String,
    pub content: String,
    /// Unix seconds.
    pub occurred_at: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CrmDeliveries {
    pub deliveries: Vec<CrmDelivery>,
}

/// One call outcome forwarded to the CRM, with every attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CrmDelivery {
    pub id: String,
    pub call_id: String,
    pub lead_id: String,
    /// `pending`, `delivered`, `failed`.
    pub state: String,
    pub record: Option<CrmRecord>,
    pub attempts: Vec<CrmAttempt>,
}

/// What was sent to the CRM.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CrmRecord {
    pub subject: String,
    pub to: String,
    pub name: String,
    pub summary: String,
    pub status: String,
    /// Seconds.
    pub duration: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CrmAttempt {
    pub attempt: i32,
    /// The CRM's answer; 0 when none came.
    pub http_status: i32,
    pub error: String,
    /// Unix seconds.
    pub attempted_at: Option<i64>,
}

/// How an organization's AI phone line is doing since `since`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MetricsSummary {
    pub organization_id: String,
    #[schema(format = DateTime)]
    pub since: String,
    /// Calls per day (`YYYY-MM-DD`).
    pub conversations_per_day: BTreeMap<String, u64>,
    pub calls: u64,
    /// Null without calls.
    pub average_call_duration_secs: Option<f64>,
    /// Leads taken over by a human among those who talked; null without any.
    pub human_takeover_rate: Option<f64>,
    /// Successful calls among those judged; null without any.
    pub ai_success_rate: Option<f64>,
    /// Per tier (`hot`, `warm`, `cold`, `unscored`).
    pub lead_conversion_by_tier: BTreeMap<String, TierConversion>,
    /// Every day from `since` to today (UTC, the last 400 of a longer period), quiet days
    /// included.
    pub daily: Vec<DaySummary>,
    pub webhook_acceptance: WebhookAcceptance,
}

/// One day of the summary.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DaySummary {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub calls: u64,
    pub average_call_duration_secs: Option<f64>,
    pub ai_success_rate: Option<f64>,
    pub human_takeover_rate: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TierConversion {
    pub leads: u64,
    pub converted: u64,
    pub rate: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookAcceptance {
    pub accepted: u64,
    pub refused: u64,
    pub rate: Option<f64>,
    /// What the counts cover: this gateway process since it started, all organizations.
    pub scope: String,
}
