//! One analysis of a conversation, applied to its lead and announced: the step every
//! transcript goes through (a finished call, a transcribed recording) and a re-run repeats.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use callmesh_proto::analysis::v1 as analysis_pb;
use callmesh_proto::common::v1 as common;
use callmesh_proto::lead::v1 as lead_pb;
use callmesh_proto::notification::v1::EventType;
use callmesh_runtime::timestamps;

use super::{Announcement, FlowError, Flows, Party};

pub(crate) struct AnalysisRun {
    /// Idempotency of the analysis, of applying it and of its events.
    pub key: String,
    pub conversation_id: String,
    pub turns: Vec<common::TranscriptTurn>,
    /// ElevenLabs' `analysis` block as JSON, or empty.
    pub provider_analysis_json: String,
    pub duration_secs: u32,
    pub ended_at: Option<DateTime<Utc>>,
    /// A re-analysis: the lead's score changes, its interaction count and contact do not.
    pub revision: bool,
    /// More fields for the `analysis_completed` event (the call, the source).
    pub context: Value,
}

/// An analysis applied to its lead, and the events that announce it, not yet published: the
/// caller publishes them, with any of its own, in one append.
#[must_use = "dashboards learn of an analysis only when its events are published"]
pub(crate) struct Analysed {
    pub analysis: analysis_pb::Analysis,
    /// The screening interview session the conversation belongs to, if any.
    pub interview_session: Option<analysis_pb::InterviewSession>,
    /// `lead_updated` (when there is a lead), then `analysis_completed`.
    pub events: Vec<Announcement>,
}

impl Flows {
    /// Analyses a conversation, applies the result to its lead and announces it.
    pub(crate) async fn analyse_and_apply(
        &self,
        party: &Party,
        run: AnalysisRun,
    ) -> Result<analysis_pb::Analysis, FlowError> {
        let analysed = self.analyse(party, run).await?;
        self.publish_all(party, analysed.events).await?;
        Ok(analysed.analysis)
    }

    /// Analyses a conversation and applies the result to its lead; the events are the
    /// caller's to publish.
    pub(crate) async fn analyse(
        &self,
        party: &Party,
        run: AnalysisRun,
    ) -> Result<Analysed, FlowError> {
        let AnalysisRun {
            key,
            conversation_id,
            turns,
            provider_analysis_json,
            duration_secs,
            ended_at,
            revision,
            context,
        } = run;
        let answer = self
            .clients
            .batched
            .analyze_conversation
            .call(analysis_pb::AnalyzeConversationRequest {
                idempotency_key: key.clone(),
                organization_id: party.organization_id.clone(),
                lead_id: party.lead_id.clone(),
                conversation_id: conversation_id.clone(),
                channel: common::Channel::Voice.into(),
                turns,
                provider_analysis_json,
                call_duration_secs: duration_secs,
            })
            .await?;
        let analysis = answer.analysis.unwrap_or_default();
        let mut events = Vec::with_capacity(3);
        if !party.lead_id.is_empty() {
            let heard = analysis.caller_name.clone().unwrap_or_default();
            let lead = self
                .clients
                .batched
                .apply_analysis
                .call(lead_pb::ApplyAnalysisRequest {
                    idempotency_key: key.clone(),
                    lead_id: party.lead_id.clone(),
                    conversation_id: conversation_id.clone(),
                    score: analysis.lead_score,
                    tier: analysis.tier,
                    summary: analysis.summary.clone(),
                    status: lead_pb::LeadStatus::Unspecified.into(),
                    occurred_at: timestamps::to_proto_opt(ended_at.or(Some(Utc::now()))),
                    revision,
                    // The lead service keeps a name a person set; this only fills or improves.
                    name: heard.name.clone(),
                    name_source: heard.source,
                    name_evidence: heard.evidence.clone(),
                })
                .await?
                .lead
                .unwrap_or_default();
            let payload = json!({"lead_id": lead.id, "name": lead.name, "score": lead.score,
                "tier": tier_name(lead.tier), "interaction_count": lead.interaction_count,
                "summary": lead.summary});
            events.push((
                format!("lead_updated:{key}"),
                EventType::LeadUpdated,
                payload,
            ));
        }
        let mut payload = json!({
            "conversation_id": conversation_id,
            "version": analysis.version,
            "analyzer": analyzer_name(analysis.analyzer),
            "score": analysis.lead_score,
            "tier": tier_name(analysis.tier),
            "sentiment": sentiment_name(analysis.sentiment),
            "summary": analysis.summary,
            "outcome": outcome_name(analysis.outcome),
        });
        if let (Some(payload), Value::Object(context)) = (payload.as_object_mut(), context) {
            payload.extend(context);
        }
        events.push((
            format!("analysis_completed:{key}"),
            EventType::AnalysisCompleted,
            payload,
        ));
        Ok(Analysed {
            analysis,
            interview_session: answer.interview_session,
            events,
        })
    }
}

pub(crate) fn analyzer_name(analyzer: i32) -> &'static str {
    match analysis_pb::Analyzer::try_from(analyzer) {
        Ok(analysis_pb::Analyzer::Rules) => "rules",
        Ok(analysis_pb::Analyzer::Llm) => "llm",
        Ok(analysis_pb::Analyzer::LlmFallback) => "llm_fallback",
        _ => "unknown",
    }
}

pub(crate) fn tier_name(tier: i32) -> String {
    common::LeadTier::try_from(tier)
        .map(|t| {
            t.as_str_name()
                .trim_start_matches("LEAD_TIER_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

pub(crate) fn sentiment_name(sentiment: i32) -> String {
    common::Sentiment::try_from(sentiment)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("SENTIMENT_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

pub(crate) fn outcome_name(outcome: i32) -> String {
    analysis_pb::CallOutcome::try_from(outcome)
        .map(|o| {
            o.as_str_name()
                .trim_start_matches("CALL_OUTCOME_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}
