//! The LLM analyzer: an OpenAI-compatible chat completion (OpenAI, or an Azure OpenAI
//! deployment) asked for a JSON-schema structured answer, through `async-openai`. The reply is
//! validated against the same schema before anything is used; a timeout, an error or nonsense
//! is retried with backoff (`backon`) and, when the attempts run out, the caller falls back to
//! the rule-based result and records why.

use std::sync::LazyLock;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::{AzureConfig, Config, OpenAIConfig};
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, ResponseFormat,
    ResponseFormatJsonSchema,
};
use backon::{ExponentialBuilder, Retryable};
use serde::Deserialize;
use serde_json::{Value, json};

use callmesh_runtime::ConfigError;
use callmesh_runtime::config::{env_or, env_parse, env_var};

use crate::analyzer::interview::{Evaluation, NOT_OBSERVABLE};
use crate::analyzer::{
    AnalyzerKind, Conversation, Findings, Intent, Outcome, ScoreFactor, SentimentLabel, Speaker,
};

/// The transcript sent to the model is cut to this many characters (the start and the end of
/// the call are kept), so a very long call costs a bounded prompt.
const PROMPT_TRANSCRIPT_LIMIT: usize = 48_000;

#[derive(Clone)]
pub enum Provider {
    OpenAi {
        api_key: String,
        base_url: String,
        model: String,
    },
    Azure {
        api_key: String,
        endpoint: String,
        deployment: String,
        api_version: String,
    },
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Provider::OpenAi {
                base_url, model, ..
            } => f
                .debug_struct("OpenAi")
                .field("base_url", base_url)
                .field("model", model)
                .finish_non_exhaustive(),
            Provider::Azure {
                endpoint,
                deployment,
                api_version,
                ..
            } => f
                .debug_struct("Azure")
                .field("endpoint", endpoint)
                .field("deployment", deployment)
                .field("api_version", api_version)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub provider: Provider,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts in all, at least 1.
    pub attempts: usize,
}

impl LlmConfig {
    /// `AZURE_OPENAI_API_KEY` + `AZURE_OPENAI_ENDPOINT` (+ `AZURE_OPENAI_DEPLOYMENT`,
    /// `AZURE_OPENAI_API_VERSION`), else `OPENAI_API_KEY` (+ `OPENAI_BASE_URL`, `OPENAI_MODEL`);
    /// neither → no LLM. `ANALYSIS_LLM_TIMEOUT_MS` (15 s) and `ANALYSIS_LLM_ATTEMPTS` (3) bound
    /// each call; their product stays under the gateway inbox's 60 s lease, so a slow model
    /// never makes a second dispatcher take the same call over.
    pub fn from_env() -> Result<Option<LlmConfig>, ConfigError> {
        let timeout = Duration::from_millis(env_parse("ANALYSIS_LLM_TIMEOUT_MS", 15_000u64)?);
        let attempts = env_parse("ANALYSIS_LLM_ATTEMPTS", 3usize)?;
        if attempts == 0 {
            return Err(ConfigError::invalid(
                "ANALYSIS_LLM_ATTEMPTS",
                "must be at least 1",
            ));
        }
        let provider = match (
            env_var("AZURE_OPENAI_API_KEY"),
            env_var("AZURE_OPENAI_ENDPOINT"),
            env_var("OPENAI_API_KEY"),
        ) {
            (Some(api_key), Some(endpoint), _) => Provider::Azure {
                api_key,
                endpoint: endpoint.trim_end_matches('/').to_owned(),
                deployment: env_or("AZURE_OPENAI_DEPLOYMENT", "gpt-4o"),
                api_version: env_or("AZURE_OPENAI_API_VERSION", "2024-10-21"),
            },
            (Some(_), None, None) => {
                return Err(ConfigError::invalid(
                    "AZURE_OPENAI_ENDPOINT",
                    "is required with AZURE_OPENAI_API_KEY",
                ));
            }
            (_, _, Some(api_key)) => Provider::OpenAi {
                api_key,
                base_url: env_or("OPENAI_BASE_URL", "https://api.openai.com/v1")
                    .trim_end_matches('/')
                    .to_owned(),
                model: env_or("OPENAI_MODEL", "gpt-4o"),
            },
            _ => return Ok(None),
        };
        Ok(Some(LlmConfig {
            provider,
            timeout,
            attempts,
        }))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the model did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the model's API failed: {0}")]
    Api(String),
    #[error("the model's API refused the request: {0}")]
    Rejected(String),
    #[error("the model refused: {0}")]
    Refusal(String),
    #[error("the model's answer is not JSON: {0}")]
    InvalidJson(String),
    #[error("the model's answer does not match the schema: {0}")]
    Schema(String),
}

impl LlmError {
    /// Counts a fall back to the rules in `callmesh_analysis_llm_fallbacks_total{reason}`.
    pub fn count_fallback(&self) {
        let reason = match self {
            LlmError::Timeout(_) => "timeout",
            LlmError::Api(_) => "api",
            LlmError::Rejected(_) => "rejected",
            LlmError::Refusal(_) => "refusal",
            LlmError::InvalidJson(_) => "invalid_json",
            LlmError::Schema(_) => "schema",
        };
        metrics::counter!("callmesh_analysis_llm_fallbacks_total", "reason" => reason).increment(1);
    }

