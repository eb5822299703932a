//! Small text helpers the rules share: sentences, normalised lowercase text, whole-word phrase
//! search, negation, times of day.

use std::cell::RefCell;
use std::hash::BuildHasher;

use hashbrown::{HashMap, HashTable};
use rustc_hash::{FxBuildHasher, FxHashMap};

/// The sentences of `text`, trimmed, without empty ones. Splits after `.`, `!`, `?` and at
/// line breaks; good enough for speech-to-text output, which has few abbreviations.
pub fn sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(['.', '!', '?', '\n', '。', '！', '？'])
        .map(str::trim)
        .filter(|s| s.chars().any(char::is_alphanumeric))
}

/// Byte offsets where `phrase` (lowercase) occurs in `haystack` (lowercase) as whole words.
pub fn find_phrase(haystack: &str, phrase: &str) -> Vec<usize> {
    occurrences(haystack, phrase).collect()
}

/// Whether `phrase` (lowercase) occurs in `haystack` (lowercase) as whole words.
pub fn occurs(haystack: &str, phrase: &str) -> bool {
    occurrences(haystack, phrase).next().is_some()
}

/// Where `phrase` occurs in `haystack` as whole words, left to right, none overlapping.
fn occurrences<'a>(haystack: &'a str, phrase: &'a str) -> impl Iterator<Item = usize> + 'a {
    let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
    let (bytes, needle) = (haystack.as_bytes(), phrase.as_bytes());
    // An empty phrase is no phrase.
    let mut from = if needle.is_empty() { bytes.len() } else { 0 };
    // The texts are sentences, too short for a searcher's set-up to pay: each place the first
    // byte occurs is tried. Every match starts and ends on a character boundary, as `phrase` is
    // whole UTF-8.
    std::iter::from_fn(move || {
        while let Some(at) = needle
            .first()
            .and_then(|&first| memchr::memchr(first, &bytes[from..]))
        {
            let start = from + at;
            if bytes[start..].starts_with(needle) {
                let end = start + needle.len();
                from = end;
                if boundary(haystack[..start].chars().next_back())
                    && boundary(haystack[end..].chars().next())
                {
                    return Some(start);
                }
            } else {
                from = start + 1;
            }
        }
        None
    })
}

const NEGATIONS: [&str; 14] = [
    "not",
    "don't",
    "dont",
    "no",
    "never",
    "won't",
    "can't",
    "cannot",
    "isn't",
    "wouldn't",
    "didn't",
    "doesn't",
    "shouldn't",
    "without",
];

/// Whether one of the three words before `at`, within its clause, negates what follows ("not
/// looking to buy"; not "no, I'd like to buy", where a comma ends the "no").
pub fn negated(haystack: &str, at: usize) -> bool {
    let clause = haystack[..at]
        .rsplit([',', ';', ':', '—', '-'])
        .next()
        .unwrap_or_default();
    clause
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .rev()
        .take(3)
        .take_while(|w| *w != "but")
        .any(|w| NEGATIONS.contains(&w))
}

/// Filler words speech-to-text leaves in ("I'll, uh, take it"), dropped before phrases are
/// matched so they do not split a phrase.
const FILLERS: [&str; 9] = ["um", "uh", "erm", "uhm", "umm", "uhh", "hmm", "mm", "ehh"];

