//! `make eval`: runs the rule-based analyzer over one or more labelled call sets and prints, for
//! each set separately, sentiment accuracy, macro-F1 and confusion matrix, tier accuracy,
//! per-intent precision/recall/F1 with the micro average, action-item recall, how many
//! interviews were recognised as interviews, and the interview recommendation.
//!
//! ```text
//! cargo run -p callmesh-analysis --example eval -- [--verbose] [--summaries] FILE...
//! ```
//!
//! A set's `split` says what it is: `seed` (written with the rules, in-sample), `dev` (tuned on)
//! or `test` (frozen, never tuned on). When more than one `dev` set is given, their calls are
//! also reported together as one dev set. `--verbose` lists each disagreement with the labels,
//! but never for a `test` split (nor for a file named `holdout.json`, whatever its `split`
//! says): its calls are reported only in aggregate. `--summaries` adds each call's summary to
//! that list.
//!
//! A benchmark of the analyzer's judgement, not a test: the numbers go in the README.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use serde::Deserialize;

use callmesh_analysis::analyzer::interview::{self, InterviewRules};
use callmesh_analysis::analyzer::{
    self, Conversation, Findings, ProviderAnalysis, Rules, SentimentLabel, Speaker, Tier, Turn,
};
use callmesh_analysis::settings::ScoringWeights;

#[derive(Deserialize)]
struct EvalSet {
    #[serde(default)]
    split: Option<String>,
    #[serde(default)]
    vocabulary: Vec<String>,
    #[serde(default)]
    interview_vocabularies: BTreeMap<String, Vec<String>>,
    calls: Vec<Call>,
}

#[derive(Deserialize)]
struct Call {
    id: String,
    kind: String,
    #[serde(default)]
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
    action_items: Vec<String>,
    #[serde(default)]
    caller_name: Option<String>,
    #[serde(default)]
    recommendation: Option<String>,
}

const SENTIMENTS: [&str; 3] = ["positive", "neutral", "negative"];
const TIERS: [&str; 3] = ["hot", "warm", "cold"];

/// True positives, false positives and false negatives per label.
#[derive(Default)]
struct Tally(BTreeMap<String, [u32; 3]>);

impl Tally {
    fn add(&mut self, expected: &BTreeSet<String>, got: &BTreeSet<String>) {
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

    fn micro(&self) -> [u32; 3] {
        self.0.values().fold([0; 3], |sum, c| {
            [sum[0] + c[0], sum[1] + c[1], sum[2] + c[2]]
        })
    }
}

fn ratio(n: u32, d: u32) -> Option<f64> {
    (d > 0).then(|| f64::from(n) / f64::from(d))
}

fn shown(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

/// Precision, recall and F1 of one label's counts.
fn prf([tp, fp, fal_neg]: [u32; 3]) -> (Option<f64>, Option<f64>, Option<f64>) {
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fal_neg);
    let f1 = ratio(2 * tp, 2 * tp + fp + fal_neg);
    (precision, recall, f1)
}

/// A 3×3 confusion matrix, rows the label, columns the analyzer's answer.
#[derive(Default)]
struct Confusion(BTreeMap<(String, String), u32>);

impl Confusion {
    fn add(&mut self, expected: &str, got: &str) {
        *self
            .0
            .entry((expected.to_owned(), got.to_owned()))
            .or_default() += 1;
    }

