//! The rule-based analyzer: deterministic, explainable, no network. The same transcript with the
//! same settings always gives the same result, and every point of the lead score comes from a
//! named factor whose weight is in [`ScoringWeights`].
//!
//! Sentiment is VADER (`vader_sentiment`) over what the caller said; keywords are YAKE
//! (`yake-rust`) plus the organization's own vocabulary; intents and action items come from the
//! phrase lists in [`lexicon`]. ElevenLabs' own `analysis` block is merged in: its summary leads
//! ours, its success verdict and evaluation criteria are factors, its collected data is kept.

pub mod interview;
pub mod lexicon;
pub mod text;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use lexicon::Intent;

use crate::settings::ScoringWeights;

static SENTIMENT: LazyLock<vader_sentiment::SentimentIntensityAnalyzer<'static>> =
    LazyLock::new(vader_sentiment::SentimentIntensityAnalyzer::new);

static STOP_WORDS: LazyLock<Option<yake_rust::StopWords>> =
    LazyLock::new(|| yake_rust::StopWords::predefined("en"));

/// Keyword extraction reads at most this much text, so a very long call costs bounded time;
/// sentiment, intents and action items still read everything.
const KEYWORD_TEXT_LIMIT: usize = 40_000;
/// The turns VADER scores, sampled evenly beyond this, for the same reason.
const SENTIMENT_TURN_LIMIT: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    User,
    Agent,
    Other,
}

#[derive(Debug, Clone)]
pub struct Turn {
    pub speaker: Speaker,
    pub message: String,
}

/// What the analyzer reads.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    pub turns: Vec<Turn>,
    /// ElevenLabs' own `analysis` block, when it sent one.
    pub provider: Option<ProviderAnalysis>,
    pub duration_secs: u32,
}

impl Conversation {
    /// What the caller said, turn by turn, without empty turns.
    pub fn caller_turns(&self) -> Vec<&str> {
        self.turns
            .iter()
            .filter(|t| t.speaker == Speaker::User)
            .map(|t| t.message.trim())
            .filter(|m| !m.is_empty())
            .collect()
    }
}

/// The parts of ElevenLabs' `analysis` block the analyzer uses; the whole block is kept too.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProviderAnalysis {
    #[serde(default)]
    pub call_successful: Option<String>,
    #[serde(default)]
    pub transcript_summary: Option<String>,
    #[serde(default)]
    pub evaluation_criteria_results: BTreeMap<String, ProviderCriterion>,
    #[serde(default)]
    pub data_collection_results: BTreeMap<String, ProviderDataPoint>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProviderCriterion {
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub rationale: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProviderDataPoint {
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentimentLabel {
    Negative,
    Neutral,
    Positive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Unknown,
}

/// Which analyzer produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AnalyzerKind {
    #[default]
    Rules,
    Llm,
    /// The LLM was configured but failed; the rule-based result stands in.
    LlmFallback,
}

impl AnalyzerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AnalyzerKind::Rules => "rules",
            AnalyzerKind::Llm => "llm",
            AnalyzerKind::LlmFallback => "llm_fallback",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreFactor {
    pub name: String,
    pub contribution: i32,
    pub detail: String,
}

/// One of ElevenLabs' evaluation criteria, as it judged it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    pub id: String,
    pub result: String,
    pub rationale: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    #[serde(default)]
    pub analyzer: AnalyzerKind,
    /// Why the LLM's answer was not used, when it was not.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fallback_reason: String,
    pub sentiment: SentimentLabel,
    /// The caller's sentiment, -1.0 to 1.0.
    pub sentiment_score: f64,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub intents: Vec<Intent>,
    #[serde(default)]
    pub action_items: Vec<String>,
    pub lead_score: u8,
    pub score_factors: Vec<ScoreFactor>,
    pub summary: String,
    pub outcome: Outcome,
    pub outcome_rationale: String,
    /// ElevenLabs' evaluation criteria and collected data, merged in.
    #[serde(default)]
    pub criteria: Vec<Criterion>,
    #[serde(default)]
    pub collected: BTreeMap<String, Value>,
}

