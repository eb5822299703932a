//! The rule-based analyzer: deterministic, explainable, no network. The same transcript with the
//! same settings always gives the same result, and every point of the lead score comes from a
//! named factor whose weight is in [`ScoringWeights`].
//!
//! The transcript is read as a conversation ([`reading`]): each caller sentence with the agent
//! turn it answers, so an accepted offer is a booking or a purchase and a refusal applies to
//! what it refuses. Sentiment is VADER (`vader_sentiment`) per caller sentence, weighed so that
//! pleasantries count little and grievances, sarcasm and the caller's last words much; keywords
//! are RAKE (`rake`) plus the organization's own vocabulary; intents and action items come
//! from the phrase lists in [`lexicon`]. A screening interview is scored by its interview
//! evaluation. ElevenLabs' own `analysis` block is merged in: its summary leads ours, its
//! success verdict and evaluation criteria are factors, its collected data is kept.

pub mod interview;
pub mod lexicon;
pub mod names;
pub mod reading;
pub mod text;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use lexicon::Intent;

use crate::settings::ScoringWeights;

/// RAKE over English stop words (NLTK's, from `stop-words`) and what speech adds: the
/// pieces contractions leave once the apostrophe splits them ("I'll" → "ll"), fillers and
/// pleasantries. Phrases are the runs of words between them.
static KEYWORDS: LazyLock<rake::Rake> = LazyLock::new(|| {
    let mut stop_words = rake::StopWords::new();
    for word in stop_words::lookup("en")
        .unwrap_or_default()
        .iter()
        .chain(SPOKEN_STOP_WORDS)
    {
        stop_words.insert((*word).to_owned());
    }
    rake::Rake::new(stop_words)
});

#[rustfmt::skip]
const SPOKEN_STOP_WORDS: &[&str] = &[
    // What contractions leave once the apostrophe splits them.
    "ll", "ve", "re", "s", "t", "d", "m", "n",
    // Fillers, backchannels and pleasantries.
    "yeah", "yes", "yep", "yup", "nope", "okay", "ok", "um", "uh", "uhm", "erm", "hmm", "mm",
    "mhm", "oh", "ah", "wow", "hi", "hey", "hello", "bye", "goodbye", "thanks", "thank",
    "please", "sorry", "alright", "sure", "great", "cool", "awesome", "perfect", "wonderful",
    "lovely", "fine", "good", "bad", "nice", "really", "actually", "basically", "literally",
    "honestly", "totally", "maybe", "probably", "anyway", "like", "well", "right", "also",
    "still", "even", "lot", "bit", "thing", "things", "stuff", "kind", "sort", "gonna",
    "wanna", "gotta", "kinda", "sorta",
    // Verbs of talking and wanting, which join content words into clauses.
    "want", "wanted", "need", "needs", "needed", "would", "could", "might", "must", "shall",
    "can", "get", "got", "getting", "go", "going", "come", "coming", "let", "make", "take",
    "see", "look", "looking", "tell", "told", "say", "said", "ask", "asked", "know", "think",
    "guess", "mean", "sounds", "sound", "call", "calling", "called", "help", "hear", "heard",
    "try", "trying", "give", "put", "keep",
    // When, which a call names constantly.
    "today", "tomorrow", "tonight", "yesterday", "morning", "afternoon", "evening", "week",
    "time", "day", "later", "soon",
];

/// Key phrases longer than this are clauses, not keywords.
const KEYWORD_MAX_WORDS: usize = 3;