    fn get(&self, expected: &str, got: &str) -> u32 {
        self.0
            .get(&(expected.to_owned(), got.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    fn total(&self) -> u32 {
        self.0.values().sum()
    }

    fn accuracy(&self, labels: &[&str]) -> Option<f64> {
        let right: u32 = labels.iter().map(|l| self.get(l, l)).sum();
        ratio(right, self.total())
    }

    fn macro_f1(&self, labels: &[&str]) -> f64 {
        let f1s: Vec<f64> = labels
            .iter()
            .map(|label| {
                let tp = self.get(label, label);
                let fp: u32 = labels
                    .iter()
                    .filter(|o| o != &label)
                    .map(|o| self.get(o, label))
                    .sum();
                let fal_neg: u32 = labels
                    .iter()
                    .filter(|o| o != &label)
                    .map(|o| self.get(label, o))
                    .sum();
                prf([tp, fp, fal_neg]).2.unwrap_or(0.0)
            })
            .collect();
        f1s.iter().sum::<f64>() / f1s.len() as f64
    }

    fn print(&self, labels: &[&str]) {
        print!("    {:<16}", "label \\ answer");
        for label in labels {
            print!(" {label:>9}");
        }
        println!();
        for expected in labels {
            print!("    {expected:<16}");
            for got in labels {
                print!(" {:>9}", self.get(expected, got));
            }
            println!();
        }
    }
}

#[derive(Default)]
struct Report {
    kinds: BTreeMap<String, u32>,
    sentiment: Confusion,
    tier: Confusion,
    intents: Tally,
    action_items_labelled: u32,
    action_items_found: u32,
    interviews: u32,
    interviews_recognised: u32,
    interviews_elsewhere: u32,
    recommendations: u32,
    recommendations_right: u32,
    names_labelled: u32,
    names_in_summary: u32,
    disagreements: Vec<String>,
}

fn conversation_of(call: &Call) -> Conversation {
    Conversation {
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
    }
}

fn sentiment_name(label: SentimentLabel) -> &'static str {
    match label {
        SentimentLabel::Positive => "positive",
        SentimentLabel::Neutral => "neutral",
        SentimentLabel::Negative => "negative",
    }
}

fn run(set: &EvalSet, summaries: bool, report: &mut Report) {
    let weights = ScoringWeights::default();
    for call in &set.calls {
        *report.kinds.entry(call.kind.clone()).or_default() += 1;
        let conversation = conversation_of(call);
        let findings = analyzer::analyze(
            &conversation,
            &Rules {
                weights: &weights,
                vocabulary: &set.vocabulary,
            },
        );
        score_call(summaries, set, call, &conversation, &findings, report);
    }
}

fn score_call(
    summaries: bool,
    set: &EvalSet,
    call: &Call,
    conversation: &Conversation,
    findings: &Findings,
    report: &mut Report,
) {
    let mut disagree = |what: String| report.disagreements.push(format!("{}: {what}", call.id));
    let got_sentiment = sentiment_name(findings.sentiment);
    report
        .sentiment
        .add(&call.expected.sentiment, got_sentiment);
    if got_sentiment != call.expected.sentiment {
        disagree(format!(
            "sentiment {got_sentiment} (expected {}, score {:.2})",
            call.expected.sentiment, findings.sentiment_score
        ));
    }

    // A screening interview is an `interview` whether or not an older label set says so.
    let interview_call = call.kind == "interview";
    let mut expected: BTreeSet<String> = call.expected.intents.iter().cloned().collect();
    if interview_call {
        expected.insert("interview".to_owned());
    }
    let got: BTreeSet<String> = findings.intents.iter().map(|i| i.name.clone()).collect();
    report.intents.add(&expected, &got);
    if got != expected {
        disagree(format!("intents {got:?} (expected {expected:?})"));
    }

    if let Some(expected_tier) = &call.expected.tier {
        let tier = Tier::of(findings.lead_score).as_str();
        report.tier.add(expected_tier, tier);
        if tier != expected_tier {
            disagree(format!(
                "tier {tier} (expected {expected_tier}; score {}: {})",
                findings.lead_score,
                findings
                    .score_factors
                    .iter()
                    .map(|f| format!("{} {:+}", f.name, f.contribution))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }

    if !call.expected.action_items.is_empty() {
        report.action_items_labelled += 1;
        if findings.action_items.is_empty() {
            disagree(format!(
                "no action items found (expected {:?})",
                call.expected.action_items
            ));
        } else {
            report.action_items_found += 1;
        }
    }

    if let Some(name) = call
        .expected
        .caller_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        report.names_labelled += 1;
        let first = name.split_whitespace().next().unwrap_or(name);
        if findings.summary.contains(first) {
            report.names_in_summary += 1;
        }
    }

    let recognised = findings.has_intent("interview");
    if interview_call {
        report.interviews += 1;
        if recognised {
            report.interviews_recognised += 1;
        }
    } else if recognised {
        report.interviews_elsewhere += 1;
    }
    // The interview evaluation runs for the calls the analyzer recognised as interviews, as
    // the service does.
    if let (true, Some(expected)) = (recognised, &call.expected.recommendation) {
        let role = call.job_role.clone().unwrap_or_default();
        let vocabulary = set
            .interview_vocabularies
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&role))
            .map(|(_, terms)| terms.clone())
            .unwrap_or_default();
        let evaluation = interview::evaluate(
            conversation,
            &InterviewRules {
                vocabulary: &vocabulary,
            },
        );
        // "Not Recommended: possible outside help…" counts as "Not Recommended".
        let got = evaluation
            .system_recommendation
            .split(':')
            .next()
            .unwrap_or_default();
        report.recommendations += 1;
        if same_recommendation(expected, got) {
            report.recommendations_right += 1;
        } else {
            disagree(format!(
                "recommendation {got:?} (expected {expected:?}; overall {})",
                evaluation.overall_score
            ));
        }
    }
    if summaries {
        report.disagreements.push(format!(
            "{}: [{} {:+.2}] summary: {}",
            call.id, call.expected.sentiment, findings.sentiment_score, findings.summary
        ));
    }
}

/// The labels' hiring scale (`strong_hire`, `advance`, `hold`, `reject`) against the
/// evaluation's three recommendations; older labels use the recommendation's own words.
fn same_recommendation(expected: &str, got: &str) -> bool {
    let scale = match got {
        "Recommended for Panel Interview" => &["strong_hire", "advance"][..],
        "Recommended for Further Screening" => &["hold"][..],
        "Not Recommended" => &["reject"][..],
        _ => &[][..],
    };
    expected == got || scale.contains(&expected)
}

fn print(path: &str, split: &str, report: &Report, verbose: bool) {
    let total: u32 = report.kinds.values().sum();
    let heading = match split {
        "seed" => "seed set, written with the rules (in-sample)",
        "dev" => "dev split (tuned on)",
        "dev-all" => "every dev set together (tuned on)",
        "test" => "test split (frozen, never tuned on)",
        _ => "labelled set",
    };
    println!("\n=== {path}: {heading}");
    println!(
        "{total} calls ({})",
        report
            .kinds
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    println!(
        "\nsentiment: accuracy {} ({} of {}), macro-F1 {:.2}",
        shown(report.sentiment.accuracy(&SENTIMENTS)),
        SENTIMENTS
            .iter()
            .map(|l| report.sentiment.get(l, l))
            .sum::<u32>(),
        report.sentiment.total(),
        report.sentiment.macro_f1(&SENTIMENTS)
    );
    report.sentiment.print(&SENTIMENTS);

    println!(
        "\ntier: accuracy {} ({} of {} labelled)",
        shown(report.tier.accuracy(&TIERS)),
        TIERS.iter().map(|l| report.tier.get(l, l)).sum::<u32>(),
        report.tier.total()
    );
    report.tier.print(&TIERS);

    let micro = report.intents.micro();
    let (p, r, f1) = prf(micro);
    println!(
        "\nintents: micro P {} R {} F1 {}",
        shown(p),
        shown(r),
        shown(f1)
    );
    println!(
        "    {:<16} {:>9} {:>7} {:>6} {:>8}",
        "intent", "precision", "recall", "F1", "support"
    );
    for (label, counts) in &report.intents.0 {
        let (p, r, f1) = prf(*counts);
        println!(
            "    {:<16} {:>9} {:>7} {:>6} {:>8}",
            label,
            shown(p),
            shown(r),
            shown(f1),
            counts[0] + counts[2]
        );
    }

    println!(
        "\naction items: found for {} of the {} calls labelled with any ({})",
        report.action_items_found,
        report.action_items_labelled,
        shown(ratio(
            report.action_items_found,
            report.action_items_labelled
        ))
    );
    println!(
        "interviews recognised: {} of {} (and {} other calls taken for interviews)",
        report.interviews_recognised, report.interviews, report.interviews_elsewhere
    );
    if report.recommendations > 0 {
        println!(
            "interview recommendation (of recognised interviews): {} of {} right",
            report.recommendations_right, report.recommendations
        );
    }
    if report.names_labelled > 0 {
        println!(
            "caller named in the summary: {} of {}",
            report.names_in_summary, report.names_labelled
        );
    }

    println!(
        "\n{} disagreements with the labels",
        report.disagreements.len()
    );
    if split == "test" {
        println!("  (not listed for a test split: its calls are reported only in aggregate)");
    } else if split == "dev-all" {
        println!("  (listed with each dev set above, with --verbose)");
    } else if verbose {
        for line in &report.disagreements {
            println!("  {line}");
        }
    } else if !report.disagreements.is_empty() {
        println!("  (--verbose lists them)");
    }
}

/// A `test` split is reported after every dev set, so the dev sets' joint report comes first.
fn main() -> ExitCode {
    let mut paths = Vec::new();
    let (mut verbose, mut summaries) = (false, false);
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--verbose" | "-v" => verbose = true,
            // With --verbose: each call's summary too.
            "--summaries" => (verbose, summaries) = (true, true),
            other => paths.push(other.to_owned()),
        }
    }
    if paths.is_empty() {
        paths.push("eval/calls.json".to_owned());
    }
    let mut failed = false;
    let mut sets = Vec::new();
    for path in &paths {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                println!("\n=== {path}: not there yet, skipped");
                continue;
            }
            Err(error) => {
                eprintln!("{path}: {error}");
                failed = true;
                continue;
            }
        };
        let set: EvalSet = match serde_json::from_str(&text) {
            Ok(set) => set,
            Err(error) => {
                eprintln!("{path}: {error}");
                failed = true;
                continue;
            }
        };
        let mut split = set.split.clone().unwrap_or_else(|| "seed".to_owned());
        // The held-out split is only ever reported in aggregate, whatever its file says.
        if std::path::Path::new(path).file_name() == Some(std::ffi::OsStr::new("holdout.json")) {
            split = "test".to_owned();
        }
        sets.push((path.clone(), split, set));
    }
    sets.sort_by_key(|(_, split, _)| split == "test");

    let mut dev_paths = Vec::new();
    let mut dev_all = Report::default();
    let mut dev_all_printed = false;
    for (path, split, set) in &sets {
        if split == "test" && !dev_all_printed && dev_paths.len() > 1 {
            print(&dev_paths.join(" + "), "dev-all", &dev_all, false);
            dev_all_printed = true;
        }
        let mut report = Report::default();
        run(set, summaries && split != "test", &mut report);
        print(path, split, &report, verbose);
        if split == "dev" {
            run(set, false, &mut dev_all);
            dev_paths.push(path.clone());
        }
    }
    if !dev_all_printed && dev_paths.len() > 1 {
        print(&dev_paths.join(" + "), "dev-all", &dev_all, false);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