/// `text` lowercased, with typographic apostrophes made plain, filler words dropped and
/// spoken contractions spelled out ("gonna" → "going to").
pub fn normalize(text: &str) -> String {
    let lower = text
        .to_lowercase()
        .replace(['\u{2019}', '\u{2018}', '`'], "'");
    let mut out = String::with_capacity(lower.len());
    for token in lower.split_whitespace() {
        let core = token.trim_matches(|c: char| !c.is_alphanumeric());
        if FILLERS.contains(&core) {
            // Keep a sentence end the filler carried; drop the comma before it.
            if token.ends_with(['.', '?', '!']) {
                if out.ends_with(',') {
                    out.pop();
                }
                out.push_str(&token[token.len() - 1..]);
            } else if out.ends_with(',') {
                out.pop();
            }
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        match core {
            "gonna" => out.push_str(&token.replace("gonna", "going to")),
            "wanna" => out.push_str(&token.replace("wanna", "want to")),
            "gotta" => out.push_str(&token.replace("gotta", "got to")),
            _ => out.push_str(token),
        }
    }
    out
}

/// A phrase list indexed by each phrase's first word, so a text is checked against the few
/// phrases that can start at one of its words instead of against every phrase. Keyed by
/// [`word_hash`], which a kept text has computed once for each of its words.
struct PhraseIndex {
    by_first_word: HashTable<(&'static str, Vec<u16>)>,
    /// Phrases that do not start with a word character ("$", "'d like"): always tried.
    others: Vec<u16>,
}

fn word_hash(word: &str) -> u64 {
    FxBuildHasher.hash_one(word)
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '\''
}

/// The first word of `text` (letters, digits and apostrophes).
fn first_word(text: &str) -> &str {
    let end = text.find(|c: char| !word_char(c)).unwrap_or(text.len());
    &text[..end]
}

impl PhraseIndex {
    fn new(phrases: &'static [&'static str]) -> Self {
        let mut index = PhraseIndex {
            by_first_word: HashTable::new(),
            others: Vec::new(),
        };
        for (i, phrase) in phrases.iter().enumerate() {
            let i = u16::try_from(i).unwrap_or(u16::MAX);
            match first_word(phrase) {
                "" => index.others.push(i),
                word => {
                    let (_, ids) = index
                        .by_first_word
                        .entry(word_hash(word), |(w, _)| *w == word, |(w, _)| word_hash(w))
                        .or_insert_with(|| (word, Vec::new()))
                        .into_mut();
                    ids.push(i);
                }
            }
        }
        index
    }

    /// The phrases starting with `word`, whose hash is `hash`.
    fn starting(&self, word: &str, hash: u64) -> &[u16] {
        self.by_first_word
            .find(hash, |(w, _)| *w == word)
            .map_or(&[], |(_, ids)| ids)
    }
}

/// The words a phrase may start at in a text: each word, and each part of one before an
/// apostrophe ("tuesday's" also starts "tuesday …", as whole-word search has it), as byte
/// ranges with their hashes.
type Starts = Vec<(usize, usize, u64)>;

fn starts(text: &str) -> Starts {
    let mut words = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find(word_char).map(|at| from + at) {
        let word = first_word(&text[start..]);
        words.push((start, start + word.len(), word_hash(word)));
        for (at, _) in word.match_indices('\'') {
            words.push((start, start + at, word_hash(&word[..at])));
        }
        from = start + word.len().max(1);
        while from < text.len() && !text.is_char_boundary(from) {
            from += 1;
        }
    }
    words
}

/// How many texts' words are kept, by text. The rules ask about each sentence and turn of a
/// call many times, for many phrase lists, and not in one pass: keeping the last eight split
/// each text about three times (some 51,000 splits for 17,960 distinct texts over the labelled
/// calls; 33,000 with these). Past this many, all are forgotten and kept again as asked, which
/// bounds each thread's memory; four times as many saved a further 0.2% of the instructions.
const TEXTS_KEPT: usize = 256;

/// What phrase search keeps on each thread: one index per phrase list (a `'static` slice, known
/// by its address), built on first use, and the words of the texts searched lately.
#[derive(Default)]
struct Search {
    indexes: FxHashMap<(usize, usize), PhraseIndex>,
    texts: HashMap<Box<str>, Starts, FxBuildHasher>,
}

impl Search {
    /// The words of `text`, kept now if they were not.
    fn keep<'a>(texts: &'a mut HashMap<Box<str>, Starts, FxBuildHasher>, text: &str) -> &'a Starts {
        if texts.len() >= TEXTS_KEPT && !texts.contains_key(text) {
            texts.clear();
        }
        texts.entry_ref(text).or_insert_with(|| starts(text))
    }

    /// Calls `try_phrase` with each phrase of `phrases` that may occur in `lower`: those
    /// whose first word is one of its words, and those that start with no word at all, until
    /// `try_phrase` says yes; whether it did. In no particular order, and a phrase whose first
    /// word `lower` repeats is tried again.
    fn any_candidate(
        &mut self,
        lower: &str,
        phrases: &'static [&'static str],
        mut try_phrase: impl FnMut(u16) -> bool,
    ) -> bool {
        let Search { indexes, texts } = self;
        let index = indexes
            .entry((phrases.as_ptr() as usize, phrases.len()))
            .or_insert_with(|| PhraseIndex::new(phrases));
        if index.others.iter().any(|&i| try_phrase(i)) {
            return true;
        }
        Self::keep(texts, lower).iter().any(|&(start, end, hash)| {
            index
                .starting(&lower[start..end], hash)
                .iter()
                .any(|&i| try_phrase(i))
        })
    }
}

thread_local! {
    static SEARCH: RefCell<Search> = RefCell::new(Search::default());
}

/// Whether `try_phrase` says yes to a phrase of `phrases` that may occur in `lower` (see
/// [`Search::any_candidate`]).
fn any_candidate(
    lower: &str,
    phrases: &'static [&'static str],
    mut try_phrase: impl FnMut(u16) -> bool,
) -> bool {
    SEARCH.with(|search| {
        search
            .borrow_mut()
            .any_candidate(lower, phrases, &mut try_phrase)
    })
}