impl Findings {
    pub fn has_intent(&self, name: &str) -> bool {
        self.intents.iter().any(|i| i.name == name)
    }
}

/// Hot ≥ 80, Warm 50-79, Cold < 50.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Hot,
    Warm,
    Cold,
}

impl Tier {
    pub fn of(score: u8) -> Tier {
        match score {
            80.. => Tier::Hot,
            50..=79 => Tier::Warm,
            _ => Tier::Cold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Hot => "hot",
            Tier::Warm => "warm",
            Tier::Cold => "cold",
        }
    }
}

/// What the rules read besides the transcript.
pub struct Rules<'a> {
    pub weights: &'a ScoringWeights,
    /// The organization's domain terms.
    pub vocabulary: &'a [String],
}

pub fn analyze(conversation: &Conversation, rules: &Rules<'_>) -> Findings {
    let weights = rules.weights;
    let caller = conversation.caller_turns();
    let provider = conversation.provider.clone().unwrap_or_default();
    let criteria: Vec<Criterion> = provider
        .evaluation_criteria_results
        .iter()
        .map(|(id, c)| Criterion {
            id: id.clone(),
            result: c.result.clone(),
            rationale: c.rationale.clone(),
        })
        .collect();
    let collected: BTreeMap<String, Value> = provider
        .data_collection_results
        .iter()
        .filter(|(_, d)| !d.value.is_null())
        .map(|(id, d)| (id.clone(), d.value.clone()))
        .collect();

    let intents = lexicon::intents(&caller);
    let all_turns: Vec<&str> = conversation
        .turns
        .iter()
        .map(|t| t.message.as_str())
        .collect();
    let action_items = lexicon::action_items(&all_turns);
    let vocabulary_used = vocabulary_in(&caller, rules.vocabulary);
    let keywords = keywords(&conversation.turns, rules.vocabulary);
    let voicemail = intents.iter().any(|i| i.name == "voicemail");
    let no_conversation = caller.is_empty() || (voicemail && caller.len() <= 2);
    // A voicemail greeting is nobody's mood.
    let (sentiment, sentiment_score) = if no_conversation {
        (SentimentLabel::Neutral, 0.0)
    } else {
        sentiment_of(&caller)
    };

    let mut factors = Vec::new();
    let mut factor = |name: &str, contribution: i32, detail: String| {
        factors.push(ScoreFactor {
            name: name.to_owned(),
            contribution,
            detail,
        })
    };
    if no_conversation {
        factor(
            "no_conversation",
            0,
            if voicemail {
                "the call reached voicemail".into()
            } else {
                "the caller said nothing".into()
            },
        );
    } else {
        factor(
            "baseline",
            weights.baseline,
            "every conversation starts here".into(),
        );
        factor(
            "engagement",
            (caller.len() as i32)
                .saturating_mul(weights.per_caller_turn)
                .min(weights.max_engagement),
            format!(
                "{} caller turns ({} points each, at most {})",
                caller.len(),
                weights.per_caller_turn,
                weights.max_engagement
            ),
        );
        for intent in &intents {
            let points = weights.intents.get(&intent.name).copied().unwrap_or(0);
            if points != 0 {
                factor(
                    &format!("intent:{}", intent.name),
                    points,
                    format!(
                        "\"{}\"",
                        intent.evidence.first().cloned().unwrap_or_default()
                    ),
                );
            }
        }
        if !vocabulary_used.is_empty() {
            factor(
                "vocabulary",
                (vocabulary_used.len() as i32)
                    .saturating_mul(weights.vocabulary_term)
                    .min(weights.max_vocabulary),
                format!("asked about {}", vocabulary_used.join(", ")),
            );
        }
        factor(
            "sentiment",
            (sentiment_score * weights.sentiment_scale).round() as i32,
            format!(
                "caller sentiment {sentiment_score:.2} (x{})",
                weights.sentiment_scale
            ),
        );
        let duration = match conversation.duration_secs {
            180.. => weights.long_call,
            60..=179 => weights.medium_call,
            _ => 0,
        };
        if duration != 0 {
            factor(
                "duration",
                duration,
                format!("{} s call", conversation.duration_secs),
            );
        }
        if !action_items.is_empty() && weights.next_step != 0 {
            factor(
                "next_step",
                weights.next_step,
                format!("agreed: {}", action_items[0]),
            );
        }
    }
    match provider.call_successful.as_deref() {
        Some("success") => factor(
            "agent_evaluation",
            weights.agent_success,
            "ElevenLabs judged the call successful".into(),
        ),
        Some("failure") => factor(
            "agent_evaluation",
            weights.agent_failure,
            "ElevenLabs judged the call unsuccessful".into(),
        ),
        _ => {}
    }
    let met = criteria.iter().filter(|c| c.result == "success").count() as i32;
    let failed = criteria.iter().filter(|c| c.result == "failure").count() as i32;
    if met + failed > 0 {
        factor(
            "evaluation_criteria",
            (met - failed).saturating_mul(weights.criterion),
            format!("{met} of the agent's criteria met, {failed} failed"),
        );
    }
    let lead_score = settle_score(&mut factors);

    let (outcome, outcome_rationale) = outcome_of(
        &provider,
        &criteria,
        &intents,
        &action_items,
        no_conversation,
    );
    let summary = summary_of(
        &provider,
        &SummaryParts {
            intents: &intents,
            keywords: &keywords,
            action_items: &action_items,
            sentiment,
            sentiment_score,
            lead_score,
            no_conversation,
            voicemail,
            caller_turns: caller.len(),
        },
    );
    Findings {
        analyzer: AnalyzerKind::Rules,
        fallback_reason: String::new(),
        sentiment,
        sentiment_score: (sentiment_score * 1000.0).round() / 1000.0,
        keywords,
        intents,
        action_items,
        lead_score,
        score_factors: factors,
        summary,
        outcome,
        outcome_rationale,
        criteria,
        collected,
    }
}

