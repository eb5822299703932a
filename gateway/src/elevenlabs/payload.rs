//! ElevenLabs webhook payloads, as in the provider spec. Nearly every field is optional; what
//! callmesh cannot work without is required, and a body that lacks it or has the wrong type is
//! refused naming the field's path (e.g. `data.transcript[3].role`).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use callmesh_proto::common::v1 as common;

/// Parses `body` as `T`, naming the path of the first field that does not fit.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    // Tracking the path costs on every field, so it is done only to explain a failure.
    if let Ok(parsed) = T::deserialize(&mut serde_json::Deserializer::from_slice(body)) {
        return Ok(parsed);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            format!("body is not JSON: {inner}")
        } else if path == "." {
            format!("body: {inner}")
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// `{type, event_timestamp, data}`: every post-call webhook.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope<D> {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub event_timestamp: Option<i64>,
    pub data: D,
}

/// Just enough to route and deduplicate a post-call webhook.
#[derive(Debug, Clone, Deserialize)]
pub struct Routing {
    #[serde(default, deserialize_with = "lenient_string")]
    pub conversation_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Transcription {
    #[serde(default, deserialize_with = "lenient_string")]
    pub agent_id: Option<String>,
    pub conversation_id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub transcript: Vec<TranscriptEntry>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub analysis: Option<Value>,
    #[serde(default)]
    pub conversation_initiation_client_data: Option<Value>,
}

impl Transcription {
    /// The transcript as the services' turns.
    pub fn turns(&self) -> Vec<common::TranscriptTurn> {
        self.transcript
            .iter()
            .map(|entry| common::TranscriptTurn {
                role: match entry.role.as_str() {
                    "user" => common::Role::User,
                    "agent" => common::Role::Agent,
                    _ => common::Role::System,
                }
                .into(),
                message: entry.message.clone().unwrap_or_default(),
                time_in_call_secs: entry.time_in_call_secs.unwrap_or(0.0),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TranscriptEntry {
    pub role: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub time_in_call_secs: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Metadata {
    #[serde(default, deserialize_with = "lenient_i64")]
    pub start_time_unix_secs: Option<i64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub call_duration_secs: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub cost: Option<f64>,
    #[serde(default)]
    pub termination_reason: Option<String>,
    #[serde(default)]
    pub phone_call: Option<PhoneCall>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PhoneCall {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    /// The ElevenLabs (business) side.
    #[serde(default, deserialize_with = "lenient_string")]
    pub agent_number: Option<String>,
    /// The caller on inbound calls, the callee on outbound calls.
    #[serde(default, deserialize_with = "lenient_string")]
    pub external_number: Option<String>,
    #[serde(default)]
    pub call_sid: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Audio {
    pub conversation_id: String,
    #[serde(default)]
    pub agent_id: Option<String>,
    pub full_audio: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InitiationFailure {
    #[serde(default, deserialize_with = "lenient_string")]
    pub agent_id: Option<String>,
    pub conversation_id: String,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub metadata: Option<FailureMetadata>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FailureMetadata {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// A Twilio status-callback body (PascalCase) or a SIP body; kept as a map.
    #[serde(default)]
    pub body: Value,
}

impl InitiationFailure {
    /// `(business number, lead number, call id)` from whichever body the provider sent.
    pub fn numbers(&self) -> (Option<String>, Option<String>, Option<String>) {
        let Some(metadata) = &self.metadata else {
            return (None, None, None);
        };
        let field = |name: &str| value_text(metadata.body.get(name));
        match metadata.kind.as_deref() {
            Some("sip") => (field("from_number"), field("to_number"), field("call_sid")),
            _ => (field("From"), field("To"), field("CallSid")),
        }
    }

    /// `busy`, `no-answer` or `unknown`; anything else counts as `unknown`.
    pub fn reason(&self) -> &'static str {
        match self.failure_reason.as_deref() {
            Some("busy") => "busy",
            Some("no-answer") | Some("no_answer") => "no-answer",
            _ => "unknown",
        }
    }
}

/// The conversation-initiation request.
#[derive(Debug, Clone, Deserialize)]
pub struct InitiationRequest {
    #[serde(default, deserialize_with = "lenient_string")]
    pub caller_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub agent_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub called_number: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub call_sid: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub call_id: Option<String>,
}

/// A relayed live event: `{type, conversation_id, timestamp?, data?}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ConversationEvent {
    #[serde(rename = "type", alias = "event_type")]
    pub kind: String,
    #[serde(deserialize_with = "required_string")]
    pub conversation_id: String,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub timestamp: Option<f64>,
    #[serde(default)]
    pub data: Option<Value>,
}

/// A `call.*` status update from the integration that sends them (not an ElevenLabs event).
#[derive(Debug, Clone, Deserialize)]
pub struct CallStatusUpdate {
    #[serde(alias = "type", alias = "event")]
    pub event_type: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub conversation_id: Option<String>,
    #[serde(default, alias = "callSid", deserialize_with = "lenient_string")]
    pub call_sid: Option<String>,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

fn value_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A string, or a number written as one (SIP bodies send numbers either way).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a string, got {other}"
        ))),
    }
}

fn required_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    lenient_string(d)?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| serde::de::Error::custom("must not be empty"))
}

/// An integer, or a numeric string (`event_timestamp` arrives both ways).
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(lenient_f64(d)?.map(|f| f as i64))
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("expected a number, got {s:?}"))),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a number, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_arrive_as_integers_or_numeric_strings() {
        let a: Envelope<Routing> =
            parse(br#"{"type":"x","event_timestamp":1739537297,"data":{"conversation_id":"c"}}"#)
                .expect("int");
        let b: Envelope<Routing> =
            parse(br#"{"type":"x","event_timestamp":"1739537297","data":{"conversation_id":"c"},"new_field":1}"#)
                .expect("string, unknown field");
        assert_eq!(a.event_timestamp, Some(1739537297));
        assert_eq!(b.event_timestamp, Some(1739537297));
    }

    #[test]
    fn wrong_types_name_the_field() {
        let error = parse::<Envelope<Transcription>>(
            br#"{"type":"post_call_transcription","data":{"conversation_id":"c","transcript":[{"role":5}]}}"#,
        )
        .expect_err("role must be a string");
        assert!(error.starts_with("data.transcript[0].role:"), "{error}");
        let error = parse::<Envelope<Routing>>(b"not json").expect_err("not JSON");
        assert!(error.starts_with("body is not JSON"), "{error}");
        let error =
            parse::<Envelope<Transcription>>(br#"{"type":"t","data":{}}"#).expect_err("missing id");
        assert!(error.contains("conversation_id"), "{error}");
    }

    #[test]
    fn failure_numbers_come_from_either_body() {
        let twilio: Envelope<InitiationFailure> = parse(
            br#"{"type":"call_initiation_failure","data":{"conversation_id":"c","failure_reason":"busy","metadata":{"type":"twilio","body":{"CallSid":"CA1","From":"+11111111111","To":"+441111111111"}}}}"#,
        )
        .expect("twilio");
        assert_eq!(
            twilio.data.numbers(),
            (
                Some("+11111111111".into()),
                Some("+441111111111".into()),
                Some("CA1".into())
            )
        );
        let sip: Envelope<InitiationFailure> = parse(
            br#"{"type":"call_initiation_failure","data":{"conversation_id":"c","failure_reason":"weird","metadata":{"type":"sip","body":{"from_number":14155550100,"to_number":"+11111111111","call_sid":"d8e7"}}}}"#,
        )
        .expect("sip");
        assert_eq!(sip.data.numbers().0.as_deref(), Some("14155550100"));
        assert_eq!(sip.data.reason(), "unknown");
    }
}
