//! `ElevenLabs-Signature` verification.
//!
//! Current form: `t=<unix seconds>,v0=<hex>` with HMAC-SHA256 over `"{t}.{raw body}"`; parts
//! are matched by prefix, any `v0` may match, and `t` must be within 30 minutes of now in either
//! direction. Legacy form: `sha256=<hex>`, HMAC-SHA256 over the raw body. Every configured
//! secret is tried (rotation). Comparisons are constant-time and length-checked, so an empty or
//! truncated signature never verifies.

use axum::http::HeaderMap;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Verified, VerifyError};
use crate::secret::Secret;

pub const HEADER: &str = "elevenlabs-signature";
pub const TOLERANCE_SECS: i64 = 30 * 60;

type HmacSha256 = Hmac<Sha256>;

/// Verifies `body` against the `ElevenLabs-Signature` header with any of `secrets`.
pub fn verify(
    secrets: &[Secret],
    headers: &HeaderMap,
    body: Bytes,
    now_unix: i64,
) -> Result<Verified<Bytes>, VerifyError> {
    let value = headers
        .get(HEADER)
        .ok_or(VerifyError::MissingHeader("ElevenLabs-Signature"))?
        .to_str()
        .map_err(|_| VerifyError::MalformedHeader("ElevenLabs-Signature"))?
        .trim();
    if let Some(legacy) = value.strip_prefix("sha256=") {
        let presented = decode_mac(legacy)?;
        return if secrets.iter().any(|s| mac_matches(s, &[&body], &presented)) {
            Ok(Verified::new(body))
        } else {
            Err(VerifyError::Mismatch)
        };
    }

    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in value.split(',').map(str::trim) {
        if let Some(t) = part.strip_prefix("t=") {
            timestamp = Some(t);
        } else if let Some(v0) = part.strip_prefix("v0=") {
            candidates.push(v0);
        }
    }
    let malformed = VerifyError::MalformedHeader("ElevenLabs-Signature");
    let timestamp = timestamp.ok_or(malformed.clone())?;
    let t: i64 = timestamp.parse().map_err(|_| malformed.clone())?;
    if candidates.is_empty() {
        return Err(malformed);
    }
    if (now_unix - t).abs() > TOLERANCE_SECS {
        return Err(VerifyError::OutsideWindow);
    }
    let presented: Vec<Vec<u8>> = candidates
        .into_iter()
        .filter_map(|c| decode_mac(c).ok())
        .collect();
    let signed = [timestamp.as_bytes(), b".", &body[..]];
    let matched = secrets
        .iter()
        .any(|secret| presented.iter().any(|p| mac_matches(secret, &signed, p)));
    if matched {
        Ok(Verified::new(body))
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// A hex MAC of exactly SHA-256's length; anything else is malformed.
fn decode_mac(text: &str) -> Result<Vec<u8>, VerifyError> {
    let bytes = hex::decode(text).map_err(|_| VerifyError::Mismatch)?;
    if bytes.len() != 32 {
        return Err(VerifyError::Mismatch);
    }
    Ok(bytes)
}

fn mac_matches(secret: &Secret, parts: &[&[u8]], presented: &[u8]) -> bool {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.expose().as_bytes()) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    // `verify_slice` compares in constant time and checks the length.
    mac.verify_slice(presented).is_ok()
}

/// The header value for `body` signed at `t` (tests, and tools that replay webhooks).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this never fails.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v0={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, value.parse().expect("header value"));
        headers
    }

    fn check(secret: &str, header: &str, body: &str, now: i64) -> Result<(), VerifyError> {
        verify(
            &[Secret::new(secret)],
            &headers(header),
            Bytes::from(body.to_owned()),
            now,
        )
        .map(|_| ())
    }

    const BODY_1: &str = r#"{"type":"post_call_transcription","event_timestamp":1739537297,"data":{"agent_id":"xyz","conversation_id":"abc"}}"#;
    const HEADER_1: &str =
        "t=1739537297,v0=56c255208ac31944e833c7edacb091a1d845f075a6a781576269c7ff188bc125";
    const BODY_2: &str = r#"{"event_type": "speech.completed", "id": "123456"}"#;
    const HEADER_2: &str =
        "t=1600000000,v0=f8a0d1dc33ee963cb54d2f31514555995e93313c9d2042c030adbb82b87fae13";

    #[test]
    fn the_spec_vectors_verify() {
        assert_eq!(
            check("wsec_test_secret", HEADER_1, BODY_1, 1739537297),
            Ok(())
        );
        assert_eq!(check("test_secret", HEADER_2, BODY_2, 1600000000), Ok(()));
        assert_eq!(
            sign("wsec_test_secret", 1739537297, BODY_1.as_bytes()),
            HEADER_1
        );
    }

    #[test]
    fn tampering_and_wrong_secrets_fail() {
        let tampered = BODY_1.replace("abc", "abd");
        assert_eq!(
            check("wsec_test_secret", HEADER_1, &tampered, 1739537297),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check("other", HEADER_1, BODY_1, 1739537297),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn the_window_is_thirty_minutes_both_ways() {
        let t = 1739537297;
        assert_eq!(
            check("wsec_test_secret", HEADER_1, BODY_1, t + 30 * 60),
            Ok(())
        );
        assert_eq!(
            check("wsec_test_secret", HEADER_1, BODY_1, t + 31 * 60),
            Err(VerifyError::OutsideWindow)
        );
        assert_eq!(
            check("wsec_test_secret", HEADER_1, BODY_1, t - 31 * 60),
            Err(VerifyError::OutsideWindow)
        );
    }

    #[test]
    fn malformed_empty_and_truncated_signatures_never_verify() {
        let now = 1739537297;
        for header in ["", "t=1739537297", "v0=56c2", "t=abc,v0=56c2", "garbage"] {
            assert!(
                check("wsec_test_secret", header, BODY_1, now).is_err(),
                "{header:?}"
            );
        }
        assert_eq!(
            check("wsec_test_secret", "t=1739537297,v0=", BODY_1, now),
            Err(VerifyError::Mismatch)
        );
        let truncated = &HEADER_1[..HEADER_1.len() - 2];
        assert_eq!(
            check("wsec_test_secret", truncated, BODY_1, now),
            Err(VerifyError::Mismatch)
        );
        let missing = verify(&[Secret::new("s")], &HeaderMap::new(), Bytes::new(), now);
        assert!(matches!(missing, Err(VerifyError::MissingHeader(_))));
    }

    #[test]
    fn order_of_parts_does_not_matter_and_any_v0_may_match() {
        let v0 = HEADER_1.split(",v0=").nth(1).expect("v0");
        let reordered = format!("v0={},v0={v0}, t=1739537297", "00".repeat(32));
        assert_eq!(
            check("wsec_test_secret", &reordered, BODY_1, 1739537297),
            Ok(())
        );
    }

    #[test]
    fn rotation_accepts_any_configured_secret() {
        let secrets = [Secret::new("new_secret"), Secret::new("wsec_test_secret")];
        let ok = verify(
            &secrets,
            &headers(HEADER_1),
            Bytes::from(BODY_1),
            1739537297,
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn the_legacy_form_signs_the_body_alone() {
        let mut mac = HmacSha256::new_from_slice(b"legacy").expect("key");
        mac.update(BODY_2.as_bytes());
        let header = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(check("legacy", &header, BODY_2, 0), Ok(()));
        assert_eq!(
            check("legacy", "sha256=", BODY_2, 0),
            Err(VerifyError::Mismatch)
        );
    }
}
