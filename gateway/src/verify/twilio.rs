//! `X-Twilio-Signature` verification.
//!
//! HMAC-SHA1 keyed with the auth token over the public URL Twilio called (configured base URL
//! plus the request-target exactly as received) followed by every form parameter, sorted by
//! name in byte order, each name's values de-duplicated and sorted, as `name` + `value`. JSON
//! bodies carry `bodySHA256` in the query instead: the URL alone is signed and the body must
//! hash to it. The URL is tried as received, without its port, and with the default port added;
//! the comparison is constant-time and length-checked.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::{Verified, VerifyError};
use crate::secret::Secret;

pub const HEADER: &str = "x-twilio-signature";

type HmacSha1 = Hmac<Sha1>;

/// Verifies a Twilio request to `url` (public base + raw path and query) with any of `tokens`.
pub fn verify(
    tokens: &[Secret],
    url: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Verified<Bytes>, VerifyError> {
    let presented = headers
        .get(HEADER)
        .ok_or(VerifyError::MissingHeader("X-Twilio-Signature"))?
        .to_str()
        .map_err(|_| VerifyError::MalformedHeader("X-Twilio-Signature"))?;
    let presented = base64::engine::general_purpose::STANDARD
        .decode(presented.trim())
        .map_err(|_| VerifyError::Mismatch)?;
    if presented.len() != 20 {
        return Err(VerifyError::Mismatch);
    }
    let parameters = match body_hash_in(url) {
        Some(expected) => {
            let actual = hex::encode(Sha256::digest(&body));
            let matches: bool =
                subtle::ConstantTimeEq::ct_eq(actual.as_bytes(), expected.as_bytes()).into();
            if !matches {
                return Err(VerifyError::Mismatch);
            }
            String::new()
        }
        None => parameter_string(&body),
    };
    let matched = candidate_urls(url).iter().any(|candidate| {
        tokens.iter().any(|token| {
            let Ok(mut mac) = HmacSha1::new_from_slice(token.expose().as_bytes()) else {
                return false;
            };
            mac.update(candidate.as_bytes());
            mac.update(parameters.as_bytes());
            mac.verify_slice(&presented).is_ok()
        })
    });
    if matched {
        Ok(Verified::new(body))
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// The signature Twilio would send for `url` and form `body` (tests and tools).
pub fn sign(token: &str, url: &str, body: &[u8]) -> String {
    let parameters = if body_hash_in(url).is_some() {
        String::new()
    } else {
        parameter_string(body)
    };
    let Ok(mut mac) = HmacSha1::new_from_slice(token.as_bytes()) else {
        return String::new();
    };
    mac.update(url.as_bytes());
    mac.update(parameters.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Every decoded form field, grouped by name in byte order, values de-duplicated and sorted.
fn parameter_string(body: &[u8]) -> String {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        by_name
            .entry(name.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    let mut out = String::new();
    for (name, mut values) in by_name {
        values.sort();
        values.dedup();
        for value in values {
            out.push_str(&name);
            out.push_str(&value);
        }
    }
    out
}

/// The `bodySHA256` query value, when the request is a signed JSON body.
fn body_hash_in(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "bodySHA256")
        .map(|(_, value)| value.into_owned())
}

/// The URL as received, without its explicit port, and with the scheme's default port added:
/// Twilio signs voice callbacks over HTTPS without the port, others with it. Only the authority
/// text is edited; the path and query stay byte for byte.
fn candidate_urls(url: &str) -> Vec<String> {
    let mut candidates = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return candidates;
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host_end = authority
        .rfind(':')
        .filter(|i| !authority[*i..].contains(']'));
    match host_end {
        Some(colon) => candidates.push(format!("{scheme}://{}{tail}", &authority[..colon])),
        None => {
            let port = match scheme {
                "https" => ":443",
                "http" => ":80",
                _ => return candidates,
            };
            candidates.push(format!("{scheme}://{authority}{port}{tail}"));
        }
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const P: &str = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";

    fn check(token: &str, url: &str, body: &str, signature: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, signature.parse().expect("header"));
        verify(
            &[Secret::new(token)],
            url,
            &headers,
            Bytes::from(body.to_owned()),
        )
        .is_ok()
    }

    #[test]
    fn the_spec_vectors_verify() {
        let cases: [(&str, &str, &str); 5] = [
            (U, P, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            (
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                P,
                "kvajT1Ptam85bY51eRf/AJRuM3w=",
            ),
            (
                "http://mycompany.com:80/myapp.php?foo=1&bar=2",
                P,
                "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            ),
            (
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                P,
                "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            ),
            (
                "https://example.com/myapp.php?foo=1&bar=2",
                "CallSid=CA1234567890ABCDE&Caller=%2B14158675310&Digits=1234&From=%2B14158675310&To=%2B18005551212",
                "L/OH5YylLD5NRKLltdqwSvS0BnU=",
            ),
        ];
        for (url, body, signature) in cases {
            assert!(check("12345", url, body, signature), "{url}");
            assert_eq!(sign("12345", url, body.as_bytes()), signature, "{url}");
        }
    }

    #[test]
    fn ports_are_tried_both_ways() {
        // TV2 signed with :443 validates when we know the URL without a port, and TV1 vice versa.
        assert!(check("12345", U, P, "kvajT1Ptam85bY51eRf/AJRuM3w="));
        assert!(check(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            P,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        // TV4b: any explicit port is stripped.
        assert!(check(
            "12345",
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            P,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn repeated_keys_sort_by_name_then_value() {
        let tv5 = "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234";
        assert!(check("12345", U, tv5, "IK+Dwps556ElfBT0I3Rgjkr1wJU="));
        for tv6 in [
            "MessagingBinding.Address=%2B1325xxxxxxx&MessagingBinding.Address=%2B1415xxxxxxx",
            "MessagingBinding.Address=%2B1415xxxxxxx&MessagingBinding.Address=%2B1325xxxxxxx",
        ] {
            assert!(check("12345", U, tv6, "83O6e2vORAoJHUNzJjDWN1jz+BA="));
        }
    }

    #[test]
    fn json_bodies_sign_the_url_and_hash_the_body() {
        let body = r#"{"property": "value", "boolean": true}"#;
        let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        assert!(check(
            "12345",
            &format!("{U}&bodySHA256={hash}"),
            body,
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
        let tv8 = format!("https://mycompany.com/myapp.php?bodySHA256={hash}");
        assert!(check("12345", &tv8, body, "y77kIzt2vzLz71DgmJGsen2scGs="));
        assert!(!check(
            "12345",
            &tv8,
            r#"{"property": "other"}"#,
            "y77kIzt2vzLz71DgmJGsen2scGs="
        ));
        // TV9 validates only through its :443 form.
        let tv9 = format!(
            "{U}&bodySHA256=44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert!(check("12345", &tv9, "{}", "Ldidvp12m26NI7eqEvxnEpkd9Hc="));
    }

    #[test]
    fn real_callback_bodies_with_unicode_and_empty_values() {
        let tv13 = "AccountSid=AC00000000000000000000000000000000&ApiVersion=2010-04-01&Body=H%C3%A9llo+w%C3%B6rld+%F0%9F%91%8B+a%2Bb+%26+c%3Dd&From=%2B14155550100&MessageSid=SM00000000000000000000000000000000&NumMedia=0&NumSegments=1&SmsMessageSid=SM00000000000000000000000000000000&SmsSid=SM00000000000000000000000000000000&SmsStatus=received&To=%2B14155550199&FromCity=";
        let url = "https://example.com/twilio/sms?tenant=acme";
        assert!(check("12345", url, tv13, "cwiGNPv8N/8XX6XBJMZNmDOOxts="));
        assert!(
            check("12345", url, tv13, "TR8TIQxEnLLM7LfrpZ/+eLzCt1k="),
            ":443 form"
        );
        let tv14 = "AccountSid=AC00000000000000000000000000000000&ApiVersion=2010-04-01&ErrorCode=30003&From=%2B14155550199&MessageSid=SM11111111111111111111111111111111&MessageStatus=undelivered&SmsSid=SM11111111111111111111111111111111&SmsStatus=undelivered&To=%2B14155550100";
        assert!(check(
            "12345",
            "https://hooks.example.org/twilio/status",
            tv14,
            "Y5C4kH4FhrJUuIBtFuekqyQPumU="
        ));
    }

    #[test]
    fn wrong_urls_tokens_and_signatures_fail() {
        let signature = sign("s3cr3t", "https://example.com/path?test=param", b"");
        assert!(check(
            "s3cr3t",
            "https://example.com/path?test=param",
            "",
            &signature
        ));
        assert!(!check(
            "s3cr3t",
            "https://example.com/path?test=param2",
            "",
            &signature
        ));
        assert!(!check("other", U, P, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(!check(
            "12345",
            U,
            &format!("{P}&Extra=1"),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!check("12345", U, P, ""));
        assert!(!check("12345", U, P, "RSOYDt4T1cUTdK1PDd93/VVr8B8"));
        assert!(
            !check("12345", &format!("{U}/"), P, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            "trailing slash matters"
        );
    }
}
