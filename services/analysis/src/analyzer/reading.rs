//! Conversation-aware reading: every caller sentence is read with the agent turn it answers, so
//! "Thursday works" after "Shall I book you in for Thursday?" is a booking, "yes" to "shall I
//! order it?" is a purchase, and "not right now" to a side question is no refusal of the offer.
//! The caller's sentiment is weighed over the call: pleasantries weigh little, grievances and
//! sarcasm much, and how the caller ends more than how they began.

use std::sync::LazyLock;

use super::lexicon::{self, Intent};
use super::text::{
    clip, find_affirmed, find_phrase, found_in, has_any, mentions_time, normalize, sentences,
};
use super::{SentimentLabel, Speaker, Turn};

static SENTIMENT: LazyLock<vader_sentiment::SentimentIntensityAnalyzer<'static>> =
    LazyLock::new(vader_sentiment::SentimentIntensityAnalyzer::new);

/// The caller's turns VADER scores, sampled evenly beyond this, so a very long call costs
/// bounded time.
const SENTIMENT_TURN_LIMIT: usize = 2_000;
/// Intents read at most this many caller turns (evenly sampled beyond).
const INTENT_TURN_LIMIT: usize = 4_000;

/// One sentence as said and as matched (lowercase, normalised).
struct Sentence<'a> {
    text: &'a str,
    lower: String,
}

/// One non-empty turn, split into sentences.
struct Line<'a> {
    speaker: Speaker,
    sentences: Vec<Sentence<'a>>,
}

impl Line<'_> {
    /// The last two sentences, where a question or an offer usually is.
    fn tail(&self) -> String {
        let n = self.sentences.len();
        self.sentences[n.saturating_sub(2)..]
            .iter()
            .map(|s| s.lower.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn last_sentence(&self) -> &str {
        self.sentences.last().map(|s| s.text).unwrap_or_default()
    }
}

fn lines_of(turns: &[Turn]) -> Vec<Line<'_>> {
    turns
        .iter()
        .filter(|t| t.speaker != Speaker::Other)
        .map(|t| Line {
            speaker: t.speaker,
            sentences: sentences(t.message.trim())
                .map(|text| Sentence {
                    text,
                    lower: normalize(&clip(text, 1_000)),
                })
                .collect(),
        })
        .filter(|l| !l.sentences.is_empty())
        .collect()
}

/// "I'll take a look", "I'll take a pass": taking that buys nothing.
const TAKES_NOTHING: &[&str] = &[
    "take a look",
    "take a peek",
    "take a while",
    "take a minute",
    "take a second",
    "take a break",
    "take a pass",
    "take a rain check",
    "take a day",
    "take a few days",
    "take a week",
    "take a step back",
    "take a breath",
    "take a message",
    "take a note",
    "take a picture",
    "take a photo",
    "take the weekend",
    "take the day",
];

/// What an agent turn offers or asks, read from its last sentences.
#[derive(Default, Clone, Copy)]
struct Prompt {
    booking: bool,
    purchase: bool,
    call_back: bool,
    side_question: bool,
    asks_for_person: bool,
    asks_name: bool,
    states_price: bool,
    /// Asks whether the caller wants what is on offer ("are you still interested?").
    pitch: bool,
}

/// How an agent puts an offer.
const OFFERING: &[&str] = &[
    "would you like",
    "do you want",
    "i can",
    "we can",
    "shall i",
    "should i",
    "want me to",
    "i have",
    "we have",
    "she has",
    "he has",
    "how about",
    "let's",
    "i could",
    "we could",
    "if you like",
    "if you'd like",
];

/// The agent's questions a "no" refuses the offer by.
const PITCH: &[&str] = &[
    "interested",
    "would you like",
    "do you want",
    "can i interest",
    "still looking",
    "still in the market",
    "would a",
    "would it help",
    "how about",
    "ready to",
    "shall we",
];

const ASKS_FOR_PERSON: &[&str] = &[
    "am i speaking with",
    "am i speaking to",
    "am i talking to",
    "is this mr",
    "is this ms",
    "is this mrs",
    "can i speak to",
    "can i speak with",
    "may i speak",
    "could i speak",
    "i'm looking for",
    "i'm trying to reach",
    "trying to reach",
    "is that",
];

/// An agent telling the caller they reached the wrong party, or owning that it dialled one.
const AGENT_WRONG_PARTY: &[&str] = &[
    "you're trying to reach",
    "you are trying to reach",
    "you might be trying to reach",
    "you may be trying to reach",
    "you were trying to reach",
    "you might want the",
    "you may want the",
    "you'll want to call",
    "you'd want to call",
    "you've reached the wrong",
    "you have the wrong",
    "you've got the wrong",
    "i may have the wrong",
    "i might have the wrong",
    "i must have the wrong",
    "i have the wrong",
    "i've got the wrong",
    "wrong number",
    "we're not the",
    "we are not the",
    "this isn't the",
    "this is not the",
    "no, this is",
    "across the street",
    "next door",
    "different office",
    "different company",
];

/// How a caller takes being told they reached the wrong party.
const WRONG_PARTY_TAKEN: &[&str] = &[
    "oh",
    "ah",
    "sorry",
    "oops",
    "whoops",
    "my mistake",
    "my bad",
    "no harm",
    "no problem",
    "no worries",
];

const ASKS_NAME: &[&str] = &[
    "your name",
    "who am i speaking",
    "who i'm speaking",
    "who do i have",
    "name for the",
    "name on the",
    "a name for",
    "spell that",
];

/// "Oh, yes!" is a "yes": the interjection in front dropped.
fn without_interjection(lower: &str) -> &str {
    let start = lower.trim_start_matches(|c: char| !c.is_alphanumeric());
    for interjection in ["oh", "ah", "ooh", "well", "hmm", "mm"] {
        if let Some(rest) = start.strip_prefix(interjection)
            && rest.starts_with([',', '.', '!', ' '])
        {
            return rest.trim_start_matches(|c: char| !c.is_alphanumeric());
        }
    }
    start
}

/// Hours and days said on their own ("Ten.", "Eight, okay", "The Thursday").
const SLOT_WORDS: &[&str] = &[
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "noon",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "tomorrow",
    "today",
    "morning",
    "afternoon",
    "evening",
];

/// A short answer naming one of the hours or days the agent just offered: "Ten." to "I have
/// Saturday at ten or one thirty".
fn picks_offered(lower: &str, prompt: Option<&Line<'_>>) -> bool {
    let Some(offered) = prompt.and_then(|l| l.sentences.last()) else {
        return false;
    };
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    words.len() <= 6
        && words.iter().any(|w| {
            let w = w.trim_end_matches("'s");
            (SLOT_WORDS.contains(&w) || w.chars().all(|c| c.is_ascii_digit()))
                && !find_phrase(&offered.lower, w).is_empty()
        })
}

fn prompt_of(line: &Line<'_>) -> Prompt {
    let tail = line.tail();
    let question = tail.contains('?');
    let last = line
        .sentences
        .last()
        .map(|s| s.lower.as_str())
        .unwrap_or_default();
    // "I have Tuesday at ten or Wednesday at three": times on offer, asked or not.
    let timed = mentions_time(last)
        && (last.contains('?')
            || has_any(
                last,
                &[
                    "or",
                    "i have",
                    "we have",
                    "she has",
                    "he has",
                    "i can do",
                    "we can do",
                    "works",
                    "available",
                    "opening",
                    "cancellation",
                    "free slot",
                    "a slot",
                ],
            ));
    // An offer is asked or put as one ("We'd need a site visit" offers nothing).
    let offer = question || has_any(&tail, OFFERING);
    Prompt {
        booking: has_any(&tail, lexicon::OFFER_BOOKING) && offer || timed,
        purchase: has_any(&tail, lexicon::OFFER_PURCHASE) && offer,
        call_back: has_any(&tail, lexicon::OFFER_CALL_BACK) && offer,
        pitch: question && has_any(&tail, PITCH),
        side_question: has_any(&tail, lexicon::SIDE_QUESTION),
        asks_for_person: question && has_any(&tail, ASKS_FOR_PERSON),
        asks_name: has_any(&tail, ASKS_NAME),
        states_price: has_any(&tail, lexicon::PRICE_STATED),
    }
}

fn starts_with_any(lower: &str, phrases: &[&str]) -> bool {
    let start = lower.trim_start_matches(|c: char| !c.is_alphanumeric());
    phrases.iter().any(|p| {
        start.starts_with(p)
            && start[p.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric() && c != '\'')
    })
}

/// Hedges: "I might swing by", "maybe I'll buy one someday" are interest, not a decision.
const HEDGES: &[&str] = &[
    "do i need",
    "do we need",
    "without an appointment",
    "walk in",
    "walk-in",
    "call back to book",
    "call you back to book",
    "might",
    "maybe",
    "possibly",
    "perhaps",
    "no promises",
    "not sure",
    "thinking about",
    "thinking of",
    "think about",
    "considering",
    "if i",
    "if we",
    "whether",
    "at some point",
    "someday",
    "one day",
    "eventually",
    "just looking",
    "just browsing",
    "before i",
    "before we",
    "would i",
    "do i need to",
];

/// Whether the sentence says an amount, in digits or words ("Eighteen fifty. Okay.").
fn says_a_number(lower: &str) -> bool {
    const NUMBERS: [&str; 20] = [
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "thousand",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "grand",
    ];
    lower.chars().any(|c| c.is_ascii_digit()) || has_any(lower, &NUMBERS)
}