    /// Timeouts, transport errors and nonsense are worth another try; a 4xx that survived the
    /// client's own 429 retries (bad key, unknown model) is not.
    fn retryable(&self) -> bool {
        !matches!(self, LlmError::Rejected(_))
    }
}

enum Backend {
    OpenAi(Client<OpenAIConfig>),
    Azure(Client<AzureConfig>),
}

pub struct LlmAnalyzer {
    backend: Backend,
    model: String,
    timeout: Duration,
    attempts: usize,
}

impl LlmAnalyzer {
    pub fn new(config: LlmConfig) -> Self {
        let (backend, model) = match config.provider {
            Provider::OpenAi {
                api_key,
                base_url,
                model,
            } => (
                Backend::OpenAi(Client::with_config(
                    OpenAIConfig::new()
                        .with_api_key(api_key)
                        .with_api_base(base_url),
                )),
                model,
            ),
            Provider::Azure {
                api_key,
                endpoint,
                deployment,
                api_version,
            } => (
                Backend::Azure(Client::with_config(
                    AzureConfig::new()
                        .with_api_key(api_key)
                        .with_api_base(endpoint)
                        .with_deployment_id(deployment.clone())
                        .with_api_version(api_version),
                )),
                deployment,
            ),
        };
        LlmAnalyzer {
            backend,
            model,
            timeout: config.timeout,
            attempts: config.attempts.max(1),
        }
    }

    /// The conversation analysed by the model. `rules` is the rule-based result, whose
    /// ElevenLabs criteria and collected data carry over.
    pub async fn analyze(
        &self,
        conversation: &Conversation,
        rules: &Findings,
        vocabulary: &[String],
    ) -> Result<Findings, LlmError> {
        let mut prompt = String::new();
        if !vocabulary.is_empty() {
            prompt.push_str(&format!(
                "The business's own terms: {}.\n",
                vocabulary.join(", ")
            ));
        }
        if let Some(summary) = conversation
            .provider
            .as_ref()
            .and_then(|p| p.transcript_summary.as_deref())
        {
            prompt.push_str(&format!("The voice platform's summary: {summary}\n"));
        }
        prompt.push_str(&format!(
            "Call duration: {} s.\nTranscript:\n{}",
            conversation.duration_secs,
            transcript(conversation)
        ));
        let answer = self
            .complete(
                CONVERSATION_PROMPT,
                prompt,
                "call_analysis",
                &CONVERSATION_SCHEMA,
                &CONVERSATION_VALIDATOR,
            )
            .await?;
        let reply: ConversationReply =
            serde_json::from_value(answer).map_err(|e| LlmError::Schema(e.to_string()))?;
        if reply.summary.trim().is_empty() {
            return Err(LlmError::Schema("summary is empty".into()));
        }
        let mut factors = reply.score_factors;
        let lead_score = crate::analyzer::settle_score(&mut factors);
        Ok(Findings {
            analyzer: AnalyzerKind::Llm,
            fallback_reason: String::new(),
            sentiment: reply.sentiment,
            sentiment_score: reply.sentiment_score,
            keywords: reply.keywords,
            intents: reply.intents,
            action_items: reply.action_items,
            lead_score,
            score_factors: factors,
            summary: reply.summary,
            outcome: reply.outcome,
            outcome_rationale: reply.outcome_rationale,
            criteria: rules.criteria.clone(),
            collected: rules.collected.clone(),
            // Read by the rules from the agent's data and the caller's words, not asked of the
            // model.
            caller_name: rules.caller_name.clone(),
        })
    }