/// Keyword extraction reads at most this much text, so a very long call costs bounded time;
/// sentiment, intents and action items still read everything.
const KEYWORD_TEXT_LIMIT: usize = 40_000;

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
    #[serde(default)]
    pub rationale: String,
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
    /// The caller's name, when the agent collected it or the caller said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_name: Option<names::CallerName>,
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

    let reading = reading::read(&conversation.turns);
    let intents = reading.intents;
    let has = |name: &str| intents.iter().any(|i| i.name == name);
    let spoken: Vec<(Speaker, &str)> = conversation
        .turns
        .iter()
        .map(|t| (t.speaker, t.message.as_str()))
        .collect();
    let action_items = lexicon::action_items(&spoken);
    let vocabulary_used = vocabulary_in(&caller, rules.vocabulary);
    let keywords = keywords(&conversation.turns, rules.vocabulary);
    let voicemail = has("voicemail");
    let no_conversation = caller.is_empty() || (voicemail && caller.len() <= 2);
    // A voicemail greeting is nobody's mood.
    // A wrong number is nobody's opinion of the business either (a grievance they meant for
    // someone else included), unless they are fed up with being called.
    let bystander = has("wrong_number") && !reading.mood.fed_up;
    let (sentiment, sentiment_score) = if no_conversation || bystander {
        (SentimentLabel::Neutral, 0.0)
    } else {
        (reading.mood.label, reading.mood.score)
    };
    // A screening interview's lead is the candidate: the interview evaluation scores it.
    let evaluation = (has("interview") && !no_conversation).then(|| {
        interview::evaluate(
            conversation,
            &interview::InterviewRules {
                vocabulary: rules.vocabulary,
            },
        )
    });

    // A repair slot or a warranty visit for something the caller already has is support,
    // not a sale: it earns no sales points.
    let service_only = has("support") && !has("purchase") && !has("pricing");
    let refused = has("not_interested") || has("wrong_number");
    let committed = !service_only && !refused && (has("purchase") || has("booking"));

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
    } else if let Some(evaluation) = &evaluation {
        // A lead is a candidate worth advancing: answers of substance from someone who still
        // wants the job. Without the role's vocabulary the answers score lower than the
        // evaluation proper, hence lower bars than its recommendation's.
        let overall = evaluation.overall_score;
        let (points, verdict) =
            if sentiment == SentimentLabel::Negative || evaluation.cheating_detected {
                (weights.interview_reject, "reject")
            } else if overall >= 62 {
                (weights.interview_advance, "advance")
            } else if overall >= 45 {
                (weights.interview_hold, "hold")
            } else {
                (weights.interview_reject, "reject")
            };
        factor(
            "interview",
            points,
            format!(
                "screening interview: the candidate's answers score {overall} of 100, caller \
                 {}: {verdict}",
                match sentiment {
                    SentimentLabel::Positive => "positive",
                    SentimentLabel::Neutral => "neutral",
                    SentimentLabel::Negative => "negative",
                }
            ),
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
        // An unhappy caller with a complaint who buys and books nothing: their talk of money
        // is about the bill, not a price they are shopping for.
        let dispute = has("complaint") && !committed && sentiment == SentimentLabel::Negative;
        for intent in &intents {
            let points = weights.intents.get(&intent.name).copied().unwrap_or(0);
            let evidence = intent.evidence.first().cloned().unwrap_or_default();
            if intent.name == "pricing" && dispute && points > 0 {
                factor(
                    "intent:pricing",
                    0,
                    format!("\"{evidence}\" (money in a complaint, no buying)"),
                );
            } else if intent.name == "booking" && service_only && points > 0 {
                factor(
                    "intent:booking",
                    0,
                    format!("\"{evidence}\" (a service visit, not a sale)"),
                );
            } else if intent.name == "complaint"
                && (committed || has("pricing") && !dispute)
                && points < 0
            {
                factor(
                    "intent:complaint",
                    0,
                    format!("\"{evidence}\" (the caller is still buying)"),
                );
            } else if points != 0 {
                factor(
                    &format!("intent:{}", intent.name),
                    points,
                    format!("\"{evidence}\""),
                );
            }
        }
        if committed && weights.commitment != 0 {
            let committed = intents
                .iter()
                .find(|i| i.name == "purchase")
                .map(|i| ("agreed to buy", i))
                .or_else(|| {
                    intents
                        .iter()
                        .find(|i| i.name == "booking")
                        .map(|i| ("booked", i))
                });
            if let Some((what, intent)) = committed {
                factor(
                    "commitment",
                    weights.commitment,
                    format!(
                        "{what}: \"{}\"",
                        intent.evidence.first().cloned().unwrap_or_default()
                    ),
                );
            }
        }
        if !committed && !refused && !reading.interest.is_empty() && weights.interest != 0 {
            factor(
                "interest",
                weights.interest,
                format!("\"{}\"", reading.interest.join("\"; \"")),
            );
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
            if reading.mood.reasons.is_empty() {
                format!(
                    "caller sentiment {sentiment_score:.2} (x{})",
                    weights.sentiment_scale
                )
            } else {
                format!(
                    "caller sentiment {sentiment_score:.2} (x{}): {}",
                    weights.sentiment_scale,
                    reading.mood.reasons.join("; ")
                )
            },
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
        if !action_items.is_empty() && weights.next_step != 0 && !refused {
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
    // Hot is for a purchase or a visit agreed: without one a lead is warm at most.
    let raw: i32 = factors.iter().map(|f| f.contribution).sum();
    if !no_conversation && evaluation.is_none() && !committed && raw > weights.undecided_cap {
        factors.push(ScoreFactor {
            name: "undecided".into(),
            contribution: weights.undecided_cap - raw,
            detail: format!(
                "no purchase or visit agreed: at most {}",
                weights.undecided_cap
            ),
        });
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
            caller_name: reading.caller_name.as_deref(),
            vocabulary_used: &vocabulary_used,
            action_items: &action_items,
            sentiment,
            lead_score,
            no_conversation,
            voicemail,
            caller_turns: caller.len(),
            evaluation: evaluation.as_ref(),
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
        caller_name: names::caller_name(
            &provider.data_collection_results,
            reading.caller_name.as_deref(),
            &reading.caller_name_evidence,
        ),
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

/// Domain terms the call used first, then RAKE's key phrases (runs of content words, scored by
/// how their words co-occur); at most ten.
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
    // Lowercased first, so "Harbor Cycles" and "harbor cycles" are one phrase. Equal scores
    // (common: every lone word scores 1) are ordered by first mention, then alphabetically
    // (RAKE answers from a hash map), so one transcript always gives the same keywords.
    let mut found: Vec<(f64, usize, String)> = KEYWORDS
        .run(&lowered)
        .into_iter()
        .map(|item| {
            let at = lowered.find(&item.keyword).unwrap_or(usize::MAX);
            (item.score, at, item.keyword)
        })
        .collect();
    found.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then_with(|| a.2.cmp(&b.2))
    });
    for (_, _, keyword) in found {
        if keywords.len() >= 10 {
            break;
        }
        let words = keyword.split_whitespace().count();
        let covered = keywords
            .iter()
            .any(|k| k.contains(&keyword) || keyword.contains(k.as_str()));
        if words <= KEYWORD_MAX_WORDS && !covered && keyword.chars().any(char::is_alphabetic) {
            keywords.push(keyword);
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
    caller_name: Option<&'a str>,
    vocabulary_used: &'a [String],
    action_items: &'a [String],
    sentiment: SentimentLabel,
    lead_score: u8,
    no_conversation: bool,
    voicemail: bool,
    caller_turns: usize,
    evaluation: Option<&'a interview::Evaluation>,
}

/// An intent's first evidence sentence for quoting: the caller's words, or, when they only
/// said "yes", the offer they accepted; never the agent's reply a complaint was read from.
fn quote(intent: &Intent, max: usize) -> String {
    let evidence = intent
        .evidence
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    let evidence = evidence
        .split(" (the agent answered \"")
        .next()
        .unwrap_or(evidence);
    let mut parts = evidence.splitn(2, " (answering \"");
    let mut said = parts.next().unwrap_or(evidence);
    // "Hi, um, this is the third time…" → "this is the third time…".
    while let Some((head, rest)) = said.split_once([',', ' ']) {
        let opener = [
            "hi", "hello", "hey", "yeah", "yes", "so", "um", "uh", "oh", "well", "okay", "ok",
            "honestly", "look",
        ]
        .iter()
        .any(|o| head.eq_ignore_ascii_case(o));
        if !opener || rest.split_whitespace().count() < 3 {
            break;
        }
        said = rest.trim_start_matches([',', ' ']);
    }
    match parts.next().map(|o| o.trim_end_matches("\")")) {
        Some(offer) if said.split_whitespace().count() < 4 => format!(
            "accepting \"{}\"",
            text::clip(offer.trim_end_matches(['.', '!']), max)
        ),
        _ => format!(
            "\"{}\"",
            text::clip(said.trim_end_matches(['.', '!', ',']), max)
        ),
    }
}

/// What a manager would write: who called and what happened, how it went, what is next.
fn summary_of(provider: &ProviderAnalysis, parts: &SummaryParts<'_>) -> String {
    if parts.no_conversation {
        return if parts.voicemail {
            format!(
                "The call reached {}voicemail; no conversation took place. No lead score was \
                 earned.",
                parts
                    .caller_name
                    .map(|name| format!("{name}'s "))
                    .unwrap_or_default()
            )
        } else {
            "No conversation took place: the call was not answered or the caller said nothing. \
             No lead score was earned."
                .to_owned()
        };
    }
    let who = parts.caller_name.unwrap_or("The caller");
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
        None => match parts.evaluation {
            Some(evaluation) => format!(
                "Screening interview: {} answered {} questions; the answers score {} of 100 ({}).",
                parts.caller_name.unwrap_or("the candidate"),
                parts.caller_turns,
                evaluation.overall_score,
                evaluation.system_recommendation
            ),
            None => what_happened(who, parts),
        },
    };
    let tier = Tier::of(parts.lead_score).as_str();
    let second = format!(
        "The caller was {}; the lead is {tier} ({}).",
        match parts.sentiment {
            SentimentLabel::Positive => "positive",
            SentimentLabel::Neutral => "neutral",
            SentimentLabel::Negative => "unhappy",
        },
        parts.lead_score,
    );
    match parts.action_items {
        [] => format!("{first} {second}"),
        items => format!(
            "{first} {second} Next: {}.",
            items
                .iter()
                .take(2)
                .map(|i| match i.strip_prefix("Caller will ") {
                    Some(rest) => format!("the caller will {rest}"),
                    None => {
                        let mut chars = i.chars();
                        chars
                            .next()
                            .map(|c| c.to_lowercase().chain(chars).collect())
                            .unwrap_or_default()
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// "Dana complained ("I want my money back") and asked to be called back."
fn what_happened(who: &str, parts: &SummaryParts<'_>) -> String {
    let find = |name: &str| parts.intents.iter().find(|i| i.name == name);
    if find("wrong_number").is_some() {
        return format!("{who} said it was the wrong number.");
    }
    let mut said: Vec<String> = Vec::new();
    if let Some(complaint) = find("complaint") {
        said.push(format!("complained ({})", quote(complaint, 90)));
    }
    if let Some(support) = find("support") {
        said.push(if find("complaint").is_some() {
            "needed help with it".to_owned()
        } else {
            format!("needed help ({})", quote(support, 90))
        });
    }
    if find("pricing").is_some() {
        said.push(match parts.vocabulary_used {
            [] => "asked about prices".to_owned(),
            terms => format!("asked about the price of the {}", terms.join(" and the ")),
        });
    }
    if let Some(purchase) = find("purchase") {
        said.push(format!("agreed to buy ({})", quote(purchase, 90)));
    }
    if let Some(booking) = find("booking") {
        let booked = booking
            .evidence
            .iter()
            .any(|e| e.contains(" (answering \""))
            || parts.action_items.iter().any(|i| i.starts_with("Booked "));
        said.push(format!(
            "{} ({})",
            if booked { "booked" } else { "asked to book" },
            quote(booking, 90)
        ));
    }
    if find("call_back").is_some() {
        said.push("asked to be called back".to_owned());
    }
    if find("not_interested").is_some() {
        said.push(format!(
            "was not interested ({})",
            quote(find("not_interested").expect("found"), 60)
        ));
    }
    said.truncate(3);
    match said.as_slice() {
        [] => format!(
            "{who} spoke {} times with no clear request or decision.",
            parts.caller_turns
        ),
        [one] => format!("{who} {one}."),
        [init @ .., last] => format!("{who} {} and {last}.", init.join(", ")),
    }
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
    fn keywords_are_the_calls_subjects_not_its_fillers() {
        let findings = run(&Conversation {
            turns: vec![
                agent("Harbor Cycles, how can I help?"),
                user(
                    "Um, yeah, hi. I wanna book a test ride on the Trek FX hybrid tomorrow evening.",
                ),
                agent("Sure. Do you want the medium frame?"),
                user("Yeah, the medium frame, I think. Okay, thanks, bye!"),
            ],
            provider: None,
            duration_secs: 60,
        });
        for expected in [
            "trek fx hybrid",
            "medium frame",
            "test ride",
            "harbor cycles",
        ] {
            assert!(
                findings.keywords.iter().any(|k| k == expected),
                "{expected} missing from {:?}",
                findings.keywords
            );
        }
        for keyword in &findings.keywords {
            assert!(
                keyword.split_whitespace().count() <= KEYWORD_MAX_WORDS,
                "{keyword}"
            );
            for filler in ["um", "yeah", "wanna", "okay", "thanks", "bye", "tomorrow"] {
                assert!(
                    !keyword.split_whitespace().any(|w| w == filler),
                    "{keyword} in {:?}",
                    findings.keywords
                );
            }
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
                .starts_with("The caller asked about the price of the cargo bike and asked to book (\"I'd love to book a test ride this Saturday\")"),
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
            voicemail
                .summary
                .starts_with("The call reached Dana's voicemail"),
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

    fn factor<'a>(findings: &'a Findings, name: &str) -> Option<&'a ScoreFactor> {
        findings.score_factors.iter().find(|f| f.name == name)
    }

    fn explained(findings: &Findings) {
        let sum: i32 = findings.score_factors.iter().map(|f| f.contribution).sum();
        assert_eq!(sum, i32::from(findings.lead_score), "{findings:#?}");
    }

    #[test]
    fn a_booked_visit_is_hot_even_on_a_short_call() {
        let findings = run(&Conversation {
            turns: vec![
                agent("Dr. Chen has a same-day slot at eleven forty. Could you make that?"),
                user("Eleven forty. Yes, we'll be there."),
                agent("You're booked."),
            ],
            provider: None,
            duration_secs: 25,
        });
        assert_eq!(Tier::of(findings.lead_score), Tier::Hot, "{findings:#?}");
        let commitment = factor(&findings, "commitment").expect("commitment factor");
        assert!(commitment.detail.contains("Eleven forty"), "{commitment:?}");
        assert!(
            findings
                .action_items
                .iter()
                .any(|i| i.starts_with("Booked")),
            "{:?}",
            findings.action_items
        );
        explained(&findings);
    }

    #[test]
    fn an_agreed_purchase_is_hot() {
        let findings = run(&Conversation {
            turns: vec![
                agent("The hybrid is in stock in your size. Shall I put one aside for you?"),
                user("Yes please, I'm pretty much sold. I'll come in tomorrow and pay."),
            ],
            provider: None,
            duration_secs: 40,
        });
        assert!(findings.has_intent("purchase"), "{:?}", findings.intents);
        assert_eq!(Tier::of(findings.lead_score), Tier::Hot, "{findings:#?}");
        assert!(
            findings
                .action_items
                .contains(&"Caller will come in tomorrow and pay".to_owned()),
            "{:?}",
            findings.action_items
        );
    }

    #[test]
    fn a_complaint_without_buying_interest_is_cold_and_negative() {
        let findings = run(&Conversation {
            turns: vec![
                agent("Thanks for calling, how can I help?"),
                user(
                    "This is the third time I'm calling about the same leak. I want my money back.",
                ),
                agent("I apologize. I'll have the manager call you today."),
                user("Fine. Thanks."),
            ],
            provider: None,
            duration_secs: 200,
        });
        assert_eq!(Tier::of(findings.lead_score), Tier::Cold, "{findings:#?}");
        assert_eq!(findings.sentiment, SentimentLabel::Negative);
        let sentiment = factor(&findings, "sentiment").expect("sentiment factor");
        assert!(
            sentiment
                .detail
                .contains("grievance \"This is the third time"),
            "{sentiment:?}"
        );
        assert!(findings.has_intent("complaint"));
        explained(&findings);
    }

    #[test]
    fn a_repair_slot_is_support_not_a_sale() {
        let findings = run(&Conversation {
            turns: vec![
                agent("Harbor Cycles, how can I help?"),
                user("My e-bike won't charge anymore. It's still under warranty."),
                agent("Sorry about that. I have a repair slot Thursday at ten or Friday at two."),
                user("Thursday at ten works."),
            ],
            provider: None,
            duration_secs: 90,
        });
        assert!(findings.has_intent("support"));
        assert!(findings.has_intent("booking"));
        assert_eq!(Tier::of(findings.lead_score), Tier::Cold, "{findings:#?}");
        assert!(factor(&findings, "commitment").is_none());
        explained(&findings);
    }

    #[test]
    fn a_screening_interview_is_scored_as_one() {
        let findings = run(&Conversation {
            turns: vec![
                agent(
                    "Hi, this is the recruiting assistant about your application for the delivery driver position. Tell me about your experience.",
                ),
                user(
                    "I've driven a box truck for three years, sixteen-footer, about a hundred and twenty stops a day, clean record.",
                ),
                agent("How would you handle a customer who isn't home for a signature?"),
                user(
                    "Leave the notice, scan it as attempted, take a clear photo, and bring the package back to the depot.",
                ),
                agent("Great. I'll email you some dates for a ride-along."),
                user("Sounds great, thanks so much!"),
            ],
            provider: None,
            duration_secs: 400,
        });
        assert_eq!(findings.intents[0].name, "interview");
        let interview = factor(&findings, "interview").expect("interview factor");
        assert!(interview.detail.contains("of 100"), "{interview:?}");
        assert!(
            findings.summary.starts_with("Screening interview:"),
            "{}",
            findings.summary
        );
        explained(&findings);
    }

    #[test]
    fn the_summary_reads_as_a_managers_sentence() {
        let findings = run(&Conversation {
            turns: vec![
                agent("Northside Cycles, how can I help?"),
                user("Hi, this is Dana. How much is the Domane AL 5 in a 56?"),
                agent(
                    "It's eleven hundred dollars. I'll text you a quote for the Domane AL 5 in 56 with the pedals and the bottle cages and we can talk.",
                ),
                user("Okay, thanks. I'll call back when I'm ready."),
            ],
            provider: None,
            duration_secs: 70,
        });
        assert_eq!(
            findings.summary,
            "Dana asked about prices. The caller was neutral; the lead is warm (54). Next: \
             text a quote for the Domane AL 5 in 56; the caller will call back when they're \
             ready.",
            "{findings:#?}"
        );
        assert!(!findings.has_intent("call_back"), "{:?}", findings.intents);
    }

    fn call(turns: Vec<Turn>) -> Conversation {
        Conversation {
            turns,
            provider: None,
            duration_secs: 60,
        }
    }

    #[test]
    fn a_grievance_meant_for_someone_else_on_a_wrong_number_is_neutral() {
        let findings = run(&call(vec![
            agent("Hillside Dental, how can I help?"),
            user(
                "Yes, my electric bill doubled this month and I want to know why you're charging me that!",
            ),
            agent(
                "I'm sorry, this is a dental office. It sounds like you're trying to reach the power company.",
            ),
            user("Oh. Oh no. Sorry, I clicked the wrong link."),
        ]));
        assert!(
            findings.has_intent("wrong_number"),
            "{:?}",
            findings.intents
        );
        assert_eq!(findings.sentiment, SentimentLabel::Neutral);
        // Fed up with being called, a wrong number is still negative.
        let fed_up = run(&call(vec![
            agent("Hi, is this Marco? I'm calling about your car warranty."),
            user(
                "No Marco here. Wrong number, and this is the third time this week. Stop calling.",
            ),
        ]));
        assert!(fed_up.has_intent("wrong_number"), "{:?}", fed_up.intents);
        assert_eq!(fed_up.sentiment, SentimentLabel::Negative);
    }

    #[test]
    fn a_pleased_caller_who_decided_is_positive_a_polite_one_who_only_asked_is_not() {
        let decided = run(&call(vec![
            agent("I have Friday at ten or Saturday at noon for the test drive."),
            user("Saturday at noon. Awesome."),
            agent("You're booked."),
            user("Great, thank you."),
        ]));
        assert_eq!(decided.sentiment, SentimentLabel::Positive);
        let sentiment = factor(&decided, "sentiment").unwrap();
        assert!(sentiment.detail.contains("decided"), "{}", sentiment.detail);
        let asked = run(&call(vec![
            agent("We're open until six on weekdays."),
            user("Okay, and Saturdays?"),
            agent("Nine to two."),
            user("Great, thank you."),
        ]));
        assert_eq!(asked.sentiment, SentimentLabel::Neutral);
        // Signing up and ending on an exclaimed thanks.
        let exclaimed = run(&call(vec![
            agent("The family plan is sixty a month. Shall I sign you up?"),
            user("Yes, sign us up."),
            agent("Done, you'll get the welcome email tonight."),
            user("Thanks so much for sorting it!"),
        ]));
        assert_eq!(exclaimed.sentiment, SentimentLabel::Positive);
        let plain = run(&call(vec![
            agent("The family plan is sixty a month. Shall I sign you up?"),
            user("Yes, sign us up."),
            agent("Done, you'll get the welcome email tonight."),
            user("Okay. Bye."),
        ]));
        assert_eq!(plain.sentiment, SentimentLabel::Neutral);
    }

    #[test]
    fn money_talk_in_an_unhappy_complaint_is_the_bill_not_a_sale() {
        let findings = run(&call(vec![
            agent("Lakeview Vet, how can I help?"),
            user(
                "I was charged a hundred and twenty dollars for a nail trim that was supposed to be thirty. That's ridiculous.",
            ),
            agent("I'm sorry, let me look. It was billed as a sedated trim."),
            user(
                "Nobody sedated my dog. How much is the plain trim, thirty? Then that's what I'm paying.",
            ),
            agent("I'll pass it to the practice manager to correct."),
            user("Fine. We'll see."),
        ]));
        assert_eq!(findings.sentiment, SentimentLabel::Negative);
        let pricing = factor(&findings, "intent:pricing");
        assert!(pricing.is_none_or(|f| f.contribution == 0), "{pricing:?}");
        assert_eq!(
            Tier::of(findings.lead_score),
            Tier::Cold,
            "{:?}",
            findings.score_factors
        );
        explained(&findings);
    }

    #[test]
    fn a_keen_enquiry_without_a_decision_is_warm_at_most() {
        let findings = run(&Conversation {
            turns: vec![
                agent("Riverside Bikes, how can I help?"),
                user("Hi! I'm looking at e-bikes for my commute. How much is the cargo bike?"),
                agent("It's 3,200 dollars, or 140 a month with financing."),
                user(
                    "Oh wow, that's less than I thought, I love it. Is there a discount for paying up front?",
                ),
                agent("Five percent. Would you like to come in for a test ride?"),
                user("I'd love to but I'm travelling. Could you call me back next week?"),
                agent("Of course, I'll call you next Tuesday."),
                user("Amazing, thank you so much!"),
            ],
            provider: None,
            duration_secs: 400,
        });
        assert_eq!(Tier::of(findings.lead_score), Tier::Warm, "{findings:#?}");
        assert!(factor(&findings, "undecided").is_some(), "{findings:#?}");
        assert!(findings.has_intent("call_back"));
        assert!(!findings.has_intent("booking"), "{:?}", findings.intents);
        explained(&findings);
    }
}