/// A "yes" with one of these after it is no acceptance ("Yeah, I'm not coming back").
const NOT: &[&str] = &[
    "not", "don't", "won't", "can't", "cannot", "never", "isn't", "doesn't", "wouldn't",
    "couldn't", "didn't",
];

/// Past appointments told as a story: "I had an appointment this morning" books nothing.
const PAST: &[&str] = &[
    "had an appointment",
    "had a booking",
    "had a reservation",
    "had a table",
    "i booked",
    "we booked",
    "i had booked",
    "was booked",
    "were booked",
    "was scheduled",
    "were scheduled",
    "my appointment was",
    "last appointment",
    "last visit",
    "last time",
];

/// Money words that, in a sentence about a bill already charged, are a dispute, not pricing.
const MONEY_WORDS: &[&str] = &["dollars", "dollar", "bucks", "grand", "fee", "fees", "cost"];
const BILLED: &[&str] = &[
    "charged",
    "charge me",
    "bill",
    "billed",
    "invoice",
    "refund",
    "money back",
    "paid",
    "no-show fee",
];

/// Whether the sentence carries a grievance (a complaint, a bad feeling).
fn grievance(lower: &str) -> bool {
    has_any(lower, lexicon::COMPLAINT) || has_any(lower, lexicon::NEGATIVE_FEELING)
}

/// Someone other than this business: a competitor, the old provider, the old way of doing
/// things, a neighbour. Trouble told about them is no grievance against this business (often
/// the opposite: "the last place charged a hundred").
const ELSEWHERE: &[&str] = &[
    "the last place",
    "the other place",
    "other places",
    "the last shop",
    "the other shop",
    "the last dentist",
    "my old",
    "our old",
    "my previous provider",
    "my previous dentist",
    "my previous doctor",
    "my previous insurer",
    "my last provider",
    "my last dentist",
    "my last doctor",
    "my last insurer",
    "my last company",
    "old company",
    "previous company",
    "other company",
    "other guys",
    "the spreadsheet",
    "spreadsheets",
    "back to paper",
    "my neighbor",
    "my neighbour",
    "my neighbor's",
    "my neighbour's",
    "everything's going up",
    "everything is going up",
    "my current",
    "our current",
    "the last guy",
    "the other guy",
    "the last company",
    "the other dealer",
    "another dealer",
    "the old system",
    "the old way",
    "competitor",
];

/// Words that turn a sentence to this business ("you", "your people").
const ADDRESSED: &[&str] = &[
    "you", "your", "you're", "you've", "y'all", "you guys", "yours",
];

/// Trouble laid at someone else's door, not this business's.
fn elsewhere(lower: &str) -> bool {
    has_any(lower, ELSEWHERE) && !has_any(lower, ADDRESSED)
}

/// A grievance against this business, for the caller's mood: negation cancels it ("not
/// terrible", "no harm done") and trouble with someone else is not one.
fn mood_grievance(lower: &str) -> bool {
    let affirmed = find_affirmed(lower, lexicon::COMPLAINT).is_some()
        || find_affirmed(lower, lexicon::NEGATIVE_FEELING).is_some()
        || find_affirmed(lower, ANNOYED).is_some();
    affirmed && !elsewhere(lower)
}

/// Relief: praise beside a worry that did not come true ("perfect, I was worried we'd lose
/// it all") is no sarcasm.
const RELIEF: &[&str] = &[
    "i was worried",
    "was worried",
    "i was afraid",
    "was afraid",
    "i was scared",
    "i thought i'd have to",
    "thought we'd have to",
    "i was dreading",
    "been dreading",
    "i was nervous",
    "i was panicking",
    "thought it was lost",
    "thought i'd lost",
];

/// Sarcasm: a phrase only said in sarcasm, or praise beside what went wrong, in a call where
/// something did go wrong.
fn sarcastic(lower: &str, grievance_nearby: bool) -> bool {
    if !grievance_nearby {
        return false;
    }
    has_any(lower, lexicon::SARCASM)
        || (has_any(lower, lexicon::PRAISE) && has_any(lower, lexicon::GRIEVANCE_CUES))
}

/// Which of a turn's sentences are sarcastic: a sarcasm phrase or praise beside what went
/// wrong, or bare praise right after a problem ("It's been down every evening. That's
/// great."), given whether the call had a grievance before this turn.
fn sarcasm_in(line: &Line<'_>, grievance_before: bool) -> Vec<bool> {
    sarcasm_with(line, grievance_before, false)
}

/// As `sarcasm_in`, and with `grievance_later` a sarcasm phrase also counts before the
/// grievance it mocks ("Oh great, a robot. Just what I needed." opening a complaint).
fn sarcasm_with(line: &Line<'_>, grievance_before: bool, grievance_later: bool) -> Vec<bool> {
    let nearby = grievance_before
        || line
            .sentences
            .iter()
            .any(|s| grievance(&s.lower) || has_any(&s.lower, lexicon::GRIEVANCE_CUES));
    let mut problem_before = false;
    line.sentences
        .iter()
        .map(|sentence| {
            let lower = sentence.lower.as_str();
            let words: Vec<&str> = lower.split_whitespace().collect();
            let ending = words[words.len().saturating_sub(3)..].join(" ");
            let bare_praise = problem_before
                && has_any(&ending, lexicon::PRAISE)
                && !has_any(
                    lower,
                    &["thank", "thanks", "fixed", "sorted", "solved", "works now"],
                );
            problem_before |= grievance(lower)
                || has_any(lower, lexicon::SUPPORT)
                || has_any(lower, lexicon::GRIEVANCE_CUES);
            let mocking = bare_praise
                || sarcastic(lower, nearby)
                || grievance_later && has_any(lower, lexicon::SARCASM);
            mocking && !has_any(lower, RELIEF) && !elsewhere(lower)
        })
        .collect()
}

#[derive(Default)]
struct Found {
    intents: Vec<Intent>,
}

impl Found {
    fn add(&mut self, name: &str, evidence: String) {
        match self.intents.iter_mut().find(|i| i.name == name) {
            Some(intent) => {
                intent.confidence += 1.0;
                if intent.evidence.len() < 3 && !intent.evidence.contains(&evidence) {
                    intent.evidence.push(evidence);
                }
            }
            None => self.intents.push(Intent {
                name: name.to_owned(),
                confidence: 1.0,
                evidence: vec![evidence],
            }),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.intents.iter().any(|i| i.name == name)
    }

    fn drop(&mut self, names: &[&str]) {
        self.intents.retain(|i| !names.contains(&i.name.as_str()));
    }
}

/// A caller sentence as evidence, with the agent's words it answers when those made it count.
fn answering(sentence: &str, prompt: &str) -> String {
    format!(
        "{} (answering \"{}\")",
        clip(sentence, 160),
        clip(prompt.trim(), 120)
    )
}

/// What the reading found.
pub struct Reading {
    /// Strongest first, each with up to three sentences as evidence.
    pub intents: Vec<Intent>,
    /// The caller's own name, when they said it.
    pub caller_name: Option<String>,
    /// The caller's sentence the name was read from.
    pub caller_name_evidence: String,
    pub mood: Mood,
    /// Sentences showing buying interest short of a decision.
    pub interest: Vec<String>,
}

/// The caller's sentiment over the call, with the sentences that weighed most.
pub struct Mood {
    pub label: SentimentLabel,
    /// -1.0 to 1.0.
    pub score: f64,
    /// "grievance: \"…\"", "sarcasm: \"…\"", "ending: \"…\"" — the sentences behind the score.
    pub reasons: Vec<String>,
    pub grievances: usize,
    /// How many sentences read as pleased.
    pub pleased: usize,
    /// Fed up with being called: the one grievance a wrong number or a voicemail can carry.
    pub fed_up: bool,
    /// Warm thanks said on its own ("Lovely, thanks so much."): manners on its own, warmth
    /// beside a decision.
    pub warm_thanks: Option<String>,
}

/// The caller's last sentence, when it ends on an exclamation ("Thanks!", "See you Saturday!").
fn exclaimed_ending<'a>(lines: &[Line<'a>]) -> Option<&'a str> {
    lines
        .iter()
        .rev()
        .find(|l| l.speaker == Speaker::User)
        .and_then(|l| l.sentences.last())
        .map(|s| s.text)
        .filter(|text| text.trim_end().ends_with('!'))
}

