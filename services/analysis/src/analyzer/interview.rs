//! The rule-based interview evaluation: the candidate's answers (the `user` turns) scored for
//! domain depth, behavioural evidence and communication, each from counted, named signals.
//! What a transcript cannot show is listed as not observable rather than guessed.

use serde::{Deserialize, Serialize};

use super::text::{clip, find_phrase, sentences};
use super::{AnalyzerKind, Conversation};

/// Never in a transcript, so never scored.
pub const NOT_OBSERVABLE: [&str; 4] = [
    "body language",
    "eye contact",
    "facial expressions",
    "appearance and presentation",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    #[serde(default)]
    pub analyzer: AnalyzerKind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fallback_reason: String,
    pub domain_score: u8,
    pub behavioral_score: u8,
    pub communication_score: u8,
    pub overall_score: u8,
    /// "high", "medium" or "low".
    pub confidence_level: String,
    pub cheating_detected: bool,
    pub speech_pattern: String,
    pub areas_of_improvement: Vec<String>,
    pub system_recommendation: String,
    pub not_observable: Vec<String>,
    /// The sentences behind the flags and scores (e.g. why cheating was suspected).
    #[serde(default)]
    pub evidence: Vec<String>,
}

const FILLERS: [&str; 9] = [
    "um",
    "uh",
    "erm",
    "umm",
    "uhh",
    "you know",
    "sort of",
    "kind of",
    "basically",
];
const HEDGES: [&str; 8] = [
    "i think",
    "maybe",
    "i'm not sure",
    "not sure",
    "i guess",
    "probably",
    "i don't know",
    "i don't remember",
];
const ASSURED: [&str; 9] = [
    "i led",
    "i built",
    "i designed",
    "i decided",
    "i delivered",
    "i owned",
    "i'm confident",
    "definitely",
    "i implemented",
];
/// Situation, task, action, result: the shape of a behavioural answer.
const BEHAVIORAL: [&str; 16] = [
    "for example",
    "for instance",
    "there was a time",
    "in my last role",
    "at my previous",
    "the situation",
    "my role was",
    "i was responsible",
    "as a result",
    "the result was",
    "we ended up",
    "i learned",
    "the challenge",
    "conflict",
    "deadline",
    "stakeholder",
];
/// Signs of outside help during the interview.
const CHEATING: [&str; 10] = [
    "let me google",
    "let me search",
    "look it up",
    "looking it up",
    "chatgpt",
    "reading from",
    "someone is helping",
    "my friend says",
    "hold on, i'm checking",
    "let me check online",
];

const NUMBER_WORDS: [&str; 24] = [
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "fifteen", "twenty", "thirty", "forty", "fifty", "sixty", "hundred", "thousand", "million",
    "percent", "half", "dozen", "first",
];

/// Numbers and named things in an answer: digits, spoken numbers, and capitalised or
/// acronym words that do not open a sentence ("we used Alembic in CI").
fn specifics_in(answer: &str) -> usize {
    let mut count = 0;
    for sentence in sentences(answer) {
        for (position, word) in sentence.split_whitespace().enumerate() {
            let word = word.trim_matches(|c: char| !c.is_alphanumeric());
            let lower = word.to_lowercase();
            let named = position > 0
                && word.chars().next().is_some_and(char::is_uppercase)
                && !["I", "I'm", "I've", "I'd", "I'll", "OK", "Okay"].contains(&word)
                && word.chars().count() >= 2;
            if word.chars().any(|c| c.is_ascii_digit())
                || NUMBER_WORDS.contains(&lower.as_str())
                || named
            {
                count += 1;
            }
        }
    }
    count
}

pub struct InterviewRules<'a> {
    /// Terms a strong candidate for the role would use.
    pub vocabulary: &'a [String],
}

