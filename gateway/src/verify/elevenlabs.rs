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
use subtle::ConstantTimeEq;

use super::{Verified, VerifyError};
use crate::secret::Secret;

pub const HEADER: &str = "elevenlabs-signature";
pub const TOLERANCE_SECS: i64 = 30 * 60;

type HmacSha256 = Hmac<Sha256>;

/// Longest header accepted: a timestamp and [`MAX_CANDIDATES`] signatures fit easily.
pub const MAX_HEADER_BYTES: usize = 512;
/// Signatures compared per request; ElevenLabs sends one.
pub const MAX_CANDIDATES: usize = 4;

/// Verifies `body` against the `ElevenLabs-Signature` header with any of `secrets`.
///
/// The work is bounded whatever the header says: an oversized header or one with more than
/// [`MAX_CANDIDATES`] signatures is refused before any hashing, and each secret's MAC over the
/// body is computed once and compared with every candidate.
pub fn verify(
    secrets: &[Secret],
    headers: &HeaderMap,
    body: Bytes,
    now_unix: i64,
) -> Result<Verified<Bytes>, VerifyError> {
    let matched = match signature(headers, now_unix)? {
        Signature::Legacy(presented) => any_secret_matches(secrets, &[&body], &[presented]),
        Signature::Current {
            timestamp,
            presented,
        } => {
            let signed = [timestamp.as_bytes(), b".", &body[..]];
            any_secret_matches(secrets, &signed, &presented)
        }
    };
    if matched {
        Ok(Verified::new(body))
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Everything [`verify`] checks before it needs the body: a request that fails here can be
/// refused before a large body is read.
pub fn precheck(headers: &HeaderMap, now_unix: i64) -> Result<(), VerifyError> {
    signature(headers, now_unix).map(|_| ())
}

enum Signature<'a> {
    /// `sha256=<hex>` over the body alone.
    Legacy([u8; 32]),
    /// `t=…,v0=…` over `"{t}.{body}"`.
    Current {
        timestamp: &'a str,
        presented: Vec<[u8; 32]>,
    },
}

fn signature(headers: &HeaderMap, now_unix: i64) -> Result<Signature<'_>, VerifyError> {
    let malformed = VerifyError::MalformedHeader("ElevenLabs-Signature");
    let value = headers
        .get(HEADER)
        .ok_or(VerifyError::MissingHeader("ElevenLabs-Signature"))?;
    if value.len() > MAX_HEADER_BYTES {
        return Err(malformed);
    }
    let value = value.to_str().map_err(|_| malformed.clone())?.trim();
    if let Some(legacy) = value.strip_prefix("sha256=") {
        return Ok(Signature::Legacy(decode_mac(legacy)?));
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
    let timestamp = timestamp.ok_or(malformed.clone())?;
    let t: i64 = timestamp.parse().map_err(|_| malformed.clone())?;
    if candidates.is_empty() || candidates.len() > MAX_CANDIDATES {
        return Err(malformed);
    }
    if (now_unix - t).abs() > TOLERANCE_SECS {
        return Err(VerifyError::OutsideWindow);
    }
    let presented: Vec<[u8; 32]> = candidates
        .into_iter()
        .filter_map(|c| decode_mac(c).ok())
        .collect();
    if presented.is_empty() {
        return Err(VerifyError::Mismatch);
    }
    Ok(Signature::Current {
        timestamp,
        presented,
    })
}

/// A hex MAC of exactly SHA-256's length; anything else is malformed.
fn decode_mac(text: &str) -> Result<[u8; 32], VerifyError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| VerifyError::Mismatch)?;
    Ok(bytes)
}

#[cfg(test)]
thread_local! {
    static HMACS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One MAC per secret over `parts`, each compared in constant time with every presented value.
fn any_secret_matches(secrets: &[Secret], parts: &[&[u8]], presented: &[[u8; 32]]) -> bool {
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        #[cfg(test)]
        HMACS.with(|n| n.set(n.get() + 1));
        let Ok(mut mac) = HmacSha256::new_from_slice(secret.expose().as_bytes()) else {
            continue;
        };
        for part in parts {
            mac.update(part);
        }
        let expected = mac.finalize().into_bytes();
        for candidate in presented {
            matched |= expected.as_slice().ct_eq(candidate.as_slice());
        }
    }
    matched.into()
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
    fn a_flood_of_forged_values_costs_one_hmac_per_secret() {
        let secrets = [Secret::new("first"), Secret::new("second")];
        let body = Bytes::from(vec![b'x'; 1024 * 1024]);
        let now = 1739537297;
        let forged = |values: usize| {
            let mut header = format!("t={now}");
            for i in 0..values {
                header.push_str(&format!(",v0={:064x}", i));
            }
            headers(&header)
        };
        for values in [4_000, 5] {
            HMACS.with(|n| n.set(0));
            let answer = verify(&secrets, &forged(values), body.clone(), now);
            assert!(answer.is_err(), "{values} forged values were accepted");
            let spent = HMACS.with(|n| n.get());
            assert!(
                spent <= secrets.len(),
                "{values} forged values cost {spent} HMACs over the body"
            );
        }
        // A signature among a few decoys still verifies.
        let good = sign("second", now, &body);
        let v0 = good.split(",v0=").nth(1).expect("v0");
        let decoys = format!("t={now},v0={},v0={v0}", "00".repeat(32));
        assert!(verify(&secrets, &headers(&decoys), body, now).is_ok());
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