pub fn read(turns: &[Turn]) -> Reading {
    let lines = lines_of(turns);
    let intents = intents_of(&lines);
    let refused = intents
        .iter()
        .any(|i| i.name == "not_interested" || i.name == "wrong_number");
    let interest = if refused {
        Vec::new()
    } else {
        lines
            .iter()
            .filter(|l| l.speaker == Speaker::User)
            .flat_map(|l| &l.sentences)
            .filter(|s| has_any(&s.lower, lexicon::INTEREST) && !grievance(&s.lower))
            .take(2)
            .map(|s| clip(s.text, 160))
            .collect()
    };
    let (caller_name, caller_name_evidence) = match caller_name(&lines) {
        Some((name, sentence)) => (Some(name), sentence),
        None => (None, String::new()),
    };
    let voicemail_only = intents.iter().any(|i| i.name == "voicemail");
    let interview = intents.iter().any(|i| i.name == "interview");
    let mut mood = mood_of(&lines, voicemail_only, interview);
    // A decision the caller made (a purchase, a sales visit booked), pleased and with no
    // grievance anywhere: the substance of the call was good news to them.
    let has = |name: &str| intents.iter().any(|i| i.name == name);
    let decided = intents
        .iter()
        .find(|i| i.name == "purchase" || i.name == "booking")
        .filter(|_| !has("support") && !has("complaint") && !refused);
    if let Some(decision) = decided
        && mood.label == SentimentLabel::Neutral
        && mood.grievances == 0
        && (mood.pleased > 0 || mood.warm_thanks.is_some() || exclaimed_ending(&lines).is_some())
    {
        mood.label = SentimentLabel::Positive;
        if mood.pleased == 0 {
            let ending = mood
                .warm_thanks
                .clone()
                .or_else(|| exclaimed_ending(&lines).map(str::to_owned))
                .unwrap_or_default();
            mood.reasons
                .insert(0, format!("thanked \"{}\"", clip(&ending, 120)));
        }
        mood.reasons.insert(
            0,
            format!(
                "decided \"{}\"",
                clip(decision.evidence.first().map_or("", String::as_str), 120)
            ),
        );
    }
    Reading {
        intents,
        caller_name,
        caller_name_evidence,
        mood,
        interest,
    }
}

fn intents_of(lines: &[Line<'_>]) -> Vec<Intent> {
    let mut found = Found::default();
    // Weak refusals wait until the whole call is read: they stand only on a call with no
    // buying or booking in it.
    let mut weak_refusals: Vec<String> = Vec::new();
    let caller_lines = lines.iter().filter(|l| l.speaker == Speaker::User).count();
    let step = caller_lines.div_ceil(INTENT_TURN_LIMIT).max(1);
    let mut caller_seen = 0usize;
    let mut interviewer_cues: Vec<&str> = Vec::new();
    // A slot accepted for the next round of a hiring process.
    let mut next_round = false;
    let mut candidate_cues: Vec<&str> = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if line.speaker == Speaker::Agent {
            // The agent owning a fault: the caller's turn before it was a grievance.
            let owned = line
                .sentences
                .iter()
                .any(|s| has_any(&s.lower, lexicon::AGENT_APOLOGY));
            if let Some(before) = index.checked_sub(1).map(|i| &lines[i])
                && owned
                && before.speaker == Speaker::User
                && !found.has("complaint")
            {
                let said = before.sentences[0].text;
                let apology = line
                    .sentences
                    .iter()
                    .find(|s| has_any(&s.lower, lexicon::AGENT_APOLOGY))
                    .map(|s| s.text)
                    .unwrap_or_default();
                found.add(
                    "complaint",
                    format!(
                        "{} (the agent answered \"{}\")",
                        clip(said, 160),
                        clip(apology, 80)
                    ),
                );
            }
            if interviewer_cues.len() < 6 {
                for sentence in &line.sentences {
                    for cue in found_in(&sentence.lower, lexicon::INTERVIEWER) {
                        if !interviewer_cues.contains(&cue) {
                            interviewer_cues.push(cue);
                        }
                    }
                }
            }
            continue;
        }
        caller_seen += 1;
        if !(caller_seen - 1).is_multiple_of(step) {
            continue;
        }
        let prompt_line = index
            .checked_sub(1)
            .map(|i| &lines[i])
            .filter(|l| l.speaker == Speaker::Agent);
        let prompt = prompt_line.map(prompt_of).unwrap_or_default();
        let prompt_text = prompt_line.map(Line::last_sentence).unwrap_or_default();
        let sarcasm = sarcasm_in(line, found.has("complaint"));
        for (position, sentence) in line.sentences.iter().enumerate() {
            let lower = sentence.lower.as_str();
            let evidence = || clip(sentence.text, 200);
            if candidate_cues.len() < 6 {
                for cue in found_in(lower, lexicon::CANDIDATE) {
                    if !candidate_cues.contains(&cue) {
                        candidate_cues.push(cue);
                    }
                }
            }
            let first = position == 0;
            let declines = first && starts_with_any(lower, lexicon::DECLINE);
            let accepts = first
                && !declines
                && starts_with_any(without_interjection(lower), lexicon::AFFIRM)
                && !has_any(lower, NOT);

            // "Wrong number, I never asked for a quote": nothing else in that sentence counts.
            // "Am I speaking with Jordan?" — "No, there's no Jordan here" / "He moved out".
            let whole_turn = line
                .sentences
                .iter()
                .map(|s| s.lower.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let not_them = prompt.asks_for_person
                && first
                && (declines
                    && has_any(
                        &whole_turn,
                        &[
                            "here",
                            "wrong",
                            "don't know",
                            "not me",
                            "there's no",
                            "there is no",
                            "nobody",
                            "no one",
                            "never heard",
                        ],
                    )
                    || has_any(
                        &whole_turn,
                        &[
                            "moved out",
                            "moved away",
                            "no longer lives",
                            "doesn't live",
                            "passed away",
                            "anymore",
                            "not here anymore",
                        ],
                    ));
            // The agent found the caller reached the wrong party ("it sounds like you're
            // trying to reach the city water department"; "I may have the wrong Hartman"),
            // and the caller takes it ("Oh. Sorry.", "No harm done").
            let misdirected = first
                && prompt_line.is_some_and(|l| {
                    l.sentences
                        .iter()
                        .any(|s| has_any(&s.lower, AGENT_WRONG_PARTY))
                })
                && (starts_with_any(lower, WRONG_PARTY_TAKEN)
                    || has_any(&whole_turn, &["sorry", "my mistake", "my bad", "no harm"]));
            // "The person you are trying to reach is not available": a voicemail greeting.
            let greeting = has_any(&whole_turn, lexicon::VOICEMAIL);
            if has_any(lower, lexicon::WRONG_NUMBER) && !greeting || not_them || misdirected {
                found.add("wrong_number", evidence());
                continue;
            }
            if has_any(lower, lexicon::VOICEMAIL) {
                found.add("voicemail", evidence());
                continue;
            }
            let strong_refusal = has_any(lower, lexicon::STRONG_REFUSAL);
            // A soft "not really" refuses only an offer (or stands alone, unprompted).
            let offered =
                prompt.booking || prompt.purchase || prompt.pitch || prompt_line.is_none();
            let weak_refusal = (has_any(lower, lexicon::WEAK_REFUSAL) || declines) && offered;
            let refusing = strong_refusal || weak_refusal;
            if strong_refusal {
                found.add("not_interested", evidence());
            } else if weak_refusal && !prompt.side_question && weak_refusals.len() < 3 {
                weak_refusals.push(evidence());
            }
            let hedged = has_any(lower, HEDGES) || has_any(lower, PAST);

            // What the caller says outright.
            if !refusing && !hedged && !grievance(lower) {
                if find_affirmed(lower, lexicon::PURCHASE).is_some()
                    && !has_any(lower, TAKES_NOTHING)
                {
                    // "We'll take it" to a table or a slot on offer takes the booking.
                    if prompt.booking && !prompt.purchase {
                        found.add("booking", answering(sentence.text, prompt_text));
                    } else {
                        found.add("purchase", evidence());
                    }
                }
                if find_affirmed(lower, lexicon::BOOKING).is_some() {
                    found.add("booking", evidence());
                }
            }
            if let Some(phrase) = found_in(lower, lexicon::PRICING).first() {
                let disputed = MONEY_WORDS.contains(phrase) && has_any(lower, BILLED);
                if !disputed {
                    found.add("pricing", evidence());
                }
            }
            if has_any(lower, lexicon::SUPPORT) {
                found.add("support", evidence());
            }
            if grievance(lower) || sarcasm[position] {
                found.add("complaint", evidence());
            }
            let own_call = has_any(lower, lexicon::CALLER_WILL_CALL)
                && !has_any(
                    lower,
                    &[
                        "call me",
                        "can you call",
                        "could you call",
                        "give me a call",
                        "ring me",
                    ],
                );
            if !own_call && find_affirmed(lower, lexicon::CALL_BACK).is_some() && !strong_refusal {
                found.add("call_back", evidence());
            }

            // What the caller's answer means, given what the agent offered.
            if prompt.states_price
                && first
                && !declines
                && (has_any(&sentence.lower, lexicon::PRICE_REACTION) || says_a_number(lower))
            {
                found.add("pricing", answering(sentence.text, prompt_text));
            }
            if refusing || hedged {
                continue;
            }
            // "I'd love to, but…": what follows the "but" is no acceptance of the offer; nor
            // is a time given for a call-back the caller asks for instead.
            let conditional = line
                .sentences
                .first()
                .is_some_and(|s| has_any(&s.lower, &["but", "except", "unless"]));
            let asks_call_back = has_any(lower, lexicon::CALL_BACK) && !own_call;
            let timed = mentions_time(lower) && !lower.starts_with("no") && !asks_call_back;
            let picks = first && picks_offered(lower, prompt_line);
            if prompt.booking && !prompt.call_back && !conditional && (accepts || timed || picks) {
                next_round |= prompt_line.is_some_and(|l| has_any(&l.tail(), lexicon::NEXT_ROUND));
                found.add("booking", answering(sentence.text, prompt_text));
            } else if prompt.purchase && accepts {
                found.add("purchase", answering(sentence.text, prompt_text));
            }
            if prompt.call_back && (accepts || timed) && !own_call {
                found.add("call_back", answering(sentence.text, prompt_text));
            }
        }
    }
    // A complaint about something the caller already has needs support too.
    if found.has("complaint")
        && !found.has("support")
        && let Some(owned) = lines
            .iter()
            .filter(|l| l.speaker == Speaker::User)
            .flat_map(|l| &l.sentences)
            .find(|s| has_any(&s.lower, lexicon::OWNED))
    {
        found.add("support", clip(owned.text, 200));
    }
    if !weak_refusals.is_empty() && !found.has("purchase") && !found.has("booking") {
        for evidence in weak_refusals {
            found.add("not_interested", evidence);
        }
    }
    // A refusal ends the sale; a wrong number or a voicemail is nothing else.
    if found.has("wrong_number") {
        found.intents.retain(|i| i.name == "wrong_number");
    } else if found.has("voicemail") && caller_lines <= 2 {
        found.intents.retain(|i| i.name == "voicemail");
    }
    let interview =
        interviewer_cues.len() >= 2 && interviewer_cues.len() + candidate_cues.len() >= 3;
    if interview {
        // A booking on a screening call is the next round, or nothing.
        if !next_round {
            found.drop(&["booking"]);
        }
        found.drop(&[
            "purchase",
            "pricing",
            "support",
            "complaint",
            "not_interested",
            "call_back",
        ]);
        found.intents.insert(
            0,
            Intent {
                name: "interview".to_owned(),
                confidence: 4.0,
                evidence: interviewer_cues
                    .iter()
                    .chain(&candidate_cues)
                    .take(3)
                    .map(|cue| format!("\"{cue}\""))
                    .collect(),
            },
        );
    }
    let mut intents = found.intents;
    // `confidence` counted sentences so far: 1 → 0.6, 2 → 0.75, 3 → 0.85, 4+ → 0.9.
    for intent in &mut intents {
        intent.confidence = match intent.confidence as u32 {
            0 | 1 => 0.6,
            2 => 0.75,
            3 => 0.85,
            _ => 0.9,
        };
    }
    intents.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then_with(|| lexicon::rank(&a.name).cmp(&lexicon::rank(&b.name)))
    });
    intents
}

