//! Phone numbers in E.164, the form Twilio and ElevenLabs send and the key leads are found by.

use std::fmt;
use std::sync::LazyLock;

use moka::sync::Cache;
use phonenumber::{Mode, country};

/// A valid phone number, normalised to E.164 (e.g. `+14155550100`).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct PhoneNumber(String);

/// Why a string is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("is empty")]
    Empty,
    #[error("{0:?} is not a phone number")]
    Unparseable(String),
    #[error("{0:?} is not a valid phone number")]
    Invalid(String),
}

/// The region assumed for numbers written without a country code, e.g. "US".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DefaultRegion(country::Id);

impl DefaultRegion {
    /// Parses an ISO 3166-1 alpha-2 code.
    pub fn parse(code: &str) -> Option<Self> {
        code.trim()
            .to_ascii_uppercase()
            .parse()
            .ok()
            .map(DefaultRegion)
    }
}

impl Default for DefaultRegion {
    fn default() -> Self {
        DefaultRegion(country::Id::US)
    }
}

impl PhoneNumber {
    /// Parses any common notation ("(415) 555-2671", "+44 20 7946 0958", "whatsapp:+1...").
    ///
    /// The answers for the last numbers seen are kept: parsing and validating one against the
    /// numbering plans takes over 100,000 instructions, and the same numbers come back on every
    /// call (the business's own, a caller's on each of their calls).
    pub fn parse(raw: &str, region: DefaultRegion) -> Result<Self, PhoneError> {
        static PARSED: LazyLock<Parsed> = LazyLock::new(|| Cache::new(PARSED_KEPT));
        if raw.len() > LONGEST_KEPT {
            return Self::parse_anew(raw, region);
        }
        let key = (Box::from(raw), region);
        if let Some(known) = PARSED.get(&key) {
            return known;
        }
        let parsed = Self::parse_anew(raw, region);
        PARSED.insert(key, parsed.clone());
        parsed
    }

    fn parse_anew(raw: &str, region: DefaultRegion) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        // Twilio prefixes channel addresses, e.g. "whatsapp:+14155552671".
        let trimmed = trimmed
            .rsplit_once(':')
            .map_or(trimmed, |(_, number)| number)
            .trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let parsed = phonenumber::parse(Some(region.0), trimmed)
            .map_err(|_| PhoneError::Unparseable(raw.to_owned()))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneError::Invalid(raw.to_owned()));
        }
        Ok(PhoneNumber(parsed.format().mode(Mode::E164).to_string()))
    }

    /// A number read back from the database, where only normalised numbers are stored.
    pub(crate) fn from_stored(e164: String) -> Self {
        PhoneNumber(e164)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How many numbers' answers [`PhoneNumber::parse`] keeps (each some 200 bytes at most).
const PARSED_KEPT: u64 = 10_000;

/// Longer inputs are parsed every time, so that what is kept stays small whatever is sent.
const LONGEST_KEPT: usize = 64;

/// [`PhoneNumber::parse`]'s answers, by what it was given.
type Parsed = Cache<(Box<str>, DefaultRegion), Result<PhoneNumber, PhoneError>>;

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(raw: &str) -> Result<String, PhoneError> {
        PhoneNumber::parse(raw, DefaultRegion::default()).map(|p| p.0)
    }

    #[test]
    fn normalises_common_notations_to_e164() {
        assert_eq!(e164("+1 (415) 555-2671").as_deref(), Ok("+14155552671"));
        assert_eq!(e164("415.555.2671").as_deref(), Ok("+14155552671"));
        assert_eq!(e164("+44 20 7946 0958").as_deref(), Ok("+442079460958"));
        assert_eq!(e164("whatsapp:+14155552671").as_deref(), Ok("+14155552671"));
    }

    #[test]
    fn other_regions_read_national_numbers_in_their_plan() {
        let gb = DefaultRegion::parse("gb").expect("GB is a region");
        let number = PhoneNumber::parse("020 7946 0958", gb).expect("a London number");
        assert_eq!(number.as_str(), "+442079460958");
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        assert_eq!(e164("  "), Err(PhoneError::Empty));
        assert!(matches!(
            e164("call me maybe"),
            Err(PhoneError::Unparseable(_))
        ));
        assert!(matches!(e164("+1 415 555"), Err(PhoneError::Invalid(_))));
        assert!(DefaultRegion::parse("XX").is_none());
    }

    #[test]
    fn a_number_asked_again_is_answered_as_the_first_time_in_its_own_region() {
        let gb = DefaultRegion::parse("GB").expect("GB is a region");
        for _ in 0..2 {
            assert_eq!(e164("415.555.2671").as_deref(), Ok("+14155552671"));
            assert!(matches!(e164("+1 415 555"), Err(PhoneError::Invalid(_))));
            // The same text read in another region is another number, or none.
            let national = "020 7946 0958";
            assert_eq!(
                PhoneNumber::parse(national, gb).map(|p| p.0).as_deref(),
                Ok("+442079460958")
            );
            assert!(PhoneNumber::parse(national, DefaultRegion::default()).is_err());
        }
        // Past what is kept, as parsed every time.
        let long = format!("+1 415 555 2671{}", " ".repeat(LONGEST_KEPT));
        assert_eq!(e164(&long).as_deref(), Ok("+14155552671"));
    }
}