/// The phrase of `phrases` numbered `i` by its index.
fn phrase(phrases: &'static [&'static str], i: u16) -> &'static str {
    phrases.get(usize::from(i)).copied().unwrap_or_default()
}

/// The phrases of `phrases` that may occur in `lower`, each once, in list order.
fn candidates(lower: &str, phrases: &'static [&'static str]) -> Vec<&'static str> {
    let mut found = Vec::new();
    any_candidate(lower, phrases, |i| {
        found.push(i);
        false
    });
    found.sort_unstable();
    found.dedup();
    found.into_iter().map(|i| phrase(phrases, i)).collect()
}

/// Whether any of `phrases` occurs in `lower` as whole words.
pub fn has_any(lower: &str, phrases: &'static [&'static str]) -> bool {
    any_candidate(lower, phrases, |i| occurs(lower, phrase(phrases, i)))
}

/// The phrases of `phrases` that occur in `lower` as whole words, in list order.
pub fn found_in(lower: &str, phrases: &'static [&'static str]) -> Vec<&'static str> {
    let mut found = candidates(lower, phrases);
    found.retain(|phrase| occurs(lower, phrase));
    found
}

/// The first of `phrases` found in `lower` where no negation in front cancels it.
pub fn find_affirmed(lower: &str, phrases: &'static [&'static str]) -> Option<&'static str> {
    candidates(lower, phrases)
        .into_iter()
        .find(|p| occurrences(lower, p).any(|at| !negated(lower, at)))
}

const DAYS: [&str; 24] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "tomorrow",
    "today",
    "tonight",
    "weekend",
    "next week",
    "this week",
    "morning",
    "afternoon",
    "evening",
    "noon",
    "midday",
    "o'clock",
    "half past",
    "quarter past",
    "quarter to",
    "a.m.",
    "p.m.",
];

const HOURS: [&str; 12] = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve",
];

/// Whether `lower` names a day or a time of day ("Thursday", "two o'clock", "10am", "3:30",
/// "at ten", "three fifteen").
pub fn mentions_time(lower: &str) -> bool {
    if has_any(lower, &DAYS) {
        return true;
    }
    let spoken = found_in(lower, &HOURS).into_iter().any(|hour| {
        occurrences(lower, hour).any(|at| {
            let before = lower[..at].trim_end();
            let after = lower[at + hour.len()..].trim_start();
            before.ends_with(" at")
                || before == "at"
                || [
                    "thirty",
                    "fifteen",
                    "forty",
                    "forty-five",
                    "twenty",
                    "fifty",
                    "oh five",
                    "ten ",
                    "ten.",
                    "ten,",
                ]
                .iter()
                .any(|m| after.starts_with(m))
        })
    });
    if spoken {
        return true;
    }
    lower
        .split(|c: char| c.is_whitespace() || c == ',' || c == '?' || c == '!')
        .any(|word| {
            let word = word.trim_end_matches('.');
            let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let suffix = &word[digits.len()..];
            (!digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit() || c == ':')
                && digits.starts_with(|c: char| c.is_ascii_digit())
                && (suffix == "am" || suffix == "pm"))
                || (word.len() >= 4
                    && word.contains(':')
                    && word.chars().all(|c| c.is_ascii_digit() || c == ':'))
        })
        || ["am", "pm"].iter().any(|s| {
            occurrences(lower, s).any(|at| {
                lower[..at]
                    .trim_end()
                    .ends_with(|c: char| c.is_ascii_digit())
            })
        })
}

/// At most `max` characters of `text`, cut at a character boundary, with "…" when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", text[..at].trim_end()),
    }
}

