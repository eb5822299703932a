//! The analysis API's JSON: a call's analysis, interview sessions and evaluations, as the
//! handlers in `analysis` (and the dashboard) answer them and the OpenAPI document describes
//! them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use callmesh_proto::analysis::v1 as pb;
use callmesh_runtime::timestamps;

use callmesh_proto::common::v1 as common;

use crate::flows::{analyzer_name, outcome_name, sentiment_name, tier_name};

/// A timestamp as RFC 3339; null when unset.
pub(crate) fn time(timestamp: &Option<prost_types::Timestamp>) -> Option<String> {
    timestamps::from_proto(*timestamp).map(|t| t.to_rfc3339())
}

/// A call's analysis: sentiment, intents, the lead score and its factors, the outcome.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallAnalysis {
    pub id: String,
    pub conversation_id: String,
    pub lead_id: String,
    pub organization_id: String,
    /// 1 for a call's first analysis, then 2, 3...
    pub version: i32,
    /// `rules` or `llm`.
    pub analyzer: String,
    /// `positive`, `neutral`, `negative`, ...
    pub sentiment: String,
    /// -1.0 (negative) to 1.0 (positive).
    pub sentiment_score: f64,
    pub keywords: Vec<String>,
    pub intents: Vec<Intent>,
    pub action_items: Vec<String>,
    /// 0 to 100.
    pub lead_score: i32,
    pub score_factors: Vec<ScoreFactor>,
    /// `hot`, `warm`, `cold`.
    pub tier: String,
    pub summary: String,
    /// `success`, `failure`, ...
    pub outcome: String,
    pub outcome_rationale: String,
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
    /// The caller's name when the call gave one; null otherwise.
    pub caller_name: Option<CallerName>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallerName {
    pub name: String,
    /// `agent` (ElevenLabs' data collection) or `caller` (the caller's own words).
    pub source: String,
    /// The sentence the name was read from, or the data collection item and its rationale.
    pub evidence: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Intent {
    /// `purchase`, `pricing`, `booking`, `support`, `complaint`, `call_back`, ...
    pub name: String,
    pub confidence: f64,
    /// The sentences that show it.
    pub evidence: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScoreFactor {
    pub name: String,
    pub contribution: i32,
    pub detail: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InterviewSession {
    pub id: String,
    pub candidate_name: String,
    pub job_role: String,
    pub job_id: String,
    /// Empty until the call is known.
    pub conversation_id: String,
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InterviewEvaluation {
    pub id: String,
    pub session_id: String,
    pub conversation_id: String,
    pub version: i32,
    /// `rules` or `llm`.
    pub analyzer: String,
    pub domain_score: i32,
    pub behavioral_score: i32,
    pub communication_score: i32,
    pub overall_score: i32,
    /// `high`, `medium`, `low`.
    pub confidence_level: String,
    pub cheating_detected: bool,
    pub speech_pattern: String,
    pub areas_of_improvement: Vec<String>,
    /// e.g. "Recommended for Panel Interview".
    pub system_recommendation: String,
    /// What a transcript cannot show, said so rather than invented.
    pub not_observable: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
}

pub(crate) fn session_json(s: &pb::InterviewSession) -> InterviewSession {
    InterviewSession {
        id: s.id.clone(),
        candidate_name: s.candidate_name.clone(),
        job_role: s.job_role.clone(),
        job_id: s.job_id.clone(),
        conversation_id: s.conversation_id.clone(),
        created_at: time(&s.created_at),
    }
}

pub(crate) fn evaluation_json(e: &pb::InterviewEvaluation) -> InterviewEvaluation {
    InterviewEvaluation {
        id: e.id.clone(),
        session_id: e.session_id.clone(),
        conversation_id: e.conversation_id.clone(),
        version: e.version,
        analyzer: analyzer_name(e.analyzer).to_owned(),
        domain_score: e.domain_score,
        behavioral_score: e.behavioral_score,
        communication_score: e.communication_score,
        overall_score: e.overall_score,
        confidence_level: e.confidence_level.clone(),
        cheating_detected: e.cheating_detected,
        speech_pattern: e.speech_pattern.clone(),
        areas_of_improvement: e.areas_of_improvement.clone(),
        system_recommendation: e.system_recommendation.clone(),
        not_observable: e.not_observable.clone(),
        created_at: time(&e.created_at),
    }
}

pub(crate) fn analysis_view(a: &pb::Analysis) -> CallAnalysis {
    CallAnalysis {
        id: a.id.clone(),
        conversation_id: a.conversation_id.clone(),
        lead_id: a.lead_id.clone(),
        organization_id: a.organization_id.clone(),
        version: a.version,
        analyzer: analyzer_name(a.analyzer).to_owned(),
        sentiment: sentiment_name(a.sentiment),
        sentiment_score: a.sentiment_score,
        keywords: a.keywords.clone(),
        intents: a
            .intents
            .iter()
            .map(|i| Intent {
                name: i.name.clone(),
                confidence: i.confidence,
                evidence: i.evidence.clone(),
            })
            .collect(),
        action_items: a.action_items.clone(),
        lead_score: a.lead_score,
        score_factors: a
            .score_factors
            .iter()
            .map(|f| ScoreFactor {
                name: f.name.clone(),
                contribution: f.contribution,
                detail: f.detail.clone(),
            })
            .collect(),
        tier: tier_name(a.tier),
        summary: a.summary.clone(),
        outcome: outcome_name(a.outcome),
        outcome_rationale: a.outcome_rationale.clone(),
        created_at: time(&a.created_at),
        caller_name: a.caller_name.as_ref().map(|n| CallerName {
            name: n.name.clone(),
            source: common::NameSource::try_from(n.source)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("NAME_SOURCE_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_default(),
            evidence: n.evidence.clone(),
        }),
    }
}
