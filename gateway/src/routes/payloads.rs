//! Webhook bodies as the OpenAPI document describes them. The handlers read raw bytes (the
//! signature is over them) and parse them with `elevenlabs::payload` or as a Twilio form;
//! these types say what those parsers require, for integrators and for schemathesis.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// `ElevenLabs-Signature: t=<unix seconds>,v0=<hex HMAC-SHA256 of "<t>.<body>">` with the
/// endpoint's secret; at most 30 minutes old.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ElevenLabsSignature {
    #[param(
        rename = "ElevenLabs-Signature",
        required = true,
        pattern = "^t=[0-9]+,v0=[0-9a-f]+"
    )]
    signature: String,
}

/// `X-Twilio-Signature`: base64 HMAC-SHA1, with the auth token, of `PUBLIC_BASE_URL` + path
/// and query as received, followed by every form field's name and value sorted by name.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct TwilioSignature {
    #[param(rename = "X-Twilio-Signature", required = true)]
    signature: String,
}

/// The conversation-initiation webhook's secrets: the header ElevenLabs is configured to send
/// (`ELEVENLABS_INITIATION_AUTH_HEADER`, `X-Webhook-Secret` by default) with
/// `ELEVENLABS_CONVERSATION_INITIATION_WEBHOOK_SECRET`, and an `ElevenLabs-Signature`, verified
/// too when present (required when no header secret is configured).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct InitiationSecrets {
    #[param(rename = "X-Webhook-Secret")]
    secret: Option<String>,
    #[param(rename = "ElevenLabs-Signature")]
    signature: Option<String>,
}

/// A post-call webhook: `post_call_transcription`, `post_call_audio` or
/// `call_initiation_failure` (other types are stored and ignored).
#[derive(ToSchema)]
pub struct PostCallWebhook {
    #[schema(rename = "type", example = "post_call_transcription")]
    kind: String,
    /// Unix seconds.
    event_timestamp: Option<i64>,
    data: PostCallData,
}

/// The fields callmesh needs; everything else ElevenLabs sends is kept as received.
#[derive(ToSchema)]
pub struct PostCallData {
    /// Required for the three handled types.
    conversation_id: Option<String>,
    agent_id: Option<String>,
    /// `[{role: "user"|"agent", message, time_in_call_secs}]` (transcription).
    transcript: Option<Vec<Value>>,
    /// Call metadata (`phone_call.external_number`, `call_duration_secs`, ...).
    metadata: Option<BTreeMap<String, Value>>,
    /// ElevenLabs' own analysis, merged into callmesh's.
    analysis: Option<BTreeMap<String, Value>>,
    /// Base64 MP3 (`post_call_audio`).
    full_audio: Option<String>,
}

/// A relayed live agent event.
#[derive(ToSchema)]
pub struct ConversationEventWebhook {
    /// Also accepted as `event_type`.
    #[schema(rename = "type", example = "agent_response")]
    kind: String,
    #[schema(min_length = 1)]
    conversation_id: String,
    /// Unix seconds.
    timestamp: Option<f64>,
    data: Option<Value>,
}

/// A `call.*` status update: `call.initiated`, `call.ringing`, `call.answered`,
/// `call.completed`, `call.busy`, `call.no_answer`, `call.failed`, ... (unknown names are
/// stored and ignored).
#[derive(ToSchema)]
pub struct CallStatusWebhook {
    /// Also accepted as `type` or `event`.
    #[schema(example = "call.ringing")]
    event_type: String,
    /// This or `callSid` is required for a known event.
    conversation_id: Option<String>,
    /// Also accepted as `call_sid`.
    #[schema(rename = "callSid")]
    call_sid: Option<String>,
    failure_reason: Option<String>,
    error_message: Option<String>,
    message: Option<String>,
}

/// What ElevenLabs sends while the phone rings (numbers may come as strings or numbers).
#[derive(ToSchema)]
pub struct InitiationWebhook {
    /// The caller's number.
    caller_id: Option<String>,
    agent_id: Option<String>,
    /// The business's number that was called.
    called_number: Option<String>,
    call_sid: Option<String>,
    call_id: Option<String>,
}

/// An incoming SMS (Twilio's form; other fields are kept as received).
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct TwilioSmsIncoming {
    #[schema(min_length = 1)]
    MessageSid: String,
    #[schema(min_length = 1)]
    From: String,
    #[schema(min_length = 1)]
    To: String,
    Body: Option<String>,
}

/// An SMS status callback.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct TwilioSmsStatus {
    #[schema(min_length = 1)]
    MessageSid: String,
    /// `queued`, `sent`, `delivered`, `undelivered`, `failed`, ...
    #[schema(min_length = 1)]
    MessageStatus: String,
    ErrorCode: Option<String>,
}

/// A voice status callback.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct TwilioVoiceStatus {
    #[schema(min_length = 1)]
    CallSid: String,
    /// `queued`, `ringing`, `in-progress`, `completed`, `busy`, `no-answer`, `failed`, ...
    #[schema(min_length = 1)]
    CallStatus: String,
    /// Orders callbacks that arrive out of order.
    SequenceNumber: Option<String>,
    CallDuration: Option<String>,
    AnsweredBy: Option<String>,
}

/// A recording status callback.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct TwilioRecording {
    #[schema(min_length = 1)]
    RecordingSid: String,
    /// `in-progress`, `completed`, `absent`, `failed`.
    #[schema(min_length = 1)]
    RecordingStatus: String,
    CallSid: Option<String>,
    RecordingUrl: Option<String>,
    RecordingDuration: Option<String>,
}

/// An incoming call.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct TwilioVoiceIncoming {
    #[schema(min_length = 1)]
    CallSid: String,
    From: Option<String>,
    To: Option<String>,
}
