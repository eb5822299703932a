//! `make bench` (analysis part): how long the rule-based analyzer takes on a typical call and
//! on a 10,000-turn one, and the process's peak memory after. Not a test: numbers for the README.

use std::time::{Duration, Instant};

use callmesh_analysis::analyzer::{self, Conversation, Rules, Speaker, Turn};
use callmesh_analysis::settings::ScoringWeights;

fn call(turns: usize) -> Conversation {
    let lines = [
        (
            Speaker::Agent,
            "Hi, this is Sam from Riverside Bikes. How can I help you today?",
        ),
        (
            Speaker::User,
            "Hi! I'm interested in the Packster cargo bike. How much does it cost with the child seat?",
        ),
        (
            Speaker::Agent,
            "It's 4,400 dollars with the seat, and we offer financing over 24 months.",
        ),
        (
            Speaker::User,
            "That sounds great. Could I book a test ride on Saturday morning? Please text me the details.",
        ),
    ];
    Conversation {
        turns: (0..turns)
            .map(|i| {
                let (speaker, message) = lines[i % lines.len()];
                Turn {
                    speaker,
                    message: message.to_owned(),
                }
            })
            .collect(),
        provider: None,
        duration_secs: 240,
    }
}

fn measure(name: &str, conversation: &Conversation, runs: usize) {
    let weights = ScoringWeights::default();
    let vocabulary = vec!["Packster".to_owned(), "cargo bike".to_owned()];
    let rules = Rules {
        weights: &weights,
        vocabulary: &vocabulary,
    };
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(analyzer::analyze(conversation, &rules));
            started.elapsed()
        })
        .collect();
    times.sort();
    let p50 = times[times.len() / 2];
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    println!("{name:<28} p50 {p50:>10.2?}   p99 {p99:>10.2?}   ({runs} runs)");
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    // Warm the lexicons once, as a running service has.
    measure("warm-up", &call(4), 3);
    measure("typical call (12 turns)", &call(12), 500);
    measure("long call (10,000 turns)", &call(10_000), 10);
    println!("peak memory (VmHWM)          {}", peak_rss());
}