/// Words after "this is" or "my name is" that are not a name.
const NOT_NAMES: &[&str] = &[
    "I",
    "I'm",
    "It",
    "It's",
    "This",
    "That",
    "Yes",
    "Yeah",
    "No",
    "Sure",
    "Hi",
    "Hello",
    "Hey",
    "Ok",
    "Okay",
    "Oh",
    "Well",
    "So",
    "Um",
    "Uh",
    "The",
    "A",
    "My",
    "Just",
    "Thanks",
    "Thank",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Mr",
    "Mrs",
    "Ms",
    "Dr",
    "Great",
    "Perfect",
    "Good",
    "Fine",
    "Sorry",
    "Actually",
    "Speaking",
    "Not",
];

/// Up to two capitalised words starting `text` ("Marcus Bell", "Yusuf").
fn name_at(text: &str) -> Option<String> {
    let raw: Vec<&str> = text.split_whitespace().take(2).collect();
    let words: Vec<&str> = raw
        .iter()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-'))
        .collect();
    // "Femi, Femi Adebayo": a comma or a full stop ends the name.
    let words = match raw.first() {
        Some(first) if first.ends_with([',', '.', '!', '?']) => &words[..1],
        _ => &words[..],
    };
    let is_name = |w: &str| {
        w.chars().next().is_some_and(char::is_uppercase)
            && w.chars()
                .skip(1)
                .all(|c| c.is_lowercase() || c == '\'' || c == '-')
            && w.chars().count() >= 2
            && !NOT_NAMES.contains(&w)
    };
    let first = *words.first()?;
    if !is_name(first) {
        return None;
    }
    match words.get(1) {
        Some(second) if is_name(second) => Some(format!("{first} {second}")),
        _ => Some(first.to_owned()),
    }
}

