//! The phrase lists behind intents and action items. Plain data, so a reviewer can read what
//! the rules look for and the evaluation set (`make eval`) can measure it.

use serde::{Deserialize, Serialize};

use super::text::{capitalize, clip, find_phrase, negated, sentences};

/// What the caller wanted, with the sentences that show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub name: String,
    pub confidence: f64,
    pub evidence: Vec<String>,
}

struct IntentRule {
    name: &'static str,
    phrases: &'static [&'static str],
    /// Whether "not …" in front cancels the phrase ("I don't want to buy").
    negatable: bool,
}

const INTENTS: &[IntentRule] = &[
    IntentRule {
        name: "purchase",
        phrases: &[
            "buy",
            "purchase",
            "place an order",
            "order one",
            "order it",
            "i'll take it",
            "i'll take one",
            "we'll take it",
            "sign me up",
            "sign up",
            "go ahead with",
            "ready to go ahead",
            "want to get one",
            "put down a deposit",
            "pay the deposit",
            "upgrade",
            "renew",
        ],
        negatable: true,
    },
    IntentRule {
        name: "pricing",
        phrases: &[
            "price",
            "pricing",
            "how much",
            "cost",
            "quote",
            "discount",
            "financing",
            "payment plan",
            "monthly payment",
            "budget",
            "afford",
            "expensive",
            "cheaper",
            "rates",
        ],
        negatable: false,
    },
    IntentRule {
        name: "booking",
        phrases: &[
            "book",
            "appointment",
            "schedule",
            "reserve",
            "reservation",
            "test ride",
            "test drive",
            "come in",
            "come by",
            "stop by",
            "slot",
            "demo",
            "consultation",
            "viewing",
            "reschedule",
        ],
        negatable: true,
    },
    IntentRule {
        name: "support",
        phrases: &[
            "not working",
            "doesn't work",
            "stopped working",
            "won't turn on",
            "won't start",
            "broken",
            "problem with",
            "issue with",
            "error",
            "repair",
            "fix",
            "help me with",
            "how do i",
            "can't log in",
            "reset my",
            "warranty",
            "really slow",
            "keeps dropping",
            "keeps crashing",
        ],
        negatable: false,
    },
    IntentRule {
        name: "complaint",
        phrases: &[
            "complaint",
            "complain",
            "unacceptable",
            "terrible",
            "awful",
            "worst",
            "disappointed",
            "refund",
            "ridiculous",
            "frustrated",
            "fed up",
            "never again",
            "speak to a manager",
            "overcharged",
            "charged twice",
            "still waiting",
            "rude",
        ],
        negatable: false,
    },
    IntentRule {
        name: "call_back",
        phrases: &[
            "call me back",
            "call back",
            "callback",
            "ring me back",
            "call me later",
            "call me tomorrow",
            "call me next",
            "call me on",
            "call me in",
            "try me again",
            "try me later",
            "better time to call",
            "call again",
        ],
        negatable: true,
    },
    IntentRule {
        name: "not_interested",
        phrases: &[
            "not interested",
            "no thanks",
            "no thank you",
            "stop calling",
            "don't call",
            "do not call",
            "remove me",
            "take me off",
            "not looking",
            "don't need",
            "don't want",
            "not right now",
            "already have one",
            "went with another",
            "not for me",
        ],
        negatable: false,
    },
    IntentRule {
        name: "wrong_number",
        phrases: &[
            "wrong number",
            "no one by that name",
            "nobody by that name",
            "no one here by",
            "nobody here by",
            "doesn't live here",
            "you have the wrong",
            "never heard of",
        ],
        negatable: false,
    },
    IntentRule {
        name: "voicemail",
        phrases: &[
            "leave a message",
            "leave your message",
            "after the tone",
            "after the beep",
            "not available to take your call",
            "can't take your call",
            "reached the voicemail",
            "voicemail of",
            "mailbox is full",
            "record your message",
        ],
        negatable: false,
    },
];

/// Intents whose evidence stands only when the caller is not refusing in the same sentence.
const CANCELLED_BY_REFUSAL: [&str; 3] = ["purchase", "booking", "call_back"];

/// The intents in what the caller said, strongest first; each with up to three evidence
/// sentences. Confidence grows with the number of sentences that show it.
pub fn intents(caller_turns: &[&str]) -> Vec<Intent> {
    let mut found: Vec<Intent> = Vec::new();
    for turn in caller_turns {
        for sentence in sentences(turn) {
            let lower = sentence.to_lowercase();
            let refusing = INTENTS
                .iter()
                .filter(|r| r.name == "not_interested")
                .any(|r| matches_rule(&lower, r));
            // "Wrong number, I never asked for a quote": nothing else in that sentence counts.
            let wrong_number = INTENTS
                .iter()
                .filter(|r| r.name == "wrong_number")
                .any(|r| matches_rule(&lower, r));
            for rule in INTENTS {
                if (refusing || wrong_number) && CANCELLED_BY_REFUSAL.contains(&rule.name)
                    || wrong_number && rule.name != "wrong_number"
                {
                    continue;
                }
                if !matches_rule(&lower, rule) {
                    continue;
                }
                let evidence = clip(sentence, 200);
                match found.iter_mut().find(|i| i.name == rule.name) {
                    Some(intent) => {
                        intent.confidence += 1.0;
                        if intent.evidence.len() < 3 && !intent.evidence.contains(&evidence) {
                            intent.evidence.push(evidence);
                        }
                    }
                    None => found.push(Intent {
                        name: rule.name.to_owned(),
                        confidence: 1.0,
                        evidence: vec![evidence],
                    }),
                }
            }
        }
    }
    // `confidence` counted sentences so far: 1 → 0.6, 2 → 0.75, 3 → 0.85, 4+ → 0.9.
    for intent in &mut found {
        intent.confidence = match intent.confidence as u32 {
            0 | 1 => 0.6,
            2 => 0.75,
            3 => 0.85,
            _ => 0.9,
        };
    }
    found.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then_with(|| rank(&a.name).cmp(&rank(&b.name)))
    });
    found
}

