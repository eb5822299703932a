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
        // The rules are CPU work (a long call takes a while); keep them off the async workers.
        let rules = {
            let (settings, vocabulary, conversation) =
                (settings.clone(), vocabulary.clone(), conversation.clone());
            tokio::task::spawn_blocking(move || {
                analyzer::analyze(
                    &conversation,
                    &Rules {
                        weights: &settings.scoring,
                        vocabulary: &vocabulary,
                    },
                )
            })
            .await
        };
        let mut rules = match rules {
            Ok(findings) => findings,
            // A panic inside the rules must not take a request (or the service) down with it.
            Err(error) => {
                tracing::error!(%error, "the rule-based analyzer failed");
                analyzer::analyze(
                    &Conversation::default(),
                    &Rules {
                        weights: &settings.scoring,
                        vocabulary: &[],
                    },
                )
            }
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
        let rules = {
            let (vocabulary, conversation) = (vocabulary.clone(), conversation.clone());
            tokio::task::spawn_blocking(move || {
                interview::evaluate(
                    &conversation,
                    &InterviewRules {
                        vocabulary: &vocabulary,
                    },
                )
            })
            .await
        };
        let mut rules = match rules {
            Ok(evaluation) => evaluation,
            Err(error) => {
                tracing::error!(%error, "the rule-based interview evaluation failed");
                interview::evaluate(
                    &Conversation::default(),
                    &InterviewRules { vocabulary: &[] },
                )
            }
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
                rules.analyzer = AnalyzerKind::LlmFallback;
                rules.fallback_reason = error.to_string();
                rules
            }
        }
    }
}
