//! Property tests of everything that reads untrusted input before it is authenticated:
//! arbitrary signature headers, webhook bodies, Twilio forms and `Last-Event-ID` values never
//! panic, and no signature made up without the secret ever verifies.

use axum::http::{HeaderMap, HeaderValue};
use bytes::Bytes;
use proptest::prelude::*;

use crate::elevenlabs::payload::{
    self, Audio, CallStatusUpdate, ConversationEvent, Envelope, InitiationFailure,
    InitiationRequest, Routing, Transcription,
};
use crate::routes::stream::last_event_id;
use crate::routes::twilio::form_fields;
use crate::secret::Secret;
use crate::verify::{elevenlabs, twilio};

const NOW: i64 = 1_739_537_297;

fn with_header(name: &'static str, value: &[u8]) -> Option<HeaderMap> {
    let value = HeaderValue::from_bytes(value).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(name, value);
    Some(headers)
}

/// Signature headers shaped like the real ones, with made-up values.
fn elevenlabs_like() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        (NOW - 3_600..NOW + 3_600).prop_map(|t| format!("t={t}")),
        "[0-9a-f]{64}".prop_map(|mac| format!("v0={mac}")),
        "[0-9a-fA-F]{0,70}".prop_map(|mac| format!("v0={mac}")),
        "[0-9a-f]{64}".prop_map(|mac| format!("sha256={mac}")),
        "[ -~]{0,20}",
    ];
    prop::collection::vec(part, 0..8).prop_map(|parts| parts.join(","))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn elevenlabs_signatures_made_up_never_verify(
        raw in prop::collection::vec(any::<u8>(), 0..600),
        shaped in elevenlabs_like(),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let secrets = [Secret::new("wsec_test_secret")];
        for value in [raw.as_slice(), shaped.as_bytes()] {
            if let Some(headers) = with_header(elevenlabs::HEADER, value) {
                let verified = elevenlabs::verify(&secrets, &headers, Bytes::from(body.clone()), NOW);
                prop_assert!(verified.is_err(), "{:?} verified", String::from_utf8_lossy(value));
                let _ = elevenlabs::precheck(&headers, NOW);
            }
        }
    }

    #[test]
    fn twilio_signatures_made_up_never_verify(
        signature in prop_oneof!["[A-Za-z0-9+/=]{0,40}", "[ -~]{0,60}"],
        url in "https?://[a-z.]{1,20}(:[0-9]{1,5})?/[ -~]{0,30}",
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let tokens = [Secret::new("twilio-auth-token")];
        if let Some(headers) = with_header("x-twilio-signature", signature.as_bytes()) {
            let verified = twilio::verify(&tokens, &url, &headers, Bytes::from(body));
            prop_assert!(verified.is_err(), "{signature:?} verified for {url:?}");
        }
    }

    #[test]
    fn elevenlabs_payloads_never_panic(
        raw in prop::collection::vec(any::<u8>(), 0..512),
        kind in "[a-z_.]{0,30}",
        data in "[ -~]{0,200}",
    ) {
        let shaped = format!(r#"{{"type":"{kind}","event_timestamp":1,"data":{data}}}"#);
        for body in [raw.as_slice(), shaped.as_bytes()] {
            let _ = payload::parse::<Envelope<Routing>>(body);
            let _ = payload::parse::<Envelope<Transcription>>(body);
            let _ = payload::parse::<Envelope<Audio>>(body);
            let _ = payload::parse::<Envelope<InitiationFailure>>(body);
            let _ = payload::parse::<InitiationRequest>(body);
            let _ = payload::parse::<ConversationEvent>(body);
            let _ = payload::parse::<CallStatusUpdate>(body);
            if let Ok(call) = payload::parse::<Envelope<Transcription>>(body) {
                let _ = call.data.turns();
            }
        }
    }

    #[test]
    fn twilio_forms_never_panic(
        raw in prop::collection::vec(any::<u8>(), 0..512),
        pairs in prop::collection::vec(("[ -~]{0,12}", "[ -~]{0,24}"), 0..12),
    ) {
        let _ = form_fields(&raw);
        let encoded: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish();
        let fields = form_fields(encoded.as_bytes());
        // A field given once reads back as it was sent.
        for (key, value) in &pairs {
            if pairs.iter().filter(|(k, _)| k == key).count() == 1 {
                prop_assert_eq!(fields.get(key.as_str()), Some(value));
            }
        }
    }

    #[test]
    fn last_event_ids_never_panic_and_numbers_round_trip(
        raw in prop::collection::vec(any::<u8>(), 0..40),
        query in "[ -~]{0,30}",
        id in any::<u64>(),
    ) {
        if let Some(headers) = with_header("last-event-id", &raw) {
            let _ = last_event_id(&headers, Some(&query));
        }
        let _ = last_event_id(&HeaderMap::new(), Some(&query));
        let headers = with_header("last-event-id", id.to_string().as_bytes());
        prop_assert_eq!(last_event_id(&headers.unwrap_or_default(), None).ok(), Some(id));
    }
}
