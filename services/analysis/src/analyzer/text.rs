//! Small text helpers the rules share: sentences, whole-word phrase search, negation.

/// The sentences of `text`, trimmed, without empty ones. Splits after `.`, `!`, `?` and at
/// line breaks; good enough for speech-to-text output, which has few abbreviations.
pub fn sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(['.', '!', '?', '\n', '。', '！', '？'])
        .map(str::trim)
        .filter(|s| s.chars().any(char::is_alphanumeric))
}

/// Byte offsets where `phrase` (lowercase) occurs in `haystack` (lowercase) as whole words.
pub fn find_phrase(haystack: &str, phrase: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = haystack[from..].find(phrase) {
        let start = from + at;
        let end = start + phrase.len();
        let before = haystack[..start].chars().next_back();
        let after = haystack[end..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        if boundary(before) && boundary(after) {
            found.push(start);
        }
        from = start + phrase.len().max(1);
        // Stay on a character boundary.
        while from < haystack.len() && !haystack.is_char_boundary(from) {
            from += 1;
        }
    }
    found
}

const NEGATIONS: [&str; 10] = [
    "not", "don't", "dont", "no", "never", "won't", "can't", "cannot", "isn't", "wouldn't",
];

/// Whether one of the three words before `at` negates what follows ("not looking to buy").
pub fn negated(haystack: &str, at: usize) -> bool {
    haystack[..at]
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .rev()
        .take(3)
        .any(|w| NEGATIONS.contains(&w))
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
    fn negation_looks_three_words_back() {
        let s = "i'm not looking to buy";
        assert!(negated(s, find_phrase(s, "buy")[0]));
        let s = "no, i would really like to buy";
        assert!(!negated(s, find_phrase(s, "buy")[0]), "too far back");
        let s = "i don't want to buy";
        assert!(negated(s, find_phrase(s, "buy")[0]));
    }

    #[test]
    fn sentences_split_and_clip_is_char_safe() {
        let all: Vec<&str> = sentences("Hello there. How much? \n\n Great!").collect();
        assert_eq!(all, vec!["Hello there.", "How much?", "Great!"]);
        assert_eq!(clip("héllo wörld", 4), "héll…");
    }
}
