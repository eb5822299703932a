//! The tonic adapter of the analysis service.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use callmesh_proto::analysis::v1 as pb;
use callmesh_proto::analysis::v1::analysis_service_server::AnalysisService;
use callmesh_proto::common::v1 as common;
use callmesh_runtime::ServiceError;
use callmesh_runtime::batch;
use callmesh_runtime::errors::{json_object, optional, required};
use callmesh_runtime::timestamps;

use crate::analyzer::names::NameOrigin;
use crate::analyzer::{
    AnalyzerKind, Conversation, Findings, Outcome, ProviderAnalysis, SentimentLabel, Speaker, Tier,
    Turn,
};
use crate::engine::Engine;
use crate::interviews::{InterviewStore, NewSession, Session, StoredEvaluation};
use crate::store::{AnalysisStore, StoredAnalysis, Subject};

pub struct AnalysisGrpc {
    store: AnalysisStore,
    interviews: InterviewStore,
    engine: Arc<Engine>,
}

impl AnalysisGrpc {
    pub fn new(store: AnalysisStore, interviews: InterviewStore, engine: Arc<Engine>) -> Self {
        AnalysisGrpc {
            store,
            interviews,
            engine,
        }
    }
}

/// A conversation to analyse, checked: its key, what it is about, and its words.
type ConversationRequest = (String, Subject, Conversation);

/// A conversation analysed, not yet kept: new findings, or the answer its key already had.
enum Analysed {
    New {
        key: String,
        subject: Subject,
        findings: Findings,
        interview_session: Option<pb::InterviewSession>,
    },
    Known(pb::AnalyzeConversationResponse),
}

impl AnalysisGrpc {
    /// Analyses conversations (at once, each as it would be alone) and keeps the new results
    /// in one transaction. Answers are in the order of `conversations`.
    async fn analyze_all(
        &self,
        conversations: Vec<ConversationRequest>,
    ) -> Vec<Result<pb::AnalyzeConversationResponse, Status>> {
        let count = conversations.len();
        // What is already known of them, with one query each for the whole batch.
        let keys: Vec<&str> = conversations.iter().map(|(key, ..)| key.as_str()).collect();
        let ids: Vec<&str> = conversations
            .iter()
            .map(|(_, subject, _)| subject.conversation_id.as_str())
            .collect();
        let known = tokio::try_join!(
            self.store.existing_many(&keys),
            self.interviews.linked_sessions(&ids)
        );
        let (existing, sessions) = match known {
            Ok(known) => known,
            Err(error) => {
                let status = Status::from(error);
                return (0..count).map(|_| Err(status.clone())).collect();
            }
        };
        let analysed = futures_util::future::join_all(conversations.into_iter().map(
            |(key, subject, conversation)| {
                let interview_session = sessions
                    .get(&subject.conversation_id)
                    .cloned()
                    .map(Into::into);
                let known = existing.get(&key).cloned();
                async move {
                    match known {
                        Some(analysis) => Analysed::Known(pb::AnalyzeConversationResponse {
                            analysis: Some(analysis.into()),
                            created: false,
                            interview_session,
                        }),
                        None => Analysed::New {
                            findings: self.findings(&subject, conversation).await,
                            key,
                            subject,
                            interview_session,
                        },
                    }
                }
            },
        ))
        .await;
        let mut answers = Vec::with_capacity(count);
        let mut new = Vec::new();
        let mut pending = Vec::new();
        for analysed in analysed {
            match analysed {
                Analysed::New {
                    key,
                    subject,
                    findings,
                    interview_session,
                } => {
                    pending.push((answers.len(), interview_session));
                    new.push((key, subject, findings));
                    answers.push(Err(Status::internal("the analysis was not kept")));
                }
                Analysed::Known(response) => answers.push(Ok(response)),
            }
        }
        let stored = self.store.insert_many(&new).await;
        for ((slot, interview_session), stored) in pending.into_iter().zip(stored) {
            answers[slot] = stored
                .map(|(analysis, created)| pb::AnalyzeConversationResponse {
                    analysis: Some(analysis.into()),
                    created,
                    interview_session,
                })
                .map_err(Into::into);
        }
        answers
    }

    /// The analyzer's findings on one conversation, timed.
    async fn findings(&self, subject: &Subject, conversation: Conversation) -> Findings {
        let started = std::time::Instant::now();
        let findings = self
            .engine
            .analyze(&subject.organization_id, conversation)
            .await;
        let analyzer = match findings.analyzer {
            AnalyzerKind::Rules => "rules",
            AnalyzerKind::Llm => "llm",
            AnalyzerKind::LlmFallback => "llm_fallback",
        };
        metrics::histogram!("callmesh_analysis_duration_seconds", "analyzer" => analyzer)
            .record(started.elapsed().as_secs_f64());
        findings
    }
}