/// The caller's name when they said it, with the sentence that says it: "my name is …",
/// "this is …", "it's … here", "hi, it's …" (or an opening "It's …"), the answer to "can I get
/// your name?", a voicemail's "you've reached …".
fn caller_name(lines: &[Line<'_>]) -> Option<(String, String)> {
    // "It's" names someone only as an introduction: after a greeting or as the caller's very
    // first words, not "it's Tuesday" mid-call (the name check refuses days and such too).
    const GREETINGS: [&str; 6] = ["hi", "hey", "hello", "yes", "yeah", "oh hi"];
    let mut first_words = true;
    const INTRODUCTIONS: [&str; 7] = [
        "my name is ",
        "my name's ",
        "name is ",
        "this is ",
        "you've reached ",
        "you have reached ",
        "it's ",
    ];
    for (index, line) in lines.iter().enumerate() {
        if line.speaker != Speaker::User {
            continue;
        }
        let asked = index > 0
            && lines[index - 1].speaker == Speaker::Agent
            && prompt_of(&lines[index - 1]).asks_name;
        for (position, sentence) in line.sentences.iter().enumerate() {
            for intro in INTRODUCTIONS {
                for at in find_phrase(&sentence.lower, intro.trim_end()) {
                    // The same byte offsets in the original text when lowercasing kept them.
                    let Some(rest) = sentence
                        .text
                        .get(at + intro.len()..)
                        .filter(|_| sentence.text.len() == sentence.lower.len())
                    else {
                        continue;
                    };
                    let introduced = (first_words && position == 0 && at == 0)
                        || GREETINGS.iter().any(|greeting| {
                            sentence.lower[..at]
                                .trim_end_matches([' ', ','])
                                .trim_start_matches(|c: char| !c.is_alphanumeric())
                                == *greeting
                        });
                    if intro == "it's "
                        && !sentence.lower.contains(" here")
                        && !asked
                        && !introduced
                        && !has_any(&sentence.lower, lexicon::VOICEMAIL)
                    {
                        continue;
                    }
                    if let Some(name) = name_at(rest) {
                        return Some((name, sentence.text.to_owned()));
                    }
                }
            }
            if asked && position == 0 {
                let text = sentence
                    .text
                    .trim_start_matches(|c: char| !c.is_alphanumeric());
                let text = [
                    "Yes, ", "Yeah, ", "Sure, ", "Sure. ", "Oh, ", "Um, ", "Uh, ",
                ]
                .iter()
                .find_map(|p| text.strip_prefix(p))
                .unwrap_or(text);
                if let Some(name) = name_at(text) {
                    return Some((name, sentence.text.to_owned()));
                }
            }
        }
        first_words = false;
    }
    None
}

/// Words VADER reads as warm that on a phone call are only manners or business ("please",
/// "I'd like", "interested", "free on Tuesday", "help"), taken out before it scores.
const TRANSACTIONAL: &[&str] = &[
    "please",
    "would like",
    "'d like",
    "like to",
    "interested",
    "free",
    "help",
    "okay",
    "ok",
    "sure",
    "yes",
    "yeah",
    "thanks",
    "thank you",
    "thank",
    "take care",
    "care",
    "pretty much",
    "pretty",
    "fair enough",
    "no problem",
    "no worries",
    "don't worry",
    "good morning",
    "good afternoon",
    "good evening",
    "kind of",
    "no",
    "want",
    "yep",
    "alright",
    "well",
    "hello",
    "hi",
    "like",
];

/// An interjection opening a sentence ("Great, that works"), manners more than mood.
const OPENERS: &[&str] = &[
    "great",
    "perfect",
    "lovely",
    "wonderful",
    "awesome",
    "cool",
    "excellent",
    "fantastic",
    "brilliant",
    "good",
    "nice",
];

fn vader(lower: &str) -> f64 {
    let mut text = format!(" {lower} ");
    for opener in OPENERS {
        let trimmed = text.trim_start();
        if let Some(rest) = trimmed.strip_prefix(opener)
            && rest.starts_with([',', '.', '!'])
        {
            text = format!(" {}", &rest[1..]);
        }
    }
    for word in found_in(&text, TRANSACTIONAL) {
        let mut at = 0;
        while let Some(found) = find_phrase(&text[at..], word).first().copied() {
            let start = at + found;
            text.replace_range(start..start + word.len(), " ");
            at = start;
        }
    }
    SENTIMENT
        .polarity_scores(&text)
        .get("compound")
        .copied()
        .filter(|s| s.is_finite())
        .unwrap_or(0.0)
}

/// Whether the sentence is only manners: "Great, thanks so much, bye!"
fn pleasantry(lower: &str) -> bool {
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    !words.is_empty()
        && words.len() <= 12
        && words
            .iter()
            .filter(|w| !lexicon::POLITE_WORDS.contains(w))
            .count()
            <= usize::from(words.len() >= 5)
}

/// Annoyance short of a complaint: a grievance for the caller's mood, though no complaint
/// intent. Refusals said in anger ("don't call here again"; a polite "you can take me off the
/// list" is no anger), outrage at a price, taking their business elsewhere, arguing the point
/// ("explain to me how…", "I told him that"), grudging endings ("we'll see", "I'll believe it
/// when…", "are we done?").
const ANNOYED: &[&str] = &[
    "stop calling",
    "quit calling",
    "don't call me",
    "don't call here",
    "don't call again",
    "do not call",
    "never call",
    "leave me alone",
    "how did you get this number",
    "how did you get my number",
    "these calls",
    "rip-off",
    "rip off",
    "ripoff",
    "insane",
    "outrageous",
    "highway robbery",
    "daylight robbery",
    "unbelievable",
    "unacceptable",
    "going somewhere else",
    "go somewhere else",
    "going elsewhere",
    "go elsewhere",
    "take my business",
    "not coming back",
    "not going to be coming back",
    "won't be coming back",
    "never coming back",
    "not renewing",
    "not my fault",
    "wasn't my fault",
    "expected better",
    "would hope so",
    "i'd hope so",
    "i'll believe it when",
    "whatever you say",
    "not thrilled",
    "not pleased",
    "not amused",
    "better this time",
    "right this time",
    "work this time",
    "okay, whatever",
    "ok, whatever",
    "fine, whatever",
    "no offense",
    "are we done",
    "hmph",
    "explain to me how",
    "how is that fair",
    "how is that okay",
    "none of it",
    "i told him that",
    "i told her that",
    "i told them that",
    "i told you that",
    "i already told",
    "not another",
    "take it or leave it",
    "nobody explained",
    "no one explained",
    "disappointed",
    "disappointing",
    "frustrated",
    "frustrating",
    "fed up",
    "sick of",
    "tired of",
    "waste of time",
    "wasted my",
    "are you serious",
    "give me a break",
    "i give up",
    "forget it",
    "don't bother",
    "cancel my account",
    "cancel my subscription",
    "cancel my membership",
    "close my account",
    "price gouging",
    "gouging",
    "scam",
    "shady",
    "doesn't happen again",
    "don't let it happen again",
];

/// A bare "Fine." (or "Yeah. Whatever.") after a grievance, or "…we'll see." at a sentence's
/// end: giving in, not content.
fn grudging(lower: &str) -> bool {
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    if words.ends_with(&["we'll", "see"]) {
        return true;
    }
    (words.contains(&"fine") || words.contains(&"whatever"))
        && words.len() <= 3
        && words
            .iter()
            .all(|w| ["fine", "yeah", "ok", "okay", "alright", "then", "whatever"].contains(w))
}

/// "Thanks, but you might want to fix that": the thanks is manners, the "but" the point.
fn criticism_after_thanks(lower: &str) -> bool {
    lower.split_once(" but ").is_some_and(|(before, after)| {
        has_any(before, &["thanks", "thank", "appreciate"]) && has_any(after, DEMAND)
    })
}

/// Acceptance of an offer in the conditional ("oh, that would be amazing"): manners, not
/// delight.
const CONDITIONAL: &[&str] = &[
    "that would be",
    "that'd be",
    "it would be",
    "it'd be",
    "would be great",
    "would be amazing",
    "would be awesome",
    "would be perfect",
    "would be wonderful",
];

/// Thanks that is a demand ("I'd appreciate it if I got that in writing").
const DEMAND: &[&str] = &[
    "appreciate it if",
    "appreciate if",
    "you might want to",
    "you may want to",
    "you should really",
    "you really should",
    "you need to fix",
    "you need to update",
    "you guys need to",
    "you guys should",
    "next time you",
    "next time, please",
    "in the future, please",
    "make sure it doesn't",
];

/// Delight and warm thanks: what a pleased caller says, beyond manners.
const DELIGHT: &[&str] = &[
    "really good",
    "really well",
    "going great",
    "works great",
    "so good",
    "very good",
    "very happy",
    "really happy",
    "been great",
    "no way",
    "oh wow",
    "wow",
    "amazing",
    "awesome",
    "fantastic",
    "wonderful news",
    "great news",
    "good news",
    "made my day",
    "made my week",
    "made my month",
    "made my whole",
    "lifesaver",
    "life saver",
    "feel better",
    "feel a lot better",
    "feel so much better",
    "less overwhelmed",
    "relieved",
    "what a relief",
    "so excited",
    "really excited",
    "excited",
    "can't wait",
    "love it",
    "i love",
    "we love",
    "yay",
    "thank god",
    "thank goodness",
    "finally",
    "thank you so much",
    "thanks so much",
    "thank you very much",
    "really appreciate",
    "i appreciate",
    "appreciate it",
    "appreciate you",
    "so helpful",
    "really helpful",
    "very helpful",
    "super helpful",
    "you've been great",
    "you guys are great",
    "you're the best",
    "exactly what",
    "so glad",
    "glad to hear",
    "happy",
    "was hoping",
    "for sure",
    "sounds great",
    "sounds perfect",
    "that's great",
    "that's perfect",
    "that's wonderful",
    "brilliant",
    "beautiful",
    "impressed",
    "nice surprise",
    "best",
    "i actually like",
    "really like",
    "perfect!",
    "great!",
    // Praise of how the call went, said at its close.
    "that was easy",
    "that was painless",
    "that was quick",
    "that was fast",
    "was easy",
    "so easy",
    "way easier",
    "easier than i thought",
    "easier than i expected",
    "painless",
    "very kind",
    "so kind",
    "you're kind",
    "very nice",
    "this is nice",
    "how nice",
    "exciting",
    "good about",
    "you guys are good",
    "sweet",
    "a relief",
    "loved it",
    "loved",
    "good call",
    "seriously, thank you",
    "my god, thank you",
    "thank you, thank you",
    "thanks for calling",
    "thanks for the reminder",
    "thanks for the nudge",
    "thanks for checking",
    "thanks for following up",
    "thanks a lot",
    "made it easy",
    "made that easy",
    "that worked",
    "it worked",
    "that did it",
    "that did the trick",
    "works now",
    "working now",
    "super easy",
    "really easy",
    "so quick",
    "quick and easy",
    "you're a star",
    "you rock",
    "you're awesome",
    "thanks a million",
    "much appreciated",
    "can't thank you enough",
    "so nice of you",
    "that's so nice",
    "how lovely",
    "load off my mind",
    "weight off my",
    "couldn't be happier",
    "over the moon",
    "thrilled",
    "stoked",
];

/// Thanks said warmly: delight beside something said, manners when it is all there is.
const WARM_THANKS: &[&str] = &[
    "thank you so much",
    "thanks so much",
    "thank you very much",
    "thanks a lot",
    "thanks a million",
    "much appreciated",
    "appreciate it",
    "i appreciate",
    "appreciate you",
    "really appreciate",
];

/// Positive from this balance of the caller's delight over their grievances up, negative
/// from the other down; neutral between.
const POSITIVE_FROM: f64 = 1.5;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Sarcasm,
    Grievance,
    Delight,
}

