//! `make eval`: runs the rule-based analyzer over the labelled calls in `eval/calls.json` and
//! prints per-label precision and recall for sentiment, intents, tier and (interviews) the
//! recommendation. `--verbose` lists every disagreement.
//!
//! A benchmark of the analyzer's judgement, not a test: the numbers go in the README.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use serde::Deserialize;

use callmesh_analysis::analyzer::interview::{self, InterviewRules};
use callmesh_analysis::analyzer::{
    self, Conversation, ProviderAnalysis, Rules, SentimentLabel, Speaker, Tier, Turn,
};
use callmesh_analysis::settings::ScoringWeights;

#[derive(Deserialize)]
struct EvalSet {
    vocabulary: Vec<String>,
    interview_vocabularies: BTreeMap<String, Vec<String>>,
    calls: Vec<Call>,
}

#[derive(Deserialize)]
struct Call {
    id: String,
    kind: String,
    duration_secs: u32,
    turns: Vec<EvalTurn>,
    #[serde(default)]
    provider_analysis: Option<ProviderAnalysis>,
    #[serde(default)]
    job_role: Option<String>,
    expected: Expected,
}

#[derive(Deserialize)]
struct EvalTurn {
    role: String,
    message: String,
}

#[derive(Deserialize)]
struct Expected {
    sentiment: String,
    #[serde(default)]
    intents: Vec<String>,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    recommendation: Option<String>,
}

/// True positives, false positives and false negatives per label.
#[derive(Default)]
struct Tally(BTreeMap<String, [u32; 3]>);

impl Tally {
    fn single(&mut self, expected: &str, got: &str) {
        self.multi(&[expected.to_owned()].into(), &[got.to_owned()].into());
    }

    fn multi(&mut self, expected: &BTreeSet<String>, got: &BTreeSet<String>) {
        for label in expected.union(got) {
            let counts = self.0.entry(label.clone()).or_default();
            match (expected.contains(label), got.contains(label)) {
                (true, true) => counts[0] += 1,
                (false, true) => counts[1] += 1,
                (true, false) => counts[2] += 1,
                (false, false) => {}
            }
        }
    }

    fn print(&self, title: &str) {
        println!("\n{title}");
        println!(
            "  {:<36} {:>9} {:>7} {:>8}",
            "label", "precision", "recall", "support"
        );
        for (label, [tp, fp, fal_neg]) in &self.0 {
            let ratio = |n: u32, d: u32| {
                if d == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.2}", f64::from(n) / f64::from(d))
                }
            };
            println!(
                "  {:<36} {:>9} {:>7} {:>8}",
                label,
                ratio(*tp, tp + fp),
                ratio(*tp, tp + fal_neg),
                tp + fal_neg
            );
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut path = "eval/calls.json".to_owned();
    let mut verbose = false;
    for arg in args.by_ref() {
        match arg.as_str() {
            "--verbose" | "-v" => verbose = true,
            other => path = other.to_owned(),
        }
    }
    let set: EvalSet = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(set) => set,
        Err(error) => {
            eprintln!("{path}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let weights = ScoringWeights::default();
    let (mut sentiment, mut intents, mut tiers, mut recommendations) = (
        Tally::default(),
        Tally::default(),
        Tally::default(),
        Tally::default(),
    );
    let mut disagreements = Vec::new();
    let mut kinds: BTreeMap<&str, u32> = BTreeMap::new();
    for call in &set.calls {
        *kinds.entry(call.kind.as_str()).or_default() += 1;
        let conversation = Conversation {
            turns: call
                .turns
                .iter()
                .map(|t| Turn {
                    speaker: match t.role.as_str() {
                        "user" => Speaker::User,
                        "agent" => Speaker::Agent,
                        _ => Speaker::Other,
                    },
                    message: t.message.clone(),
                })
                .collect(),
            provider: call.provider_analysis.clone(),
            duration_secs: call.duration_secs,
        };
        let findings = analyzer::analyze(
            &conversation,
            &Rules {
                weights: &weights,
                vocabulary: &set.vocabulary,
            },
        );
        let got_sentiment = match findings.sentiment {
            SentimentLabel::Positive => "positive",
            SentimentLabel::Neutral => "neutral",
            SentimentLabel::Negative => "negative",
        };
        sentiment.single(&call.expected.sentiment, got_sentiment);
        if got_sentiment != call.expected.sentiment {
            disagreements.push(format!(
                "{}: sentiment {} (expected {}, score {:.2})",
                call.id, got_sentiment, call.expected.sentiment, findings.sentiment_score
            ));
        }
        if call.kind == "interview" {
            let role = call.job_role.clone().unwrap_or_default();
            let vocabulary = set
                .interview_vocabularies
                .get(&role)
                .cloned()
                .unwrap_or_default();
            let evaluation = interview::evaluate(
                &conversation,
                &InterviewRules {
                    vocabulary: &vocabulary,
                },
            );
            let expected = call.expected.recommendation.clone().unwrap_or_default();
            // "Not Recommended: possible outside help…" counts as "Not Recommended".
            let got = evaluation
                .system_recommendation
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned();
            recommendations.single(&expected, &got);
            if got != expected {
                disagreements.push(format!(
                    "{}: recommendation {got:?} (expected {expected:?}; overall {})",
                    call.id, evaluation.overall_score
                ));
            }
            continue;
        }
        let expected: BTreeSet<String> = call.expected.intents.iter().cloned().collect();
        let got: BTreeSet<String> = findings.intents.iter().map(|i| i.name.clone()).collect();
        intents.multi(&expected, &got);
        if got != expected {
            disagreements.push(format!(
                "{}: intents {got:?} (expected {expected:?})",
                call.id
            ));
        }
        let tier = Tier::of(findings.lead_score).as_str();
        let expected_tier = call.expected.tier.clone().unwrap_or_default();
        tiers.single(&expected_tier, tier);
        if tier != expected_tier {
            disagreements.push(format!(
                "{}: tier {tier} (expected {expected_tier}; score {})",
                call.id, findings.lead_score
            ));
        }
    }
    let total = set.calls.len();
    println!(
        "{total} labelled calls ({})",
        kinds
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    sentiment.print("sentiment (every call)");
    intents.print("intents (every call but interviews)");
    tiers.print("tier (every call but interviews)");
    recommendations.print("interview recommendation");
    println!("\n{} disagreements with the labels", disagreements.len());
    if verbose {
        for line in &disagreements {
            println!("  {line}");
        }
    } else if !disagreements.is_empty() {
        println!("  (--verbose lists them)");
    }
    ExitCode::SUCCESS
}