/// The score the factors add up to, kept within 0-100 by a visible `clamp` factor, so the
/// factors always sum to the score.
pub fn settle_score(factors: &mut Vec<ScoreFactor>) -> u8 {
    let raw: i32 = factors.iter().map(|f| f.contribution).sum();
    let score = raw.clamp(0, 100) as u8;
    if raw != i32::from(score) {
        factors.push(ScoreFactor {
            name: "clamp".into(),
            contribution: i32::from(score) - raw,
            detail: "scores stay between 0 and 100".into(),
        });
    }
    score
}

/// The mean VADER compound score of the caller's turns (an even sample of them on very long
/// calls), and its label by VADER's own thresholds.
fn sentiment_of(caller: &[&str]) -> (SentimentLabel, f64) {
    if caller.is_empty() {
        return (SentimentLabel::Neutral, 0.0);
    }
    let step = caller.len().div_ceil(SENTIMENT_TURN_LIMIT);
    let scores: Vec<f64> = caller
        .iter()
        .step_by(step)
        .map(|m| {
            let clipped = text::clip(m, 2_000);
            SENTIMENT
                .polarity_scores(&clipped)
                .get("compound")
                .copied()
                .filter(|s| s.is_finite())
                .unwrap_or(0.0)
        })
        .collect();
    let score = scores.iter().sum::<f64>() / scores.len() as f64;
    let label = if score >= 0.05 {
        SentimentLabel::Positive
    } else if score <= -0.05 {
        SentimentLabel::Negative
    } else {
        SentimentLabel::Neutral
    };
    (label, score)
}

fn vocabulary_in(caller: &[&str], vocabulary: &[String]) -> Vec<String> {
    if vocabulary.is_empty() {
        return Vec::new();
    }
    let lowered = caller.join("\n").to_lowercase();
    vocabulary
        .iter()
        .filter(|term| !text::find_phrase(&lowered, &term.to_lowercase()).is_empty())
        .cloned()
        .collect()
}

