//! Secrets that never reach a log: `Debug` prints a placeholder, comparison is constant-time.

use subtle::ConstantTimeEq;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a presented value (lengths may differ).
    pub fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        expected.len() == presented.len() && bool::from(expected.ct_eq(presented))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Secrets from a comma-separated variable: several at once while rotating.
pub fn parse_list(value: &str) -> Vec<Secret> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Secret::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed_and_compared_exactly() {
        let secret = Secret::new("wsec_abc");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert!(secret.matches(b"wsec_abc"));
        assert!(!secret.matches(b"wsec_ab"));
        assert!(!secret.matches(b""));
        assert_eq!(parse_list(" a, ,b ").len(), 2);
    }
}