    pub async fn evaluate_interview(
        &self,
        conversation: &Conversation,
        job_role: &str,
        vocabulary: &[String],
    ) -> Result<Evaluation, LlmError> {
        let mut prompt = format!("Job role: {}\n", job_role.trim());
        if !vocabulary.is_empty() {
            prompt.push_str(&format!("Terms of the role: {}.\n", vocabulary.join(", ")));
        }
        prompt.push_str(&format!(
            "Transcript (agent = interviewer, user = candidate):\n{}",
            transcript(conversation)
        ));
        let answer = self
            .complete(
                INTERVIEW_PROMPT,
                prompt,
                "interview_evaluation",
                &INTERVIEW_SCHEMA,
                &INTERVIEW_VALIDATOR,
            )
            .await?;
        let reply: InterviewReply =
            serde_json::from_value(answer).map_err(|e| LlmError::Schema(e.to_string()))?;
        let score = |v: u32| u8::try_from(v.min(100)).unwrap_or(100);
        Ok(Evaluation {
            analyzer: AnalyzerKind::Llm,
            fallback_reason: String::new(),
            domain_score: score(reply.domain_score),
            behavioral_score: score(reply.behavioral_score),
            communication_score: score(reply.communication_score),
            overall_score: score(reply.overall_score),
            confidence_level: reply.confidence_level,
            cheating_detected: reply.cheating_detected,
            speech_pattern: reply.speech_pattern,
            areas_of_improvement: reply.areas_of_improvement,
            system_recommendation: reply.system_recommendation,
            // Whatever the model says, a transcript shows none of these.
            not_observable: NOT_OBSERVABLE.iter().map(|s| (*s).to_owned()).collect(),
            evidence: reply.evidence,
        })
    }

    /// One structured completion, validated, with a timeout per attempt and retries.
    async fn complete(
        &self,
        system: &str,
        user: String,
        name: &str,
        schema: &Value,
        validator: &jsonschema::Validator,
    ) -> Result<Value, LlmError> {
        let request = CreateChatCompletionRequest {
            model: self.model.clone(),
            messages: vec![
                ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage::from(
                    system,
                )),
                ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage::from(user)),
            ],
            response_format: Some(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    description: None,
                    name: name.to_owned(),
                    schema: schema.clone(),
                    strict: Some(true),
                },
            }),
            temperature: Some(0.0),
            ..Default::default()
        };
        let attempt = || async {
            let reply = tokio::time::timeout(self.timeout, self.send(request.clone()))
                .await
                .map_err(|_| LlmError::Timeout(self.timeout))??;
            let answer: Value =
                serde_json::from_str(&reply).map_err(|e| LlmError::InvalidJson(e.to_string()))?;
            if let Some(error) = validator.iter_errors(&answer).next() {
                return Err(LlmError::Schema(format!(
                    "{} at {}",
                    error,
                    error.instance_path()
                )));
            }
            Ok(answer)
        };
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(5))
                    .with_max_times(self.attempts - 1)
                    .with_jitter(),
            )
            .sleep(tokio::time::sleep)
            .when(LlmError::retryable)
            .notify(|error, wait| {
                tracing::warn!(%error, ?wait, "LLM analysis failed; retrying");
            })
            .await
    }

    async fn send(&self, request: CreateChatCompletionRequest) -> Result<String, LlmError> {
        match &self.backend {
            Backend::OpenAi(client) => send(client, request).await,
            Backend::Azure(client) => send(client, request).await,
        }
    }
}