/// Domain terms the call used first, then YAKE's key phrases; at most ten.
fn keywords(turns: &[Turn], vocabulary: &[String]) -> Vec<String> {
    let mut all = String::new();
    for turn in turns {
        if all.len() >= KEYWORD_TEXT_LIMIT {
            break;
        }
        all.push_str(turn.message.trim());
        all.push('\n');
    }
    let all = text::clip(&all, KEYWORD_TEXT_LIMIT);
    let lowered = all.to_lowercase();
    let mut keywords: Vec<String> = vocabulary
        .iter()
        .filter(|term| !text::find_phrase(&lowered, &term.to_lowercase()).is_empty())
        .map(|term| term.to_lowercase())
        .collect();
    if let Some(stop_words) = STOP_WORDS.as_ref() {
        let config = yake_rust::Config {
            ngrams: 2,
            ..yake_rust::Config::default()
        };
        for item in yake_rust::get_n_best(20, &all, stop_words, &config) {
            if keywords.len() >= 10 {
                break;
            }
            let keyword = item.keyword;
            let covered = keywords
                .iter()
                .any(|k| k.contains(&keyword) || keyword.contains(k.as_str()));
            if !covered && keyword.chars().any(char::is_alphabetic) {
                keywords.push(keyword);
            }
        }
    }
    keywords.truncate(10);
    keywords
}

fn outcome_of(
    provider: &ProviderAnalysis,
    criteria: &[Criterion],
    intents: &[Intent],
    action_items: &[String],
    no_conversation: bool,
) -> (Outcome, String) {
    let criteria_note = if criteria.is_empty() {
        String::new()
    } else {
        let listed: Vec<String> = criteria
            .iter()
            .map(|c| format!("{}: {}", c.id, c.result))
            .collect();
        format!(" Criteria: {}.", listed.join(", "))
    };
    let has = |name: &str| intents.iter().any(|i| i.name == name);
    let (outcome, why) = match provider.call_successful.as_deref() {
        Some("success") => (
            Outcome::Success,
            "ElevenLabs judged the call successful.".to_owned(),
        ),
        Some("failure") => (
            Outcome::Failure,
            "ElevenLabs judged the call unsuccessful.".to_owned(),
        ),
        _ if no_conversation => (
            Outcome::Failure,
            "No conversation took place (voicemail or no answer).".to_owned(),
        ),
        _ if has("wrong_number") => (
            Outcome::Failure,
            "The caller said it was the wrong number.".to_owned(),
        ),
        _ if has("not_interested") => (
            Outcome::Failure,
            "The caller said they were not interested.".to_owned(),
        ),
        _ if has("purchase") || has("booking") => (
            Outcome::Success,
            format!(
                "The caller {}.",
                if has("purchase") {
                    "decided to buy"
                } else {
                    "booked or asked to book"
                }
            ),
        ),
        _ if !action_items.is_empty() => (
            Outcome::Success,
            format!("A next step was agreed: {}.", action_items[0]),
        ),
        _ => (
            Outcome::Unknown,
            "No decision, refusal or next step was heard.".to_owned(),
        ),
    };
    (outcome, format!("{why}{criteria_note}"))
}

struct SummaryParts<'a> {
    intents: &'a [Intent],
    keywords: &'a [String],
    action_items: &'a [String],
    sentiment: SentimentLabel,
    sentiment_score: f64,
    lead_score: u8,
    no_conversation: bool,
    voicemail: bool,
    caller_turns: usize,
}

