//! Phone numbers as logs show them: their last four digits. Error texts from providers and
//! services often quote the number they refused, so free text is masked before it is logged.

use std::borrow::Cow;

/// `number` as `…1234`.
pub fn last_four(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

/// `text` with every phone number in it reduced to its last four digits. A phone number here is
/// a run of digits and the separators people write (`+`, spaces, `-`, `.`, parentheses) holding
/// at least seven digits when it starts with `+`, else at least ten, and not part of a word.
pub fn mask_numbers(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts = (bytes[i] == b'+' || bytes[i].is_ascii_digit() || bytes[i] == b'(')
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric());
        if !starts {
            i += 1;
            continue;
        }
        let mut end = i;
        let mut digits = 0;
        let mut last_digit = i;
        while end < bytes.len() && (bytes[end].is_ascii_digit() || b"+ -.()".contains(&bytes[end]))
        {
            if bytes[end].is_ascii_digit() {
                digits += 1;
                last_digit = end;
            }
            end += 1;
        }
        // The number ends at its last digit; trailing separators are the sentence's.
        let end_of_number = last_digit + 1;
        let bounded = end_of_number >= bytes.len() || !bytes[end_of_number].is_ascii_alphanumeric();
        let needed = if bytes[i] == b'+' { 7 } else { 10 };
        if digits >= needed && bounded {
            out.push_str(&text[copied..i]);
            out.push_str(&last_four(&text[i..end_of_number]));
            copied = end_of_number;
            i = end_of_number;
        } else {
            i = end.max(i + 1);
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_last_four_digits_and_nothing_else_changes() {
        assert_eq!(
            mask_numbers("The 'To' number +15005550001 is not a valid phone number."),
            "The 'To' number …0001 is not a valid phone number."
        );
        assert_eq!(
            mask_numbers("to: +1 (415) 555-0123, from 2125550100."),
            "to: …0123, from …0100."
        );
        for untouched in [
            "event 1234567 at 2026-11-30",
            "call_id 01a22b6a-cd7f-77fa-8dbb-414e7c0b3060",
            "HTTP 503 after 3 tries",
            "",
        ] {
            assert_eq!(mask_numbers(untouched), untouched);
        }
        assert_eq!(last_four("+1 (415) 555-0123"), "…0123");
        assert_eq!(last_four("12"), "…12");
    }
}