fn mood_of(lines: &[Line<'_>], voicemail: bool, interview: bool) -> Mood {
    let caller: Vec<&Line<'_>> = lines
        .iter()
        .filter(|l| l.speaker == Speaker::User)
        .collect();
    if caller.is_empty() || voicemail && caller.len() <= 2 {
        return Mood {
            label: SentimentLabel::Neutral,
            score: 0.0,
            reasons: Vec::new(),
            grievances: 0,
            pleased: 0,
            fed_up: false,
            warm_thanks: None,
        };
    }
    // A candidate's stories ("one customer was very angry") are no grievance of theirs: on
    // a screening interview only annoyance at the interview itself counts.
    let against = |lower: &str| {
        if interview {
            find_affirmed(lower, ANNOYED).is_some()
        } else {
            mood_grievance(lower)
        }
    };
    let step = caller.len().div_ceil(SENTIMENT_TURN_LIMIT).max(1);
    let last = caller.len() - 1;
    let call_grievance = caller
        .iter()
        .step_by(step)
        .flat_map(|l| &l.sentences)
        .any(|s| against(&s.lower));
    let mut grievance_so_far = false;
    // The agent owning a fault ("I apologize, that shouldn't have happened"): the call is about
    // something that went wrong, whatever words the caller used for it.
    let agent_owned_fault = lines
        .iter()
        .filter(|l| l.speaker == Speaker::Agent)
        .flat_map(|l| &l.sentences)
        .any(|s| has_any(&s.lower, lexicon::AGENT_APOLOGY));
    // (sentence, kind, points)
    let mut read: Vec<(&str, Kind, f64)> = Vec::new();
    let mut ends_delighted = false;
    // Warm thanks that is all the sentence says: manners, unless the caller decided something.
    let mut warm_thanks: Option<&str> = None;
    for (index, line) in caller.iter().enumerate() {
        if !index.is_multiple_of(step) && index != last {
            continue;
        }
        // How the caller ends weighs more than how they began (often small talk).
        let position: f64 = if index == last {
            1.5
        } else if index + 1 == last {
            1.2
        } else if index == 0 && caller.len() > 2 {
            0.7
        } else {
            1.0
        };
        let turn_grievance = line.sentences.iter().any(|s| against(&s.lower));
        let sarcasm = sarcasm_with(line, grievance_so_far, call_grievance);
        for (sentence, sarcastic) in line.sentences.iter().zip(sarcasm) {
            let lower = sentence.lower.as_str();
            // Opening with a grievance is the reason for the call: it weighs in full.
            let weight = position.max(1.0);
            let sore = grievance_so_far || turn_grievance || agent_owned_fault;
            if sarcastic {
                read.push((sentence.text, Kind::Sarcasm, 1.5 * weight));
            } else if against(lower) {
                read.push((sentence.text, Kind::Grievance, weight));
            } else if sore && (grudging(lower) || has_any(lower, DEMAND))
                || criticism_after_thanks(lower)
            {
                // "Fine." / "I'd appreciate it if…" / "thanks, but you might want to fix that"
                // after a grievance: polite anger.
                read.push((sentence.text, Kind::Grievance, weight));
            } else if !pleasantry(lower) || has_any(lower, DELIGHT) {
                let score = vader(lower);
                // "Tuesday's not so good for me" is no delight: negation cancels it.
                // "Great, thanks so much, bye": warm thanks alone is still manners.
                let warmth = found_in(lower, DELIGHT)
                    .into_iter()
                    .any(|d| !(pleasantry(lower) && WARM_THANKS.contains(&d)));
                let delighted = (warmth && find_affirmed(lower, DELIGHT).is_some() && score > -0.5
                    || score >= 0.6 && !has_any(lower, NOT))
                    && !has_any(lower, CONDITIONAL)
                    && !has_any(lower, DEMAND);
                if !delighted
                    && !turn_grievance
                    && pleasantry(lower)
                    && has_any(lower, WARM_THANKS)
                    && warm_thanks.is_none()
                {
                    warm_thanks = Some(sentence.text);
                }
                // Thanks wrapped around a grievance is manners, not delight.
                if delighted && !turn_grievance {
                    read.push((sentence.text, Kind::Delight, position));
                    ends_delighted |= index == last;
                } else if score <= -0.5 && has_any(lower, ADDRESSED) && !elsewhere(lower) {
                    // Bad luck told ("my tooth is killing me") is no grievance against the
                    // business; only what is said to or about it.
                    read.push((sentence.text, Kind::Grievance, 0.4 * position));
                }
            }
        }
        grievance_so_far |= turn_grievance;
    }
    let sum = |kinds: &[Kind]| -> f64 {
        read.iter()
            .filter(|r| kinds.contains(&r.1))
            .map(|r| r.2)
            .sum()
    };
    let delight = sum(&[Kind::Delight]);
    let mut trouble = sum(&[Kind::Grievance, Kind::Sarcasm]);
    // A problem put right, and the caller delighted at the end: the trouble weighs half.
    if ends_delighted && !read.iter().any(|r| r.1 == Kind::Sarcasm) {
        trouble *= 0.5;
    }
    let label = if trouble >= 1.0 && trouble >= delight {
        SentimentLabel::Negative
    } else if delight >= POSITIVE_FROM && delight > trouble * 1.5 {
        SentimentLabel::Positive
    } else {
        SentimentLabel::Neutral
    };
    let score = (delight - trouble) / (delight + trouble + 1.0);
    let grievances = read.iter().filter(|r| r.1 != Kind::Delight).count();
    let pleased = read.len() - grievances;
    let mut weighty: Vec<&(&str, Kind, f64)> = read.iter().collect();
    weighty.sort_by(|a, b| b.2.total_cmp(&a.2));
    let reasons = weighty
        .iter()
        .take(3)
        .map(|(text, kind, _)| {
            let kind = match kind {
                Kind::Sarcasm => "sarcasm",
                Kind::Grievance => "grievance",
                Kind::Delight => "pleased",
            };
            format!("{kind} \"{}\"", clip(text, 120))
        })
        .collect();
    Mood {
        label,
        score: score.clamp(-1.0, 1.0),
        reasons,
        grievances,
        pleased,
        fed_up: caller
            .iter()
            .flat_map(|l| &l.sentences)
            .any(|s| has_any(&s.lower, FED_UP)),
        warm_thanks: warm_thanks.map(str::to_owned),
    }
}

/// Fed up with the calls themselves.
const FED_UP: &[&str] = &[
    "stop calling",
    "quit calling",
    "keep calling",
    "don't call",
    "do not call",
    "never call",
    "these calls",
    "how did you get",
    "leave me alone",
    "second time",
    "third time",
    "fourth time",
    "calls this week",
    "calls a day",
    "every day",
    "every week",
];

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

    fn names(turns: &[Turn]) -> Vec<String> {
        let mut names: Vec<String> = read(turns).intents.into_iter().map(|i| i.name).collect();
        names.sort();
        names
    }

    #[test]
    fn accepting_an_offered_slot_is_a_booking() {
        let turns = [
            agent("I can get you in for a test drive. Would Thursday at two suit you?"),
            user("Thursday works. Two o'clock, yeah."),
        ];
        let reading = read(&turns);
        assert_eq!(reading.intents[0].name, "booking");
        assert!(
            reading.intents[0].evidence[0].contains("answering"),
            "{:?}",
            reading.intents[0].evidence
        );
    }

    #[test]
    fn yes_to_an_order_is_a_purchase() {
        let turns = [
            agent("It's in stock in your size. Shall I put one aside and order the rack too?"),
            user("Yes, go ahead."),
        ];
        assert_eq!(names(&turns), vec!["purchase"]);
    }

    #[test]
    fn not_right_now_to_a_side_question_is_no_refusal() {
        let turns = [
            agent("Great, you're booked for Saturday at ten. Would you also like a helmet?"),
            user("Not right now, thanks."),
            agent("No problem."),
            user("I don't want someone else to grab the slot, so Saturday it is."),
        ];
        let found = names(&turns);
        assert!(!found.contains(&"not_interested".to_owned()), "{found:?}");
        let turns = [
            agent("We have a spring offer on e-bikes. Would you like to book a test ride?"),
            user("No thanks, not right now."),
        ];
        assert_eq!(names(&turns), vec!["not_interested"]);
    }

    #[test]
    fn paraphrased_complaints_wrong_numbers_and_indirect_buying() {
        assert_eq!(
            names(&[user("Honestly I just want my money back.")]),
            vec!["complaint"]
        );
        for said in [
            "Oh, sorry, I thought this was Tony's garage.",
            "Must've been a typo on my end.",
            "I just got this number last month.",
        ] {
            assert_eq!(names(&[user(said)]), vec!["wrong_number"], "{said}");
        }
        let turns = [
            agent("Am I speaking with Mr. Alvarez?"),
            user("No, there's no Alvarez here."),
        ];
        assert_eq!(names(&turns), vec!["wrong_number"]);
        assert_eq!(
            names(&[user("Yeah, I'm pretty much sold on the hybrid.")]),
            vec!["purchase"]
        );
    }

    #[test]
    fn non_native_phrasing_still_reads() {
        let turns = [
            agent("The green one is a hundred dollars with a lock."),
            user("Ninety dollar, okay? I come tomorrow and buy it."),
        ];
        assert_eq!(names(&turns), vec!["pricing", "purchase"]);
    }

    #[test]
    fn the_caller_calling_back_is_not_a_call_back_request() {
        assert!(names(&[user("I'll call you back when I'm ready.")]).is_empty());
        assert_eq!(
            names(&[user("Could you call me back after five?")]),
            vec!["call_back"]
        );
        let turns = [
            agent("Would it be easier if I called you back tomorrow morning?"),
            user("Yes please, after nine."),
        ];
        assert_eq!(names(&turns), vec!["call_back"]);
    }

    #[test]
    fn hedged_interest_is_no_booking() {
        let found = names(&[user(
            "I might swing by this weekend and have a look, no promises.",
        )]);
        assert!(!found.contains(&"booking".to_owned()), "{found:?}");
    }

    #[test]
    fn screening_interviews_are_recognised() {
        let turns = [
            agent(
                "Thanks for applying for the warehouse lead position. This is a short screening call.",
            ),
            user("Sure, happy to."),
            agent("Tell me about yourself and your experience with forklifts."),
            user("In my last job I was responsible for a team of six on the night shift."),
        ];
        assert_eq!(names(&turns), vec!["interview"]);
        let sales = [
            agent("Thanks for calling Riverside Bikes. What's your experience with e-bikes?"),
            user("None yet, I'd like a test ride."),
        ];
        assert!(!names(&sales).contains(&"interview".to_owned()));
    }

    #[test]
    fn sarcasm_and_polite_anger_read_negative() {
        let sarcasm = read(&[
            agent("Your car won't be ready until Friday, I'm afraid."),
            user("Great. The third delay this month. The highlight of my week."),
            agent("I'm sorry. We can give you a loaner."),
            user("Fine, thanks, I'll take the loaner."),
        ]);
        assert_eq!(sarcasm.mood.label, SentimentLabel::Negative);
        assert!(
            sarcasm
                .mood
                .reasons
                .iter()
                .any(|r| r.starts_with("sarcasm")),
            "{:?}",
            sarcasm.mood.reasons
        );
        let polite = read(&[
            agent("How can I help?"),
            user(
                "I was told the repair would be done Tuesday and nobody called me. I'm not happy about it.",
            ),
            agent("I apologize, I'll check right now."),
            user("Okay, thank you."),
        ]);
        assert_eq!(polite.mood.label, SentimentLabel::Negative);
    }

    fn mood(turns: &[Turn]) -> Mood {
        read(turns).mood
    }

    fn says(mood: &Mood, kind: &str, text: &str) -> bool {
        mood.reasons
            .iter()
            .any(|r| r.starts_with(kind) && r.contains(text))
    }

    #[test]
    fn praise_of_how_the_call_went_is_satisfaction() {
        let easy = mood(&[
            agent("Your new card is active now, and the renewal is on the same account."),
            user("Oh, okay. Do I need to do anything else?"),
            agent("Nothing else, you're all set."),
            user("Thanks, that was painless."),
        ]);
        assert_eq!(easy.label, SentimentLabel::Positive, "{}", easy.score);
        assert!(
            says(&easy, "pleased", "that was painless"),
            "{:?}",
            easy.reasons
        );
        let kind = mood(&[
            agent("A technician can be there today between two and four."),
            user("Today? Oh, that's a relief. Two to four, I'll be home."),
            agent("You're booked."),
            user("You're very kind. Thank you."),
        ]);
        assert_eq!(kind.label, SentimentLabel::Positive, "{}", kind.score);
    }

    #[test]
    fn trouble_with_someone_else_is_no_grievance_against_this_business() {
        // Praise beside a competitor's price is not sarcasm.
        let cheaper = mood(&[
            agent("An eye exam is seventy-five dollars without insurance."),
            user("Oh, that's great, the last place charged a hundred and forty."),
            agent("Would Friday at nine work?"),
            user("Friday at nine. Thanks, that was easy!"),
        ]);
        assert_eq!(
            cheaper.label,
            SentimentLabel::Positive,
            "{:?}",
            cheaper.reasons
        );
        assert!(
            !says(&cheaper, "sarcasm", "last place"),
            "{:?}",
            cheaper.reasons
        );
        // The old provider's failings, and the caller's own bad luck.
        let switched = mood(&[
            agent("Welcome aboard. Any questions about the policy?"),
            user("No, it's all clear. My old company never answered the phone, honestly."),
            agent("We're glad to have you."),
            user("My back is killing me today anyway. Thanks for calling, really."),
        ]);
        assert_ne!(
            switched.label,
            SentimentLabel::Negative,
            "{:?}",
            switched.reasons
        );
        // Relief beside a worry is no sarcasm either.
        let relieved = mood(&[
            agent("All your old invoices will be restored when you renew."),
            user("Oh, perfect, I was worried we'd have to type them in again."),
        ]);
        assert!(
            !says(&relieved, "sarcasm", "worried"),
            "{:?}",
            relieved.reasons
        );
        // The caller's own last appointment with this business is no one else's.
        let own = mood(&[
            agent("How can I help?"),
            user("My last appointment was cancelled twice and nobody told me."),
        ]);
        assert_eq!(own.label, SentimentLabel::Negative, "{:?}", own.reasons);
    }

    #[test]
    fn a_negated_complaint_is_none() {
        let fine = mood(&[
            agent("Does the tooth hurt?"),
            user("A bit sore, but not terrible, honestly."),
            agent("We can see you tomorrow at nine."),
            user("Nine's good. See you then."),
        ]);
        assert_eq!(fine.label, SentimentLabel::Neutral, "{:?}", fine.reasons);
    }

    #[test]
    fn outrage_at_a_price_and_taking_business_elsewhere_are_negative() {
        let outraged = mood(&[
            agent("The estimate for the brakes is nine hundred and forty dollars."),
            user("Nine forty? That's a rip-off. My cousin paid half that."),
            agent("We do offer financing."),
            user("No. I'm going somewhere else."),
        ]);
        assert_eq!(
            outraged.label,
            SentimentLabel::Negative,
            "{:?}",
            outraged.reasons
        );
        let renewal = mood(&[
            agent("Your premium goes to one ninety a month at renewal."),
            user("That wasn't my fault, the other driver ran the light."),
            agent("I'll ask for a review of the claim."),
            user("Do that. But I'm not renewing at this price."),
        ]);
        assert_eq!(
            renewal.label,
            SentimentLabel::Negative,
            "{:?}",
            renewal.reasons
        );
    }

    #[test]
    fn a_grudging_ending_after_a_grievance_is_negative() {
        let grudging = mood(&[
            agent("I apologize, that shouldn't have happened. An engineer can call you Monday."),
            user("The import lost half my staff list. I spent the whole trial retyping it."),
            agent("I'll have them call you Monday morning."),
            user("Fine. We'll see."),
        ]);
        assert_eq!(
            grudging.label,
            SentimentLabel::Negative,
            "{:?}",
            grudging.reasons
        );
        let believe = mood(&[
            agent("The manager will call you back this afternoon."),
            user("This afternoon. Sure. I'll believe it when my phone rings."),
        ]);
        assert_eq!(
            believe.label,
            SentimentLabel::Negative,
            "{:?}",
            believe.reasons
        );
        // The same words in an untroubled call are no grudge.
        let easygoing = mood(&[
            agent("Would Tuesday or Wednesday suit you?"),
            user("Whatever works for you. Tuesday's fine."),
            agent("Tuesday at ten, then."),
            user("Great, we'll see you Tuesday. Thanks so much for sorting it!"),
        ]);
        assert_ne!(
            easygoing.label,
            SentimentLabel::Negative,
            "{:?}",
            easygoing.reasons
        );
    }

    #[test]
    fn thanks_that_is_a_demand_or_a_but_is_polite_anger() {
        let but = mood(&[
            agent("You're right, I'll take the late fee off."),
            user("Okay. Thanks, but you should really fix how you log cancellations."),
        ]);
        assert_eq!(but.label, SentimentLabel::Negative, "{:?}", but.reasons);
        let demand = mood(&[
            user("I was billed twice for the same visit and nobody called me back."),
            agent("I'm sorry, I've removed the second charge."),
            user("Alright. I'd appreciate it if I got that in writing."),
        ]);
        assert_eq!(
            demand.label,
            SentimentLabel::Negative,
            "{:?}",
            demand.reasons
        );
    }

    #[test]
    fn an_angry_refusal_is_negative_a_polite_opt_out_is_not() {
        let angry = mood(&[
            agent("Hi, I'm calling about our window cleaning special."),
            user("How did you get this number? I don't want it. Don't call here again."),
        ]);
        assert_eq!(angry.label, SentimentLabel::Negative, "{:?}", angry.reasons);
        let polite = mood(&[
            agent("Are you still looking for a truck?"),
            user("No, I bought one last week. You can take me off the list, thanks."),
            agent("Will do. Enjoy the truck."),
            user("Thanks, bye."),
        ]);
        assert_eq!(
            polite.label,
            SentimentLabel::Neutral,
            "{:?}",
            polite.reasons
        );
    }

    #[test]
    fn a_conditional_yes_to_an_offer_is_manners_not_delight() {
        let offered = mood(&[
            agent("I can email you the receipt with the serial number."),
            user("Oh, that would be amazing. Please."),
            agent("Sent."),
            user("Okay, got it."),
        ]);
        assert_eq!(
            offered.label,
            SentimentLabel::Neutral,
            "{:?}",
            offered.reasons
        );
        // Spoken "like" is a filler, not fondness.
        let filler = mood(&[
            agent("Which kind of whitening?"),
            user("Like the in-office kind, not the strips. How much is it?"),
        ]);
        assert_eq!(
            filler.label,
            SentimentLabel::Neutral,
            "{:?}",
            filler.reasons
        );
    }

    #[test]
    fn sarcasm_before_the_grievance_it_mocks_counts() {
        let robot = mood(&[
            agent("Service desk, I'm the automated assistant."),
            user("Oh great, a robot. Just what I needed today."),
            agent("What's going on?"),
            user("You scratched my door during the oil change and nobody told me."),
        ]);
        assert!(says(&robot, "sarcasm", "robot"), "{:?}", robot.reasons);
        assert_eq!(robot.label, SentimentLabel::Negative);
    }

    #[test]
    fn naming_an_offered_hour_or_an_interjected_yes_books_it() {
        let hour = [
            agent("I have Saturday at ten or Saturday at one thirty for a fitting."),
            user("Ten. Ten's perfect."),
        ];
        assert_eq!(names(&hour), vec!["booking"]);
        let oh_yes = [
            agent("Dr. Park has a cancellation tomorrow at nine forty-five."),
            user("Oh, yes! I'll take it."),
        ];
        assert_eq!(names(&oh_yes), vec!["booking"]);
        // An hour the agent did not offer is no pick.
        let other = [
            agent("I have Saturday at ten or Saturday at one thirty for a fitting."),
            user("Four?"),
        ];
        assert!(names(&other).is_empty(), "{:?}", names(&other));
    }

    #[test]
    fn negated_praise_is_no_delight() {
        let turned_down = mood(&[
            agent("Would Tuesday at ten suit you?"),
            user("Tuesday is not so good for me. Thursday?"),
            agent("Thursday at eight, then."),
            user("Okay. Bye."),
        ]);
        assert!(turned_down.reasons.is_empty(), "{:?}", turned_down.reasons);
        assert_eq!(turned_down.label, SentimentLabel::Neutral);
    }

    #[test]
    fn warm_thanks_alone_is_manners_beside_a_decision_warmth() {
        let informational = mood(&[
            agent("The estimate for the full roof is eleven thousand four hundred."),
            user("Okay. I'll have to talk it over with my wife. Can you email it?"),
            agent("Sure, sending it now."),
            user("Great, thanks so much, bye."),
        ]);
        assert_eq!(
            informational.label,
            SentimentLabel::Neutral,
            "{:?}",
            informational.reasons
        );
        let ordered = mood(&[
            agent("A full tray is ninety dollars. Shall I put one in for Saturday?"),
            user("Yes, let's do a full tray for Saturday."),
            agent("Done, pick up at four."),
            user("Lovely, thanks so much."),
        ]);
        assert_eq!(
            ordered.label,
            SentimentLabel::Positive,
            "{:?}",
            ordered.reasons
        );
        assert!(
            says(&ordered, "thanked", "thanks so much"),
            "{:?}",
            ordered.reasons
        );
    }

    #[test]
    fn a_complaint_put_right_and_thanked_for_is_still_a_complaint() {
        let settled = mood(&[
            agent("Thanks for calling, how can I help?"),
            user(
                "I was charged twice for my last order and I've called three times about it. Nobody called me back.",
            ),
            agent("I apologize. I've refunded the duplicate charge now."),
            user("Okay. Thank you so much."),
        ]);
        assert_eq!(
            settled.label,
            SentimentLabel::Negative,
            "{:?}",
            settled.reasons
        );
        // Put right and delighted about it is another matter.
        let delighted = mood(&[
            user("My order arrived with a cracked screen."),
            agent("I'm sorry. I'll ship a replacement today, no charge."),
            user("Oh wow, that's fantastic, thank you so much! That was so easy."),
        ]);
        assert_eq!(
            delighted.label,
            SentimentLabel::Positive,
            "{:?}",
            delighted.reasons
        );
    }

    #[test]
    fn mock_praise_of_a_long_wait_is_sarcasm() {
        let brakes = mood(&[
            agent("Riverside Auto, how can I help?"),
            user(
                "Wow, you guys are really outdoing yourselves. Three weeks for a brake job. Amazing work.",
            ),
            agent("I understand. The part is on order."),
            user("Sure it is. Thanks so much."),
        ]);
        assert_eq!(
            brakes.label,
            SentimentLabel::Negative,
            "{:?}",
            brakes.reasons
        );
        assert!(says(&brakes, "sarcasm", "outdoing"), "{:?}", brakes.reasons);
    }

    #[test]
    fn a_candidates_stories_are_not_their_mood() {
        let turns = [
            agent("Thanks for joining. Tell me about a difficult customer you handled."),
            user(
                "One man was very angry, his internet was down three days and he wanted to cancel. I listened, said sorry, and got him a credit.",
            ),
            agent("How do you handle a stressful shift?"),
            user(
                "For example, last year we were short two people. I stayed calm and split the queue.",
            ),
            agent("Thank you, the team will email you about next steps."),
            user("Okay, thank you very much. I will wait for the email."),
        ];
        let reading = read(&turns);
        assert!(reading.intents.iter().any(|i| i.name == "interview"));
        assert_ne!(
            reading.mood.label,
            SentimentLabel::Negative,
            "{:?}",
            reading.mood.reasons
        );
        let rude = read(&[
            agent("Thanks for joining. Tell me about your forklift experience."),
            user("It's on my resume. Sales is sales."),
            agent("How do you handle a difficult customer?"),
            user("I don't know. Okay, whatever. Are we done?"),
        ]);
        assert_eq!(
            rude.mood.label,
            SentimentLabel::Negative,
            "{:?}",
            rude.mood.reasons
        );
    }

    #[test]
    fn understated_displeasure_and_a_doubtful_hope_are_negative() {
        let orange = mood(&[
            agent("Bella Salon, how can I help?"),
            user(
                "I had a color done Saturday and it's way more orange than we talked about. I'm not thrilled.",
            ),
            agent("I'm so sorry. Jess can fix it free of charge on Tuesday at ten."),
            user("Tuesday at ten. Okay. I hope it goes better this time."),
        ]);
        assert_eq!(
            orange.label,
            SentimentLabel::Negative,
            "{:?}",
            orange.reasons
        );
        assert!(
            !says(&orange, "pleased", "better this time"),
            "{:?}",
            orange.reasons
        );
    }

    #[test]
    fn taking_a_look_buys_nothing() {
        let look = [
            agent("Would you like to see anything else in the area?"),
            user("Maybe. Send me some listings under five hundred and I'll take a look."),
        ];
        assert!(
            !names(&look).contains(&"purchase".to_owned()),
            "{:?}",
            names(&look)
        );
        let bought = [
            agent("The blue one is two hundred dollars."),
            user("I'll take it."),
        ];
        assert!(
            names(&bought).contains(&"purchase".to_owned()),
            "{:?}",
            names(&bought)
        );
    }

    #[test]
    fn more_wrong_numbers_and_a_greeting_that_is_no_wrong_number() {
        let inherited = [
            agent("Hi, is this Greg? I'm calling about your renewal."),
            user("Greg? No, Greg used to have this number I think. I've had it since March."),
        ];
        assert_eq!(names(&inherited), vec!["wrong_number"]);
        let wrong_office = [
            agent("Bright Smile Dental, how can I help?"),
            user("Hi, is this Dr. Patel's office? The pediatric one?"),
            agent("No, this is Bright Smile Dental. Dr. Patel is across the street, I think."),
            user("Oh shoot, okay. Thanks, sorry!"),
        ];
        assert_eq!(names(&wrong_office), vec!["wrong_number"]);
        let greeting = [
            agent("Hi, this is the assistant from Metro Honda."),
            user(
                "The person you are trying to reach is not available. Please leave a message after the tone.",
            ),
        ];
        assert_eq!(names(&greeting), vec!["voicemail"]);
    }

    #[test]
    fn politeness_is_not_satisfaction() {
        let mood = read(&[
            agent("We're open nine to six on weekdays."),
            user("Okay, and do you open on Sundays?"),
            agent("No, only Saturdays until two."),
            user("Alright. Great, thanks, bye!"),
        ])
        .mood;
        assert_eq!(mood.label, SentimentLabel::Neutral, "{}", mood.score);
        let keen = read(&[
            agent("It's 3,200 dollars."),
            user("I love it, that's exactly what I was hoping for. I'm really excited."),
        ])
        .mood;
        assert_eq!(keen.label, SentimentLabel::Positive, "{}", keen.score);
    }

    #[test]
    fn the_caller_names_themselves() {
        let turns = [
            agent("Can I get your name for the hold?"),
            user("Yusuf. Y-U-S-U-F."),
        ];
        assert_eq!(read(&turns).caller_name.as_deref(), Some("Yusuf"));
        let turns = [user(
            "Hi, my name is Marcus Bell, I'm calling about a leak.",
        )];
        assert_eq!(read(&turns).caller_name.as_deref(), Some("Marcus Bell"));
        let turns = [user("This is terrible.")];
        assert_eq!(read(&turns).caller_name, None);
        // An introduction after a greeting, with the sentence that shows it.
        let turns = [
            agent("Thanks for calling Bike Shop, how can I help?"),
            user("Hi, it's Marcus Bell. I'd like to book a tune-up."),
        ];
        let reading = read(&turns);
        assert_eq!(reading.caller_name.as_deref(), Some("Marcus Bell"));
        assert_eq!(reading.caller_name_evidence, "Hi, it's Marcus Bell.");
        let turns = [
            user("I need a tune-up."),
            agent("When works for you?"),
            user("Well, it's Tuesday that works best."),
        ];
        assert_eq!(read(&turns).caller_name, None);
    }

    #[test]
    fn more_of_the_same_kinds_said_differently() {
        // Non-native phrasing of a viewing request, and a price repeated back.
        let turns = [
            agent("Yes, it's available. Rent is eighteen fifty a month."),
            user(
                "Eighteen fifty. Okay. It is possible to see tomorrow? After my work, six o'clock?",
            ),
        ];
        assert_eq!(names(&turns), vec!["booking", "pricing"]);
        // The person asked for has moved on.
        let turns = [
            agent("Hi, may I speak with Jordan about the gym membership?"),
            user("Jordan moved out months ago, this isn't his number anymore."),
        ];
        assert_eq!(names(&turns), vec!["wrong_number"]);
        // Bare praise right after a problem is sarcasm, and a complaint.
        let reading = read(&[
            agent("Northside Internet, how can I help?"),
            user(
                "My internet has been going down every evening for a week. I work from home, so that's great.",
            ),
        ]);
        assert!(reading.intents.iter().any(|i| i.name == "complaint"));
        assert_eq!(reading.mood.label, SentimentLabel::Negative);
        // "Not really" to a question that offers nothing is no refusal.
        let turns = [
            agent("Your lease ends next month. Have you thought about what's next?"),
            user("Not really, to be honest. I'll call you guys when I've decided."),
        ];
        assert!(names(&turns).is_empty(), "{:?}", names(&turns));
        // "No" to "are you still interested?" is.
        let turns = [
            agent("You looked at the RAV4 last week. Are you still interested?"),
            user("No, we bought one already, from another dealer."),
        ];
        assert_eq!(names(&turns), vec!["not_interested"]);
    }

    #[test]
    fn thanks_around_a_grievance_and_a_postponement_are_read_for_what_they_are() {
        let reading = read(&[
            agent("Harbor Insurance, how can I help?"),
            user(
                "I was told three weeks ago my claim would be paid in ten days. I'm still waiting.",
            ),
            agent("I'm sorry for the delay. It goes out Friday."),
            user("I appreciate you checking. I'd just like it to actually happen this time."),
        ]);
        assert_eq!(reading.mood.label, SentimentLabel::Negative);
        let turns = [
            agent("Would you like to schedule the crown?"),
            user("Not yet. I want to check with my insurance first what they cover."),
        ];
        assert_eq!(names(&turns), vec!["pricing"]);
        let turns = [user(
            "Hey, it's Carlos, leave me a message and I'll call you back.",
        )];
        assert_eq!(read(&turns).caller_name.as_deref(), Some("Carlos"));
    }
}
