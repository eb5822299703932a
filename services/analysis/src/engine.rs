//! Which analyzer answers: the rules always run (they are the fallback and carry ElevenLabs'
//! criteria); the LLM, when configured, answers instead unless it fails, in which case the
//! rule-based result is kept and marked `llm_fallback` with the reason.

use std::sync::Arc;

use crate::analyzer::interview::{self, Evaluation, InterviewRules};
use crate::analyzer::{self, AnalyzerKind, Conversation, Findings, Rules};
use crate::llm::LlmAnalyzer;
use crate::settings::SettingsSource;

pub struct Engine {
    settings: SettingsSource,
    llm: Option<LlmAnalyzer>,
}

impl Engine {
    pub fn new(settings: SettingsSource, llm: Option<LlmAnalyzer>) -> Self {
        Engine { settings, llm }
    }

    pub async fn analyze(&self, organization_id: &str, conversation: Conversation) -> Findings {
        let settings = self.settings.current();
        let vocabulary = settings.vocabulary(organization_id);
        let conversation = Arc::new(conversation);
        let mut rules = {
            let (shared, vocabulary, conversation) =
                (settings.clone(), vocabulary.clone(), conversation.clone());
            off_the_workers(
                move || {
                    analyzer::analyze(
                        &conversation,
                        &Rules {
                            weights: &shared.scoring,
                            vocabulary: &vocabulary,
                        },
                    )
                },
                || {
                    analyzer::analyze(
                        &Conversation::default(),
                        &Rules {
                            weights: &settings.scoring,
                            vocabulary: &[],
                        },
                    )
                },
            )
            .await
        };
        let Some(llm) = &self.llm else {
            return rules;
        };
        if conversation.caller_turns().is_empty() {
            // Nothing for a model to read.
            return rules;
        }
        match llm.analyze(&conversation, &rules, &vocabulary).await {
            Ok(findings) => findings,
            Err(error) => {
                tracing::warn!(%error, "LLM analysis failed; the rule-based result stands in");
                error.count_fallback();
                rules.analyzer = AnalyzerKind::LlmFallback;
                rules.fallback_reason = error.to_string();
                rules
            }
        }
    }

    pub async fn evaluate_interview(
        &self,
        job_role: &str,
        conversation: Conversation,
    ) -> Evaluation {
        let settings = self.settings.current();
        let vocabulary = settings.interview_vocabulary(job_role);
        let conversation = Arc::new(conversation);
        let mut rules = {
            let (vocabulary, conversation) = (vocabulary.clone(), conversation.clone());
            off_the_workers(
                move || {
                    interview::evaluate(
                        &conversation,
                        &InterviewRules {
                            vocabulary: &vocabulary,
                        },
                    )
                },
                || {
                    interview::evaluate(
                        &Conversation::default(),
                        &InterviewRules { vocabulary: &[] },
                    )
                },
            )
            .await
        };
        let Some(llm) = &self.llm else {
            return rules;
        };
        if conversation.caller_turns().is_empty() {
            return rules;
        }
        match llm
            .evaluate_interview(&conversation, job_role, &vocabulary)
            .await
        {
            Ok(evaluation) => evaluation,
            Err(error) => {
                tracing::warn!(%error, "LLM interview evaluation failed; the rule-based result stands in");
                error.count_fallback();
                rules.analyzer = AnalyzerKind::LlmFallback;
                rules.fallback_reason = error.to_string();
                rules
            }
        }
    }
}

/// The rules are CPU work (a long call takes a while), so they run off the async workers; a
/// panic in them is logged and answered by `fallback` (the analysis of an empty call) rather
/// than failing the request.
///
/// At most one analysis per core runs at a time; the rest wait their turn here. A batch of
/// calls would otherwise start a thread for each, and the operating system would share the
/// cores between dozens of them, to the cost of everything else on the machine that is waiting
/// to run (the gateway answering webhooks, say), without finishing the batch any sooner.
async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
    fallback: impl FnOnce() -> T,
) -> T {
    static CORES: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    });
    // The semaphore is never closed.
    let _turn = CORES.acquire().await;
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => {
            tracing::error!(%error, "the rule-based analyzer failed");
            fallback()
        }
    }
}
