//! The rule-based analyzer: deterministic, explainable, no network. The same transcript always
//! gives the same result, and every point of the lead score comes from a named factor.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

static SENTIMENT: LazyLock<vader_sentiment::SentimentIntensityAnalyzer<'static>> =
    LazyLock::new(vader_sentiment::SentimentIntensityAnalyzer::new);

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
#[derive(Debug, Clone)]
pub struct Conversation {
    pub turns: Vec<Turn>,
    /// ElevenLabs' own `analysis` block, when it sent one.
    pub provider: Option<ProviderAnalysis>,
    pub duration_secs: u32,
}

/// The parts of ElevenLabs' `analysis` block the analyzer uses; the whole block is kept too.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProviderAnalysis {
    #[serde(default)]
    pub call_successful: Option<String>,
    #[serde(default)]
    pub transcript_summary: Option<String>,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreFactor {
    pub name: String,
    pub contribution: i32,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    pub sentiment: SentimentLabel,
    /// VADER compound score of what the caller said, -1.0 to 1.0.
    pub sentiment_score: f64,
    pub lead_score: u8,
    pub score_factors: Vec<ScoreFactor>,
    pub summary: String,
    pub outcome: Outcome,
    pub outcome_rationale: String,
}

const BUYING_SIGNALS: [&str; 10] = [
    "price",
    "quote",
    "cost",
    "buy",
    "purchase",
    "book",
    "appointment",
    "schedule",
    "interested",
    "order",
];
const REFUSALS: [&str; 5] = [
    "not interested",
    "no thanks",
    "stop calling",
    "don't call",
    "wrong number",
];

pub fn analyze(conversation: &Conversation) -> Findings {
    let user_text: Vec<&str> = conversation
        .turns
        .iter()
        .filter(|t| t.speaker == Speaker::User)
        .map(|t| t.message.as_str())
        .filter(|m| !m.trim().is_empty())
        .collect();
    let sentiment_score = if user_text.is_empty() {
        0.0
    } else {
        let total: f64 = user_text
            .iter()
            .map(|m| {
                SENTIMENT
                    .polarity_scores(m)
                    .get("compound")
                    .copied()
                    .unwrap_or(0.0)
            })
            .sum();
        total / user_text.len() as f64
    };
    let sentiment = if sentiment_score >= 0.05 {
        SentimentLabel::Positive
    } else if sentiment_score <= -0.05 {
        SentimentLabel::Negative
    } else {
        SentimentLabel::Neutral
    };
    let lowered = user_text.join(" ").to_lowercase();
    let provider = conversation.provider.clone().unwrap_or_default();

    let mut factors = vec![ScoreFactor {
        name: "baseline".into(),
        contribution: 20,
        detail: "every conversation starts here".into(),
    }];
    let engaged = user_text.len().min(10) as i32;
    factors.push(ScoreFactor {
        name: "engagement".into(),
        contribution: engaged * 2,
        detail: format!(
            "{} caller turns (2 points each, at most 10)",
            user_text.len()
        ),
    });
    let signals: Vec<&str> = BUYING_SIGNALS
        .into_iter()
        .filter(|w| lowered.contains(w))
        .collect();
    factors.push(ScoreFactor {
        name: "buying_signals".into(),
        contribution: (signals.len() as i32 * 5).min(20),
        detail: if signals.is_empty() {
            "no buying words".into()
        } else {
            format!("mentioned {}", signals.join(", "))
        },
    });
    factors.push(ScoreFactor {
        name: "sentiment".into(),
        contribution: (sentiment_score * 15.0).round() as i32,
        detail: format!("caller sentiment {sentiment_score:.2} (x15)"),
    });
    let duration = match conversation.duration_secs {
        180.. => 15,
        60..=179 => 10,
        _ => 0,
    };
    factors.push(ScoreFactor {
        name: "duration".into(),
        contribution: duration,
        detail: format!("{} s call", conversation.duration_secs),
    });
    let (provider_points, outcome, rationale) = match provider.call_successful.as_deref() {
        Some("success") => (
            25,
            Outcome::Success,
            "the agent's success criteria were met",
        ),
        Some("failure") => (
            -10,
            Outcome::Failure,
            "the agent's success criteria were not met",
        ),
        _ => (
            0,
            Outcome::Unknown,
            "no success evaluation from the agent platform",
        ),
    };
    factors.push(ScoreFactor {
        name: "agent_evaluation".into(),
        contribution: provider_points,
        detail: rationale.into(),
    });
    let refusals: Vec<&str> = REFUSALS
        .into_iter()
        .filter(|p| lowered.contains(p))
        .collect();
    if !refusals.is_empty() {
        factors.push(ScoreFactor {
            name: "refusal".into(),
            contribution: -30,
            detail: format!("said {}", refusals.join(", ")),
        });
    }
    let raw: i32 = factors.iter().map(|f| f.contribution).sum();
    let lead_score = raw.clamp(0, 100) as u8;
    if raw != i32::from(lead_score) {
        factors.push(ScoreFactor {
            name: "clamp".into(),
            contribution: i32::from(lead_score) - raw,
            detail: "scores stay between 0 and 100".into(),
        });
    }

    let summary = match provider.transcript_summary.filter(|s| !s.trim().is_empty()) {
        Some(summary) => summary.trim().to_owned(),
        None => fallback_summary(
            &user_text,
            conversation.turns.len(),
            conversation.duration_secs,
        ),
    };
    Findings {
        sentiment,
        sentiment_score,
        lead_score,
        score_factors: factors,
        summary,
        outcome,
        outcome_rationale: rationale.into(),
    }
}

fn fallback_summary(user_text: &[&str], turns: usize, duration_secs: u32) -> String {
    match user_text.first() {
        Some(first) => {
            let opening: String = first.chars().take(160).collect();
            format!("{turns} turns over {duration_secs} s. The caller opened with: \"{opening}\".")
        }
        None => format!("{turns} turns over {duration_secs} s; the caller said nothing."),
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

    #[test]
    fn factors_sum_to_the_score_and_results_repeat() {
        let conversation = Conversation {
            turns: vec![
                user("Hi, I'm interested in the red e-bike. What's the price?"),
                user("Great, I'd love to book a test ride this Saturday."),
            ],
            provider: Some(ProviderAnalysis {
                call_successful: Some("success".into()),
                transcript_summary: Some("Caller wants a test ride.".into()),
            }),
            duration_secs: 200,
        };
        let first = analyze(&conversation);
        let sum: i32 = first.score_factors.iter().map(|f| f.contribution).sum();
        assert_eq!(sum, i32::from(first.lead_score));
        assert!(first.lead_score >= 80, "{first:?}");
        assert_eq!(first.sentiment, SentimentLabel::Positive);
        assert_eq!(first.summary, "Caller wants a test ride.");
        assert_eq!(first.outcome, Outcome::Success);
        assert_eq!(analyze(&conversation), first, "deterministic");
    }

    #[test]
    fn refusals_and_anger_score_low() {
        let conversation = Conversation {
            turns: vec![user(
                "This is terrible, I'm not interested. Stop calling me!",
            )],
            provider: None,
            duration_secs: 15,
        };
        let findings = analyze(&conversation);
        assert_eq!(findings.sentiment, SentimentLabel::Negative);
        assert!(findings.lead_score < 50, "{findings:?}");
        assert_eq!(findings.outcome, Outcome::Unknown);
        assert!(findings.summary.contains("not interested"));
        let sum: i32 = findings.score_factors.iter().map(|f| f.contribution).sum();
        assert_eq!(sum, i32::from(findings.lead_score));
    }
}