fn rank(name: &str) -> usize {
    INTENTS
        .iter()
        .position(|r| r.name == name)
        .unwrap_or(usize::MAX)
}

fn matches_rule(lower: &str, rule: &IntentRule) -> bool {
    rule.phrases.iter().any(|phrase| {
        find_phrase(lower, phrase)
            .into_iter()
            .any(|at| !(rule.negatable && negated(lower, at)))
    })
}

/// Who commits to something: "I'll send you a quote", "can you call me back on Tuesday".
const COMMITMENTS: [&str; 12] = [
    "i'll ",
    "i will ",
    "we'll ",
    "we will ",
    "let me ",
    "i can ",
    "we can ",
    "can you ",
    "could you ",
    "please ",
    "i'm going to ",
    "we're going to ",
];

const ACTION_VERBS: [&str; 22] = [
    "send",
    "email",
    "text",
    "call",
    "ring",
    "book",
    "schedule",
    "reserve",
    "arrange",
    "confirm",
    "follow up",
    "set up",
    "ship",
    "order",
    "refund",
    "forward",
    "transfer",
    "escalate",
    "check",
    "get back",
    "put",
    "hold",
];

/// The next steps anyone in the call committed to or asked for, as short imperatives:
/// "I'll send you a quote by Friday" → "Send a quote by Friday". At most ten, each once.
pub fn action_items(turns: &[&str]) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for turn in turns {
        for sentence in sentences(turn) {
            let lower = sentence.to_lowercase();
            // Keep the speaker's capitals ("Friday") when lowercasing moved no byte.
            let source = if lower.len() == sentence.len() {
                sentence
            } else {
                lower.as_str()
            };
            for marker in COMMITMENTS {
                for at in find_phrase(&lower, marker.trim_end()) {
                    let start = at + marker.len();
                    let (Some(rest), Some(original)) = (lower.get(start..), source.get(start..))
                    else {
                        continue;
                    };
                    let skipped = rest.len() - rest.trim_start().len();
                    let rest = rest.trim_start();
                    let Some(verb) = ACTION_VERBS
                        .iter()
                        .find(|v| find_phrase(rest, v).first() == Some(&0))
                    else {
                        continue;
                    };
                    let Some(object) = original.get(skipped + verb.len()..) else {
                        continue;
                    };
                    let item = imperative(verb, object);
                    if !items.iter().any(|i| i.eq_ignore_ascii_case(&item)) {
                        items.push(item);
                    }
                    if items.len() == 10 {
                        return items;
                    }
                }
            }
        }
    }
    items
}

/// "send" + " you a quote by friday." → "Send a quote by friday".
fn imperative(verb: &str, rest: &str) -> String {
    let mut words: Vec<&str> = rest
        .split_whitespace()
        .map(|w| w.trim_end_matches([',', '.', '!', '?', ';']))
        .filter(|w| !w.is_empty())
        .collect();
    // "send you", "call me back": the pronoun is the caller; drop it.
    if words.first().is_some_and(|w| {
        ["you", "me", "us", "him", "her", "them"]
            .iter()
            .any(|p| w.eq_ignore_ascii_case(p))
    }) {
        words.remove(0);
    }
    // Stop at a new clause.
    if let Some(end) = words
        .iter()
        .position(|w| {
            ["and", "but", "so", "because", "if", "then"]
                .iter()
                .any(|c| w.eq_ignore_ascii_case(c))
        })
        .filter(|&end| end >= 2)
    {
        words.truncate(end);
    }
    words.truncate(10);
    let mut item = capitalize(verb);
    for word in words {
        item.push(' ');
        item.push_str(word);
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(found: &[Intent]) -> Vec<&str> {
        found.iter().map(|i| i.name.as_str()).collect()
    }

    #[test]
    fn intents_come_with_their_evidence() {
        let found = intents(&[
            "Hi! How much is the cargo bike? I'd like to book a test ride on Saturday.",
            "And what does the rain cover cost?",
        ]);
        assert_eq!(names(&found), vec!["pricing", "booking"]);
        assert_eq!(
            found[0].evidence,
            vec![
                "How much is the cargo bike?",
                "And what does the rain cover cost?"
            ]
        );
        assert_eq!(found[0].confidence, 0.75);
        assert_eq!(found[1].confidence, 0.6);
    }

    #[test]
    fn refusals_cancel_buying_words_in_the_same_sentence() {
        let found = intents(&["I'm not interested in buying anything, thanks."]);
        assert_eq!(names(&found), vec!["not_interested"]);
        let found = intents(&["I don't want to book anything."]);
        assert_eq!(names(&found), vec!["not_interested"]);
    }

    #[test]
    fn action_items_become_imperatives() {
        let items = action_items(&[
            "Great, I'll send you a quote by Friday and we can talk then.",
            "Could you call me back on Tuesday afternoon?",
            "I'll send you a quote by Friday.",
        ]);
        assert_eq!(
            items,
            vec!["Send a quote by Friday", "Call back on Tuesday afternoon"]
        );
    }
}