async fn send<C: Config>(
    client: &Client<C>,
    request: CreateChatCompletionRequest,
) -> Result<String, LlmError> {
    let started = std::time::Instant::now();
    let response = client.chat().create(request).await;
    let status = match &response {
        Ok(_) => Some(200),
        Err(OpenAIError::ApiError(api)) => Some(api.status_code.as_u16()),
        Err(_) => None,
    };
    callmesh_runtime::metrics::provider_request(
        "llm",
        "chat_completions",
        status,
        started.elapsed(),
    );
    let response = response.map_err(|e| match e {
        OpenAIError::ApiError(api) if api.status_code.is_client_error() => LlmError::Rejected(
            format!("HTTP {}: {}", api.status_code, api.api_error.message),
        ),
        OpenAIError::JSONDeserialize(error, _) => LlmError::InvalidJson(error.to_string()),
        other => LlmError::Api(other.to_string()),
    })?;
    let message = response
        .choices
        .into_iter()
        .next()
        .map(|c| c.message)
        .ok_or_else(|| LlmError::InvalidJson("no choices in the answer".into()))?;
    if let Some(refusal) = message.refusal.filter(|r| !r.is_empty()) {
        return Err(LlmError::Refusal(refusal));
    }
    message
        .content
        .ok_or_else(|| LlmError::InvalidJson("the answer has no content".into()))
}

/// "agent: …" / "user: …" lines; the middle of a very long call is left out, and said so.
fn transcript(conversation: &Conversation) -> String {
    let lines: Vec<String> = conversation
        .turns
        .iter()
        .filter(|t| !t.message.trim().is_empty())
        .map(|t| {
            let who = match t.speaker {
                Speaker::User => "user",
                Speaker::Agent => "agent",
                Speaker::Other => "other",
            };
            format!("{who}: {}", t.message.trim())
        })
        .collect();
    let total: usize = lines.iter().map(|l| l.len() + 1).sum();
    if total <= PROMPT_TRANSCRIPT_LIMIT {
        return lines.join("\n");
    }
    let half = PROMPT_TRANSCRIPT_LIMIT / 2;
    let mut head = Vec::new();
    let mut used = 0;
    for line in &lines {
        if used + line.len() > half {
            break;
        }
        used += line.len() + 1;
        head.push(line.as_str());
    }
    let mut tail = Vec::new();
    used = 0;
    for line in lines.iter().rev() {
        if used + line.len() > half {
            break;
        }
        used += line.len() + 1;
        tail.push(line.as_str());
    }
    tail.reverse();
    let omitted = lines.len() - head.len() - tail.len();
    format!(
        "{}\n[… {omitted} turns omitted …]\n{}",
        head.join("\n"),
        tail.join("\n")
    )
}

const CONVERSATION_PROMPT: &str = "You analyse phone calls between a business's AI voice agent \
(agent) and a lead or customer (user). Judge only from the transcript. sentiment and \
sentiment_score (-1 to 1) describe the user. intents: what the user wanted, each with the \
user's own sentences as evidence. action_items: next steps someone committed to, as short \
imperatives. score_factors: the reasons for a 0-100 lead score, each with a signed integer \
contribution; the score is their sum. summary: two or three sentences. outcome: success, \
failure or unknown, with a one-sentence rationale.";

const INTERVIEW_PROMPT: &str = "You evaluate a screening interview held by an AI interviewer \
(agent) with a candidate (user). Judge only from the transcript: do not guess anything a \
transcript cannot show, such as body language, eye contact or appearance. Scores are 0-100. \
confidence_level is high, medium or low. cheating_detected is true only when the transcript \
shows outside help; quote it in evidence. system_recommendation is one of: Recommended for \
Panel Interview, Recommended for Further Screening, Not Recommended.";

const INTENT_NAMES: [&str; 10] = [
    "purchase",
    "pricing",
    "booking",
    "support",
    "complaint",
    "call_back",
    "not_interested",
    "wrong_number",
    "voicemail",
    "interview",
];