/// An `AnalyzeConversationRequest` checked.
fn conversation_request(
    request: pb::AnalyzeConversationRequest,
) -> Result<ConversationRequest, Status> {
    let pb::AnalyzeConversationRequest {
        idempotency_key,
        organization_id,
        lead_id,
        conversation_id,
        channel: _,
        turns,
        provider_analysis_json,
        call_duration_secs,
    } = request;
    let key = required("idempotency_key", idempotency_key)?;
    let provider_json = json_object("provider_analysis_json", &provider_analysis_json)?;
    let provider: Option<ProviderAnalysis> = if provider_analysis_json.trim().is_empty() {
        None
    } else {
        serde_json::from_str(&provider_json).ok()
    };
    let subject = Subject {
        organization_id: organization_id.trim().to_owned(),
        lead_id: lead_id.trim().to_owned(),
        conversation_id: required("conversation_id", conversation_id)?,
        provider_analysis_json: provider_json,
    };
    let conversation = Conversation {
        turns: turns_of(turns),
        provider,
        duration_secs: call_duration_secs,
    };
    Ok((key, subject, conversation))
}

fn turns_of(turns: Vec<common::TranscriptTurn>) -> Vec<Turn> {
    turns
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
        .collect()
}

fn analyzer_of(kind: AnalyzerKind) -> pb::Analyzer {
    match kind {
        AnalyzerKind::Rules => pb::Analyzer::Rules,
        AnalyzerKind::Llm => pb::Analyzer::Llm,
        AnalyzerKind::LlmFallback => pb::Analyzer::LlmFallback,
    }
}

#[tonic::async_trait]
impl AnalysisService for AnalysisGrpc {
    async fn analyze_conversation(
        &self,
        request: Request<pb::AnalyzeConversationRequest>,
    ) -> Result<Response<pb::AnalyzeConversationResponse>, Status> {
        let conversation = conversation_request(request.into_inner())?;
        self.analyze_all(vec![conversation])
            .await
            .pop()
            .unwrap_or_else(|| Err(Status::internal("the conversation was not analysed")))
            .map(Response::new)
    }