/// Two or three sentences: what happened, how the caller felt and scored, what comes next.
fn summary_of(provider: &ProviderAnalysis, parts: &SummaryParts<'_>) -> String {
    if parts.no_conversation {
        return if parts.voicemail {
            "The call reached voicemail; no conversation took place. No lead score was earned."
                .to_owned()
        } else {
            "No conversation took place: the call was not answered or the caller said nothing. \
             No lead score was earned."
                .to_owned()
        };
    }
    let first = match provider
        .transcript_summary
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(theirs) => {
            let theirs = text::clip(theirs, 400);
            if theirs.ends_with(['.', '!', '?', '…']) {
                theirs
            } else {
                format!("{theirs}.")
            }
        }
        None => {
            let wants: Vec<&str> = parts
                .intents
                .iter()
                .filter_map(|i| intent_phrase(&i.name))
                .take(3)
                .collect();
            let about = if parts.keywords.is_empty() {
                String::new()
            } else {
                format!(
                    " about {}",
                    parts
                        .keywords
                        .iter()
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            match wants.as_slice() {
                [] => format!("The caller spoke {} times{about}.", parts.caller_turns),
                [one] => format!("The caller {one}{about}."),
                [init @ .., last] => format!("The caller {} and {last}{about}.", init.join(", ")),
            }
        }
    };
    let tier = Tier::of(parts.lead_score).as_str();
    let second = format!(
        "Sentiment was {} ({:+.2}); the lead scored {} ({tier}).",
        match parts.sentiment {
            SentimentLabel::Positive => "positive",
            SentimentLabel::Neutral => "neutral",
            SentimentLabel::Negative => "negative",
        },
        parts.sentiment_score,
        parts.lead_score,
    );
    match parts.action_items {
        [] => format!("{first} {second}"),
        items => format!(
            "{first} {second} Next: {}.",
            items
                .iter()
                .take(2)
                .map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

fn intent_phrase(name: &str) -> Option<&'static str> {
    Some(match name {
        "purchase" => "wanted to buy",
        "pricing" => "asked about pricing",
        "booking" => "wanted to book a time",
        "support" => "needed help with a problem",
        "complaint" => "complained",
        "call_back" => "asked to be called back",
        "not_interested" => "was not interested",
        "wrong_number" => "said it was the wrong number",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Turn {
        Turn {
            speaker: Speaker::User,
            message: text.into(),
        }
    }

    fn agent(text: &str) -> Turn {
        Turn {
            speaker: Speaker::Agent,
            message: text.into(),
        }
    }

    fn run(conversation: &Conversation) -> Findings {
        analyze(
            conversation,
            &Rules {
                weights: &ScoringWeights::default(),
                vocabulary: &["cargo bike".to_owned(), "e-bike".to_owned()],
            },
        )
    }

    fn bike_call() -> Conversation {
        Conversation {
            turns: vec![
                agent("Hi, this is Sam from Riverside Bikes. How can I help?"),
                user("Hi! I'm interested in the cargo bike. How much is it?"),
                agent("It's 3,200 dollars, and we have financing."),
                user("Great, that works for me. I'd love to book a test ride this Saturday."),
                agent("Perfect. I'll send you a confirmation by text today."),
                user("Wonderful, thank you so much!"),
            ],
            provider: None,
            duration_secs: 200,
        }
    }

    #[test]
    fn a_keen_buyer_is_hot_and_every_point_is_explained() {
        let findings = run(&bike_call());
        let sum: i32 = findings.score_factors.iter().map(|f| f.contribution).sum();
        assert_eq!(sum, i32::from(findings.lead_score));
        assert_eq!(Tier::of(findings.lead_score), Tier::Hot, "{findings:#?}");
        assert_eq!(findings.sentiment, SentimentLabel::Positive);
        let intents: Vec<&str> = findings.intents.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(intents, vec!["pricing", "booking"]);
        assert_eq!(
            findings.intents[1].evidence,
            vec!["I'd love to book a test ride this Saturday."]
        );
        assert_eq!(
            findings.action_items,
            vec!["Send a confirmation by text today"]
        );
        assert_eq!(
            findings.keywords[0], "cargo bike",
            "{:?}",
            findings.keywords
        );
        assert!(
            findings
                .score_factors
                .iter()
                .any(|f| f.name == "vocabulary"),
            "{:?}",
            findings.score_factors
        );
        assert_eq!(findings.outcome, Outcome::Success);
        let sentences = findings.summary.matches(". ").count() + 1;
        assert!((2..=3).contains(&sentences), "{}", findings.summary);
        assert!(
            findings
                .summary
                .starts_with("The caller asked about pricing and wanted to book a time"),
            "{}",
            findings.summary
        );
        assert_eq!(run(&bike_call()), findings, "same transcript, same result");
    }

    #[test]
    fn a_refusal_is_cold_and_a_failure() {
        let conversation = Conversation {
            turns: vec![
                agent("Hi, I'm calling about our spring offers on e-bikes."),
                user("This is terrible, I'm not interested. Stop calling me!"),
            ],
            provider: None,
            duration_secs: 15,
        };
        let findings = run(&conversation);
        assert_eq!(findings.sentiment, SentimentLabel::Negative);
        assert_eq!(Tier::of(findings.lead_score), Tier::Cold);
        assert_eq!(findings.outcome, Outcome::Failure);
        assert!(findings.has_intent("not_interested"));
        assert!(
            findings.summary.contains("was not interested"),
            "{}",
            findings.summary
        );
        let sum: i32 = findings.score_factors.iter().map(|f| f.contribution).sum();
        assert_eq!(sum, i32::from(findings.lead_score));
    }

    #[test]
    fn elevenlabs_analysis_is_merged_not_dropped() {
        let mut conversation = bike_call();
        conversation.provider = Some(
            serde_json::from_value(serde_json::json!({
                "call_successful": "failure",
                "transcript_summary": "Caller asked about a cargo bike and booked a ride",
                "evaluation_criteria_results": {
                    "greeting": {"criteria_id": "greeting", "result": "success", "rationale": "…"},
                    "upsell": {"criteria_id": "upsell", "result": "failure", "rationale": "…"}
                },
                "data_collection_results": {
                    "budget": {"data_collection_id": "budget", "value": 3200, "rationale": "…"}
                }
            }))
            .unwrap(),
        );
        let findings = run(&conversation);
        assert!(
            findings
                .summary
                .starts_with("Caller asked about a cargo bike and booked a ride. ")
        );
        assert_eq!(findings.outcome, Outcome::Failure);
        assert!(
            findings
                .outcome_rationale
                .contains("greeting: success, upsell: failure")
        );
        assert_eq!(findings.collected["budget"], 3200);
        let agent = findings
            .score_factors
            .iter()
            .find(|f| f.name == "agent_evaluation")
            .unwrap();
        assert_eq!(agent.contribution, -10);
        let criteria = findings
            .score_factors
            .iter()
            .find(|f| f.name == "evaluation_criteria")
            .unwrap();
        assert_eq!(criteria.contribution, 0, "one met, one failed");
    }

    #[test]
    fn an_empty_call_is_a_valid_no_conversation_analysis() {
        for turns in [vec![], vec![agent("Hello? Is anyone there?"), user("   ")]] {
            let findings = run(&Conversation {
                turns,
                provider: None,
                duration_secs: 0,
            });
            assert_eq!(findings.lead_score, 0);
            assert_eq!(findings.outcome, Outcome::Failure);
            assert_eq!(findings.sentiment, SentimentLabel::Neutral);
            assert!(findings.summary.starts_with("No conversation took place"));
            assert!(findings.intents.is_empty());
            assert_eq!(findings.score_factors[0].name, "no_conversation");
        }
        let voicemail = run(&Conversation {
            turns: vec![user(
                "Hi, you've reached Dana. I can't take your call, please leave a message after the tone.",
            )],
            provider: None,
            duration_secs: 12,
        });
        assert!(
            voicemail.summary.starts_with("The call reached voicemail"),
            "{}",
            voicemail.summary
        );
        assert_eq!(voicemail.outcome, Outcome::Failure);
    }

    #[test]
    fn ten_thousand_turns_and_other_languages_are_fine() {
        let mut turns = Vec::new();
        for i in 0..5_000 {
            turns.push(agent(&format!("Question number {i} about the cargo bike?")));
            turns.push(user(
                "Sí, me interesa mucho. ¿Cuánto cuesta? 价格是多少？ Очень хорошо.",
            ));
        }
        let findings = run(&Conversation {
            turns,
            provider: None,
            duration_secs: 9_000,
        });
        assert!(findings.keywords.len() <= 10);
        assert!(findings.summary.len() < 1_000);
        let sum: i32 = findings.score_factors.iter().map(|f| f.contribution).sum();
        assert_eq!(sum, i32::from(findings.lead_score));
        for text in [
            "",
            "。。。",
            "😀😀😀 !!!",
            "مرحبا، أريد شراء دراجة",
            "\u{0}\u{202e}abc",
        ] {
            let findings = run(&Conversation {
                turns: vec![user(text), agent(text)],
                provider: None,
                duration_secs: 5,
            });
            assert!(findings.lead_score <= 100);
        }
    }
}