pub fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_match_whole_words_only() {
        assert_eq!(find_phrase("i'd like to book it", "book"), vec![12]);
        assert!(find_phrase("my facebook page", "book").is_empty());
        assert_eq!(find_phrase("price? price!", "price"), vec![0, 7]);
        assert!(find_phrase("naïve café", "caf").is_empty());
    }

    #[test]
    fn phrase_search_finds_what_a_plain_substring_search_finds_at_word_boundaries() {
        let haystacks = [
            "aaaa aa a aaa",
            "no no nono no-no",
            "café ça va? ça, ça",
            "tuesday's fine, tuesday morning or tuesdays",
            "ok. ok! ok? «ok» ok",
            "",
        ];
        let phrases = [
            "aa", "a", "no", "no no", "ça", "ça va", "tuesday", "ok", "é",
        ];
        for haystack in haystacks {
            for phrase in phrases {
                let expected: Vec<usize> = haystack
                    .match_indices(phrase)
                    .map(|(at, _)| at)
                    .filter(|&at| {
                        let before = haystack[..at].chars().next_back();
                        let after = haystack[at + phrase.len()..].chars().next();
                        [before, after]
                            .into_iter()
                            .all(|c| c.is_none_or(|c| !c.is_alphanumeric()))
                    })
                    .collect();
                assert_eq!(
                    find_phrase(haystack, phrase),
                    expected,
                    "{phrase:?} in {haystack:?}"
                );
            }
        }
    }

    #[test]
    fn candidates_follow_the_text_asked_about() {
        static LIST: [&str; 3] = ["book a", "tuesday", "price"];
        assert_eq!(candidates("can i book a ride", &LIST), vec!["book a"]);
        assert_eq!(
            candidates("tuesday's price", &LIST),
            vec!["tuesday", "price"]
        );
        assert_eq!(candidates("can i book a ride", &LIST), vec!["book a"]);
        assert!(candidates("nothing here", &LIST).is_empty());
    }

    #[test]
    fn more_texts_than_are_kept_are_each_searched_as_themselves() {
        static LIST: [&str; 3] = ["book a", "tuesday", "price"];
        let texts: Vec<(String, Vec<&str>)> = (0..TEXTS_KEPT * 2 + 1)
            .map(|n| match n % 3 {
                0 => (format!("can i book a ride {n}"), vec!["book a"]),
                1 => (format!("tuesday's price {n}"), vec!["tuesday", "price"]),
                _ => (format!("nothing here {n}"), vec![]),
            })
            .collect();
        // Twice round, so the second asks find every text replaced by later ones.
        for _ in 0..2 {
            for (text, expected) in &texts {
                assert_eq!(&found_in(text, &LIST), expected, "{text:?}");
                assert_eq!(has_any(text, &LIST), !expected.is_empty(), "{text:?}");
            }
        }
    }

    #[test]
    fn negation_looks_three_words_back() {
        let s = "i'm not looking to buy";
        assert!(negated(s, find_phrase(s, "buy")[0]));
        let s = "no, i would really like to buy";
        assert!(!negated(s, find_phrase(s, "buy")[0]), "too far back");
        let s = "i don't want to buy";
        assert!(negated(s, find_phrase(s, "buy")[0]));
    }

    #[test]
    fn negation_stays_in_its_clause() {
        let s = "no, i'd like to buy it";
        assert!(!negated(s, find_phrase(s, "buy")[0]));
        let s = "i can't, but i want to book";
        assert!(!negated(s, find_phrase(s, "book")[0]));
    }

    #[test]
    fn normalizing_drops_fillers_and_curly_apostrophes() {
        assert_eq!(normalize("I\u{2019}ll, uh, take it."), "i'll take it.");
        assert_eq!(
            normalize("Gonna need a quote, um."),
            "going to need a quote."
        );
    }

    #[test]
    fn times_are_recognised_spoken_or_written() {
        for yes in [
            "thursday works",
            "two o'clock",
            "how about 10am",
            "at 3:30 then",
            "at 9 am",
            "tomorrow morning",
            "she has one at ten",
            "three fifteen is better",
        ] {
            assert!(mentions_time(yes), "{yes}");
        }
        for no in [
            "the price is 3,200",
            "that works",
            "i have 2 kids",
            "two hundred thirty",
        ] {
            assert!(!mentions_time(no), "{no}");
        }
    }

    #[test]
    fn sentences_split_and_clip_is_char_safe() {
        let all: Vec<&str> = sentences("Hello there. How much? \n\n Great!").collect();
        assert_eq!(all, vec!["Hello there.", "How much?", "Great!"]);
        assert_eq!(clip("héllo wörld", 4), "héll…");
    }

    #[test]
    fn the_phrase_index_finds_what_a_plain_search_finds() {
        use crate::analyzer::lexicon;
        let lists: [&'static [&'static str]; 8] = [
            lexicon::PURCHASE,
            lexicon::PRICING,
            lexicon::BOOKING,
            lexicon::COMPLAINT,
            lexicon::WRONG_NUMBER,
            lexicon::SARCASM,
            lexicon::PRICE_STATED,
            lexicon::AFFIRM,
        ];
        for sentence in [
            "tuesday's good, ten o'clock works.",
            "it's $40 — i was charged twice?! unacceptable.",
            "oh great, the highlight of my week. again?",
            "i'll take it, let's do the forty-two one.",
            "must've been a typo, i thought this was tony's.",
            "café naïve 价格是多少 — how much?",
            "",
            "'d like a co-pay quote",
        ] {
            for list in lists {
                let plain: Vec<&str> = list
                    .iter()
                    .copied()
                    .filter(|p| !find_phrase(sentence, p).is_empty())
                    .collect();
                assert_eq!(found_in(sentence, list), plain, "{sentence:?}");
                assert_eq!(has_any(sentence, list), !plain.is_empty());
            }
        }
    }
}