    async fn batch_analyze_conversation(
        &self,
        request: Request<pb::BatchAnalyzeConversationRequest>,
    ) -> Result<Response<pb::BatchAnalyzeConversationResponse>, Status> {
        let results = batch::answer(
            request.into_inner().items,
            conversation_request,
            async |conversations| self.analyze_all(conversations).await,
            |response| response,
        )
        .await?;
        Ok(Response::new(pb::BatchAnalyzeConversationResponse {
            results,
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

    async fn create_interview_session(
        &self,
        request: Request<pb::CreateInterviewSessionRequest>,
    ) -> Result<Response<pb::CreateInterviewSessionResponse>, Status> {
        let pb::CreateInterviewSessionRequest {
            idempotency_key,
            candidate_name,
            job_role,
            job_id,
            conversation_id,
        } = request.into_inner();
        let key = required("idempotency_key", idempotency_key)?;
        let new = NewSession {
            candidate_name: required("candidate_name", candidate_name)?,
            job_role: required("job_role", job_role)?,
            job_id: required("job_id", job_id)?,
            conversation_id: conversation_id.trim().to_owned(),
        };
        let (session, created) = self.interviews.create_session(&key, new).await?;
        Ok(Response::new(pb::CreateInterviewSessionResponse {
            session: Some(session.into()),
            created,
        }))
    }

    async fn get_interview_session(
        &self,
        request: Request<pb::GetInterviewSessionRequest>,
    ) -> Result<Response<pb::GetInterviewSessionResponse>, Status> {
        let pb::GetInterviewSessionRequest {
            session_id,
            conversation_id,
        } = request.into_inner();
        let session = match (optional(session_id), optional(conversation_id)) {
            (Some(session_id), _) => self.interviews.session(&session_id).await?,
            (None, Some(conversation_id)) => {
                self.interviews
                    .session_of_conversation(&conversation_id)
                    .await?
            }
            (None, None) => {
                return Err(ServiceError::invalid(
                    "session_id",
                    "a session_id or conversation_id is required",
                )
                .into());
            }
        };
        Ok(Response::new(pb::GetInterviewSessionResponse {
            session: Some(session.into()),
        }))
    }

    async fn analyze_interview(
        &self,
        request: Request<pb::AnalyzeInterviewRequest>,
    ) -> Result<Response<pb::AnalyzeInterviewResponse>, Status> {
        let pb::AnalyzeInterviewRequest {
            idempotency_key,
            session_id,
            conversation_id,
            turns,
        } = request.into_inner();
        let conversation_id = conversation_id.trim().to_owned();
        let conversation = Conversation {
            turns: turns_of(turns),
            ..Conversation::default()
        };
        let Some(session_id) = optional(session_id) else {
            // A dry run: evaluated, returned, not kept.
            let evaluation = self.engine.evaluate_interview("", conversation).await;
            return Ok(Response::new(pb::AnalyzeInterviewResponse {
                evaluation: Some(
                    StoredEvaluation {
                        id: String::new(),
                        session_id: String::new(),
                        conversation_id,
                        version: 0,
                        evaluation,
                        created_at: chrono::Utc::now(),
                    }
                    .into(),
                ),
                created: false,
            }));
        };
        let key = required("idempotency_key", idempotency_key)?;
        if let Some(existing) = self.interviews.existing(&key).await? {
            return Ok(Response::new(pb::AnalyzeInterviewResponse {
                evaluation: Some(existing.into()),
                created: false,
            }));
        }
        let session = self.interviews.session(&session_id).await?;
        let conversation_id = if conversation_id.is_empty() {
            session.conversation_id.clone()
        } else {
            conversation_id
        };
        let evaluation = self
            .engine
            .evaluate_interview(&session.job_role, conversation)
            .await;
        let (stored, created) = self
            .interviews
            .insert(&key, &session, &conversation_id, &evaluation)
            .await?;
        Ok(Response::new(pb::AnalyzeInterviewResponse {
            evaluation: Some(stored.into()),
            created,
        }))
    }

    async fn list_interview_evaluations(
        &self,
        request: Request<pb::ListInterviewEvaluationsRequest>,
    ) -> Result<Response<pb::ListInterviewEvaluationsResponse>, Status> {
        let pb::ListInterviewEvaluationsRequest { job_id, page } = request.into_inner();
        let job_id = required("job_id", job_id)?;
        if page.as_ref().is_some_and(|p| !p.page_token.is_empty()) {
            return Err(ServiceError::invalid(
                "page.page_token",
                "paging evaluations is not supported; use page_size",
            )
            .into());
        }
        let limit = callmesh_runtime::paging::Page::from_proto(page)
            .map_err(ServiceError::from)?
            .size;
        let evaluations = self.interviews.list_by_job(&job_id, limit).await?;
        Ok(Response::new(pb::ListInterviewEvaluationsResponse {
            evaluations: evaluations.into_iter().map(Into::into).collect(),
            next_page_token: String::new(),
        }))
    }

    async fn list_interview_sessions(
        &self,
        request: Request<pb::ListInterviewSessionsRequest>,
    ) -> Result<Response<pb::ListInterviewSessionsResponse>, Status> {
        let pb::ListInterviewSessionsRequest { job_id, page } = request.into_inner();
        let job_id = required("job_id", job_id)?;
        let page = callmesh_runtime::paging::Page::from_proto(page).map_err(ServiceError::from)?;
        let sessions = self
            .interviews
            .sessions_of_job(&job_id, page.after.as_deref(), page.size)
            .await?;
        let next_page_token =
            page.next_token(sessions.iter().map(|(s, _)| s.id.as_str()), sessions.len());
        Ok(Response::new(pb::ListInterviewSessionsResponse {
            sessions: sessions
                .into_iter()
                .map(|(session, latest)| pb::InterviewSessionSummary {
                    session: Some(session.into()),
                    latest_evaluation: latest.map(Into::into),
                })
                .collect(),
            next_page_token,
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
        let tier = match Tier::of(findings.lead_score) {
            Tier::Hot => common::LeadTier::Hot,
            Tier::Warm => common::LeadTier::Warm,
            Tier::Cold => common::LeadTier::Cold,
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
            analyzer: analyzer_of(findings.analyzer).into(),
            sentiment: sentiment.into(),
            sentiment_score: findings.sentiment_score,
            keywords: findings.keywords,
            intents: findings
                .intents
                .into_iter()
                .map(|i| pb::Intent {
                    name: i.name,
                    confidence: i.confidence,
                    evidence: i.evidence,
                })
                .collect(),
            action_items: findings.action_items,
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
            caller_name: findings.caller_name.map(|heard| pb::CallerName {
                name: heard.name,
                source: match heard.source {
                    NameOrigin::Agent => common::NameSource::Agent,
                    NameOrigin::Caller => common::NameSource::Caller,
                }
                .into(),
                evidence: heard.evidence,
            }),
        }
    }
}

impl From<Session> for pb::InterviewSession {
    fn from(session: Session) -> Self {
        let Session {
            id,
            candidate_name,
            job_role,
            job_id,
            conversation_id,
            created_at,
        } = session;
        pb::InterviewSession {
            id,
            candidate_name,
            job_role,
            job_id,
            conversation_id,
            created_at: Some(timestamps::to_proto(created_at)),
        }
    }
}

impl From<StoredEvaluation> for pb::InterviewEvaluation {
    fn from(stored: StoredEvaluation) -> Self {
        let StoredEvaluation {
            id,
            session_id,
            conversation_id,
            version,
            evaluation,
            created_at,
        } = stored;
        pb::InterviewEvaluation {
            id,
            session_id,
            conversation_id,
            version: i32::try_from(version).unwrap_or(i32::MAX),
            analyzer: analyzer_of(evaluation.analyzer).into(),
            domain_score: i32::from(evaluation.domain_score),
            behavioral_score: i32::from(evaluation.behavioral_score),
            communication_score: i32::from(evaluation.communication_score),
            overall_score: i32::from(evaluation.overall_score),
            confidence_level: evaluation.confidence_level,
            cheating_detected: evaluation.cheating_detected,
            speech_pattern: evaluation.speech_pattern,
            areas_of_improvement: evaluation.areas_of_improvement,
            system_recommendation: evaluation.system_recommendation,
            not_observable: evaluation.not_observable,
            created_at: Some(timestamps::to_proto(created_at)),
        }
    }
}