static CONVERSATION_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["sentiment", "sentiment_score", "keywords", "intents", "action_items",
                     "score_factors", "summary", "outcome", "outcome_rationale"],
        "properties": {
            "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
            "sentiment_score": {"type": "number", "minimum": -1, "maximum": 1},
            "keywords": {"type": "array", "items": {"type": "string"}, "maxItems": 12},
            "intents": {"type": "array", "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "confidence", "evidence"],
                "properties": {
                    "name": {"type": "string", "enum": INTENT_NAMES},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "evidence": {"type": "array", "items": {"type": "string"}}
                }
            }},
            "action_items": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
            "score_factors": {"type": "array", "minItems": 1, "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "contribution", "detail"],
                "properties": {
                    "name": {"type": "string"},
                    "contribution": {"type": "integer", "minimum": -100, "maximum": 100},
                    "detail": {"type": "string"}
                }
            }},
            "summary": {"type": "string"},
            "outcome": {"type": "string", "enum": ["success", "failure", "unknown"]},
            "outcome_rationale": {"type": "string"}
        }
    })
});

static INTERVIEW_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    let score = json!({"type": "integer", "minimum": 0, "maximum": 100});
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["domain_score", "behavioral_score", "communication_score", "overall_score",
                     "confidence_level", "cheating_detected", "speech_pattern",
                     "areas_of_improvement", "system_recommendation", "evidence"],
        "properties": {
            "domain_score": score,
            "behavioral_score": score,
            "communication_score": score,
            "overall_score": score,
            "confidence_level": {"type": "string", "enum": ["high", "medium", "low"]},
            "cheating_detected": {"type": "boolean"},
            "speech_pattern": {"type": "string"},
            "areas_of_improvement": {"type": "array", "items": {"type": "string"}},
            "system_recommendation": {"type": "string", "enum": [
                "Recommended for Panel Interview",
                "Recommended for Further Screening",
                "Not Recommended"
            ]},
            "evidence": {"type": "array", "items": {"type": "string"}}
        }
    })
});

fn validator(schema: &Value) -> jsonschema::Validator {
    // The schemas are constants; a mistake in one is a programming error caught by every test.
    #[allow(clippy::expect_used)]
    jsonschema::validator_for(schema).expect("the built-in JSON schemas are valid")
}

static CONVERSATION_VALIDATOR: LazyLock<jsonschema::Validator> =
    LazyLock::new(|| validator(&CONVERSATION_SCHEMA));
static INTERVIEW_VALIDATOR: LazyLock<jsonschema::Validator> =
    LazyLock::new(|| validator(&INTERVIEW_SCHEMA));

#[derive(Deserialize)]
struct ConversationReply {
    sentiment: SentimentLabel,
    sentiment_score: f64,
    keywords: Vec<String>,
    intents: Vec<Intent>,
    action_items: Vec<String>,
    score_factors: Vec<ScoreFactor>,
    summary: String,
    outcome: Outcome,
    outcome_rationale: String,
}

#[derive(Deserialize)]
struct InterviewReply {
    domain_score: u32,
    behavioral_score: u32,
    communication_score: u32,
    overall_score: u32,
    confidence_level: String,
    cheating_detected: bool,
    speech_pattern: String,
    areas_of_improvement: Vec<String>,
    system_recommendation: String,
    evidence: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_compile_and_the_secret_stays_out_of_debug() {
        assert!(CONVERSATION_VALIDATOR.is_valid(&json!({
            "sentiment": "positive", "sentiment_score": 0.5, "keywords": [], "intents": [],
            "action_items": [], "score_factors": [{"name": "x", "contribution": 5, "detail": ""}],
            "summary": "s", "outcome": "unknown", "outcome_rationale": "r"
        })));
        assert!(!INTERVIEW_VALIDATOR.is_valid(&json!({"domain_score": 101})));
        let provider = Provider::OpenAi {
            api_key: "sk-very-secret".into(),
            base_url: "http://127.0.0.1:1".into(),
            model: "gpt-4o".into(),
        };
        assert!(!format!("{provider:?}").contains("sk-very-secret"));
    }
}