pub fn evaluate(conversation: &Conversation, rules: &InterviewRules<'_>) -> Evaluation {
    let answers = conversation.caller_turns();
    let not_observable: Vec<String> = NOT_OBSERVABLE.iter().map(|s| (*s).to_owned()).collect();
    if answers.is_empty() {
        return Evaluation {
            analyzer: AnalyzerKind::Rules,
            fallback_reason: String::new(),
            domain_score: 0,
            behavioral_score: 0,
            communication_score: 0,
            overall_score: 0,
            confidence_level: "low".into(),
            cheating_detected: false,
            speech_pattern: "no answers".into(),
            areas_of_improvement: Vec::new(),
            system_recommendation: "Insufficient Data: the candidate gave no answers".into(),
            not_observable,
            evidence: Vec::new(),
        };
    }
    let lowered: Vec<String> = answers.iter().map(|a| a.to_lowercase()).collect();
    let words: usize = answers.iter().map(|a| a.split_whitespace().count()).sum();
    let avg_words = words as f64 / answers.len() as f64;
    let count = |phrases: &[&str]| -> usize {
        lowered
            .iter()
            .map(|a| {
                phrases
                    .iter()
                    .map(|p| find_phrase(a, p).len())
                    .sum::<usize>()
            })
            .sum()
    };
    let fillers = count(&FILLERS);
    let hedges = count(&HEDGES);
    let assured = count(&ASSURED);
    let behavioral = count(&BEHAVIORAL);
    let unknowns = count(&["i don't know", "no idea", "never used"]);
    let all = lowered.join("\n");
    let terms_used = rules
        .vocabulary
        .iter()
        .filter(|t| !find_phrase(&all, &t.to_lowercase()).is_empty())
        .count();
    // Specifics: numbers (written or spoken) and named tools, places and terms the candidate
    // used ("Postgres", "FastAPI", "CI", "three years").
    let specifics: usize = answers.iter().map(|a| specifics_in(a)).sum();

    let depth = match avg_words {
        w if w >= 40.0 => 30,
        w if w >= 20.0 => 20,
        w if w >= 10.0 => 10,
        _ => 0,
    };
    let vocabulary_points = if rules.vocabulary.is_empty() {
        // Without a role vocabulary, specifics stand in for domain terms.
        (specifics as i32 * 5).min(30)
    } else {
        (terms_used as i32 * 10).min(40)
    };
    let domain = 30 + depth + vocabulary_points - (unknowns as i32 * 10).min(30);
    let behavioral_score =
        30 + (behavioral as i32 * 10).min(50) + if avg_words >= 25.0 { 20 } else { 0 };
    let filler_rate = fillers as f64 * 100.0 / words.max(1) as f64;
    let short = answers
        .iter()
        .filter(|a| a.split_whitespace().count() < 5)
        .count();
    let short_share = short as f64 / answers.len() as f64;
    let communication = 100
        - (filler_rate * 6.0).round().min(40.0) as i32
        - (short_share * 40.0).round() as i32
        - if avg_words > 150.0 { 10 } else { 0 };

    let clamp = |v: i32| v.clamp(0, 100) as u8;
    let domain_score = clamp(domain);
    let behavioral_score = clamp(behavioral_score);
    let communication_score = clamp(communication);
    let overall_score = clamp(
        (0.4 * f64::from(domain_score)
            + 0.3 * f64::from(behavioral_score)
            + 0.3 * f64::from(communication_score))
        .round() as i32,
    );
    let confidence_level = if hedges > assured + answers.len() / 2 {
        "low"
    } else if assured > hedges {
        "high"
    } else {
        "medium"
    };
    let cheating_evidence: Vec<String> = answers
        .iter()
        .flat_map(|a| sentences(a))
        .filter(|s| {
            let s = s.to_lowercase();
            CHEATING.iter().any(|p| !find_phrase(&s, p).is_empty())
        })
        .take(3)
        .map(|s| clip(s, 200))
        .collect();
    let cheating_detected = !cheating_evidence.is_empty();
    let speech_pattern = if filler_rate >= 5.0 {
        format!("hesitant: {filler_rate:.1} filler words per 100 words")
    } else if avg_words < 8.0 {
        format!("terse: {avg_words:.0} words per answer on average")
    } else if avg_words > 150.0 {
        format!("long-winded: {avg_words:.0} words per answer on average")
    } else if filler_rate < 2.0 {
        format!("fluent: {avg_words:.0} words per answer, few filler words")
    } else {
        format!("conversational: {avg_words:.0} words per answer, some filler words")
    };
    let mut areas_of_improvement = Vec::new();
    if domain_score < 60 {
        areas_of_improvement.push(
            "Show more depth in the role's subject matter, with concrete technical detail"
                .to_owned(),
        );
    }
    if behavioral_score < 60 {
        areas_of_improvement.push(
            "Answer behavioural questions with specific examples: the situation, your action, the result"
                .to_owned(),
        );
    }
    if communication_score < 60 {
        areas_of_improvement
            .push("Answer in complete sentences with fewer filler words".to_owned());
    }
    if confidence_level == "low" {
        areas_of_improvement.push("State answers with more confidence; hedge less".to_owned());
    }
    let system_recommendation = if cheating_detected {
        "Not Recommended: possible outside help during the interview".to_owned()
    } else if overall_score >= 75 {
        "Recommended for Panel Interview".to_owned()
    } else if overall_score >= 55 {
        "Recommended for Further Screening".to_owned()
    } else {
        "Not Recommended".to_owned()
    };
    Evaluation {
        analyzer: AnalyzerKind::Rules,
        fallback_reason: String::new(),
        domain_score,
        behavioral_score,
        communication_score,
        overall_score,
        confidence_level: confidence_level.to_owned(),
        cheating_detected,
        speech_pattern,
        areas_of_improvement,
        system_recommendation,
        not_observable,
        evidence: cheating_evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::{Speaker, Turn};

    fn interview(answers: &[&str]) -> Conversation {
        Conversation {
            turns: answers
                .iter()
                .flat_map(|a| {
                    [
                        Turn {
                            speaker: Speaker::Agent,
                            message: "Tell me more.".into(),
                        },
                        Turn {
                            speaker: Speaker::User,
                            message: (*a).into(),
                        },
                    ]
                })
                .collect(),
            ..Conversation::default()
        }
    }

    fn vocabulary() -> Vec<String> {
        ["rust", "tokio", "postgresql", "latency"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn a_strong_candidate_is_recommended_for_the_panel() {
        let evaluation = evaluate(
            &interview(&[
                "In my last role I led the rewrite of our billing service in Rust on tokio. The situation was a 900 ms p99 latency, and as a result of moving the hot path off PostgreSQL row locks we got it to 40 ms.",
                "For example, there was a time a stakeholder wanted the launch moved up two weeks. I was responsible for the plan, I decided to cut scope with them, and we delivered on the new deadline. I learned to negotiate scope early.",
                "I designed the retry policy with exponential backoff and jitter, and I implemented the idempotency keys so retries never double charge a customer.",
            ]),
            &InterviewRules {
                vocabulary: &vocabulary(),
            },
        );
        assert_eq!(
            evaluation.system_recommendation, "Recommended for Panel Interview",
            "{evaluation:#?}"
        );
        assert!(evaluation.overall_score >= 75);
        assert_eq!(evaluation.confidence_level, "high");
        assert!(!evaluation.cheating_detected);
        assert!(
            evaluation
                .not_observable
                .contains(&"body language".to_owned())
        );
    }

    #[test]
    fn hesitant_short_answers_and_outside_help_are_reported() {
        let evaluation = evaluate(
            &interview(&[
                "Um, uh, I think maybe tokio?",
                "I don't know. Let me google that quickly.",
                "Uh, basically, you know, probably.",
            ]),
            &InterviewRules {
                vocabulary: &vocabulary(),
            },
        );
        assert!(evaluation.cheating_detected);
        assert_eq!(evaluation.evidence, vec!["Let me google that quickly."]);
        assert!(
            evaluation
                .system_recommendation
                .starts_with("Not Recommended")
        );
        assert_eq!(evaluation.confidence_level, "low");
        assert!(
            evaluation.speech_pattern.starts_with("hesitant"),
            "{}",
            evaluation.speech_pattern
        );
        assert!(
            evaluation.areas_of_improvement.len() >= 3,
            "{:?}",
            evaluation.areas_of_improvement
        );
    }

    #[test]
    fn no_answers_is_insufficient_data_not_an_error() {
        let evaluation = evaluate(
            &Conversation::default(),
            &InterviewRules { vocabulary: &[] },
        );
        assert_eq!(evaluation.overall_score, 0);
        assert!(
            evaluation
                .system_recommendation
                .starts_with("Insufficient Data")
        );
    }
}
