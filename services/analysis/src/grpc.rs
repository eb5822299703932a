//! The tonic adapter of the analysis service. Interview evaluation is not built yet and
//! answers UNIMPLEMENTED.

use tonic::{Request, Response, Status};

use callmesh_proto::analysis::v1 as pb;
use callmesh_proto::analysis::v1::analysis_service_server::AnalysisService;
use callmesh_proto::common::v1 as common;
use callmesh_runtime::ServiceError;
use callmesh_runtime::errors::{json_object, optional, required};
use callmesh_runtime::timestamps;

use crate::analyzer::{Conversation, Outcome, ProviderAnalysis, SentimentLabel, Speaker, Turn};
use crate::store::{AnalysisStore, StoredAnalysis, Subject};

pub struct AnalysisGrpc {
    store: AnalysisStore,
}

impl AnalysisGrpc {
    pub fn new(store: AnalysisStore) -> Self {
        AnalysisGrpc { store }
    }
}

#[tonic::async_trait]
impl AnalysisService for AnalysisGrpc {
    async fn analyze_conversation(
        &self,
        request: Request<pb::AnalyzeConversationRequest>,
    ) -> Result<Response<pb::AnalyzeConversationResponse>, Status> {
        let pb::AnalyzeConversationRequest {
            idempotency_key,
            organization_id,
            lead_id,
            conversation_id,
            channel: _,
            turns,
            provider_analysis_json,
            call_duration_secs,
        } = request.into_inner();
        let key = required("idempotency_key", idempotency_key)?;
        let provider_json = json_object("provider_analysis_json", &provider_analysis_json)?;
        let provider: Option<ProviderAnalysis> = if provider_analysis_json.trim().is_empty() {
            None
        } else {
            serde_json::from_str(&provider_json).ok()
        };
        let conversation = Conversation {
            turns: turns
                .into_iter()
                .map(
                    |common::TranscriptTurn {
                         role,
                         message,
                         time_in_call_secs: _,
                     }| Turn {
                        speaker: match common::Role::try_from(role) {
                            Ok(common::Role::User) => Speaker::User,
                            Ok(common::Role::Agent) => Speaker::Agent,
                            _ => Speaker::Other,
                        },
                        message,
                    },
                )
                .collect(),
            provider,
            duration_secs: call_duration_secs,
        };
        let subject = Subject {
            organization_id: organization_id.trim().to_owned(),
            lead_id: lead_id.trim().to_owned(),
            conversation_id: required("conversation_id", conversation_id)?,
            provider_analysis_json: provider_json,
        };
        let (analysis, created) = self.store.analyze(&key, subject, &conversation).await?;
        Ok(Response::new(pb::AnalyzeConversationResponse {
            analysis: Some(analysis.into()),
            created,
        }))
    }

    async fn get_analysis(
        &self,
        request: Request<pb::GetAnalysisRequest>,
    ) -> Result<Response<pb::GetAnalysisResponse>, Status> {
        let pb::GetAnalysisRequest {
            conversation_id,
            version,
        } = request.into_inner();
        let version = u32::try_from(version)
            .map_err(|_| ServiceError::invalid("version", "must not be negative"))?;
        let analysis = self
            .store
            .get(&required("conversation_id", conversation_id)?, version)
            .await?;
        Ok(Response::new(pb::GetAnalysisResponse {
            analysis: Some(analysis.into()),
        }))
    }

    async fn list_analyses(
        &self,
        request: Request<pb::ListAnalysesRequest>,
    ) -> Result<Response<pb::ListAnalysesResponse>, Status> {
        let pb::ListAnalysesRequest {
            conversation_id,
            lead_id,
            page,
        } = request.into_inner();
        let conversation_id = optional(conversation_id);
        let lead_id = optional(lead_id);
        if conversation_id.is_none() && lead_id.is_none() {
            return Err(ServiceError::invalid(
                "conversation_id",
                "a conversation_id or lead_id is required",
            )
            .into());
        }
        if page.as_ref().is_some_and(|p| !p.page_token.is_empty()) {
            return Err(ServiceError::invalid(
                "page.page_token",
                "paging analyses is not supported; use page_size",
            )
            .into());
        }
        let limit = callmesh_runtime::paging::Page::from_proto(page)
            .map_err(ServiceError::from)?
            .size;
        let analyses = self
            .store
            .list(conversation_id.as_deref(), lead_id.as_deref(), limit)
            .await?;
        Ok(Response::new(pb::ListAnalysesResponse {
            analyses: analyses.into_iter().map(Into::into).collect(),
            next_page_token: String::new(),
        }))
    }
}

impl From<StoredAnalysis> for pb::Analysis {
    fn from(stored: StoredAnalysis) -> Self {
        let StoredAnalysis {
            id,
            conversation_id,
            lead_id,
            organization_id,
            version,
            findings,
            provider_analysis_json,
            created_at,
        } = stored;
        let sentiment = match findings.sentiment {
            SentimentLabel::Negative => common::Sentiment::Negative,
            SentimentLabel::Neutral => common::Sentiment::Neutral,
            SentimentLabel::Positive => common::Sentiment::Positive,
        };
        let tier = match findings.lead_score {
            80.. => common::LeadTier::Hot,
            50..=79 => common::LeadTier::Warm,
            _ => common::LeadTier::Cold,
        };
        let outcome = match findings.outcome {
            Outcome::Success => pb::CallOutcome::Success,
            Outcome::Failure => pb::CallOutcome::Failure,
            Outcome::Unknown => pb::CallOutcome::Unknown,
        };
        pb::Analysis {
            id,
            conversation_id,
            lead_id,
            organization_id,
            version: i32::try_from(version).unwrap_or(i32::MAX),
            analyzer: pb::Analyzer::Rules.into(),
            sentiment: sentiment.into(),
            sentiment_score: findings.sentiment_score,
            keywords: Vec::new(),
            intents: Vec::new(),
            action_items: Vec::new(),
            lead_score: i32::from(findings.lead_score),
            score_factors: findings
                .score_factors
                .into_iter()
                .map(|f| pb::ScoreFactor {
                    name: f.name,
                    contribution: f.contribution,
                    detail: f.detail,
                })
                .collect(),
            tier: tier.into(),
            summary: findings.summary,
            outcome: outcome.into(),
            outcome_rationale: findings.outcome_rationale,
            provider_analysis_json,
            created_at: Some(timestamps::to_proto(created_at)),
        }
    }
}
