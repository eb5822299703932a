//! `callmesh webhook send <elevenlabs|twilio> <event> [--file F]`: signs a sample payload (or
//! the given one) the way the provider does, with the secret the gateway is configured with,
//! and posts it to the gateway, so a call or a text can be watched flowing through the mesh
//! without a provider account.
//!
//! The secrets, numbers and `PUBLIC_BASE_URL` are read from the gateway's own configuration
//! (the same variables, `GatewayConfig::from_env`), and the signatures are made by the
//! gateway's signing code, so what this sends is what the gateway verifies.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use callmesh_gateway::GatewayConfig;
use callmesh_gateway::verify::{elevenlabs, twilio};

use crate::gateway::{Gateway, GatewayArgs};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Provider {
    Elevenlabs,
    Twilio,
}

#[derive(Args)]
pub struct SendArgs {
    /// Who the webhook is from.
    provider: Provider,
    /// ElevenLabs: post-call, conversation-initiation, conversation-event, call-status.
    /// Twilio: sms, sms-status, voice-status, voice-incoming, recording.
    event: String,
    /// Send this payload (JSON for ElevenLabs, a form body for Twilio) instead of the sample.
    #[arg(long)]
    file: Option<PathBuf>,
    /// The caller's number in the sample.
    #[arg(long, default_value = "+14155550123")]
    from: String,
    #[command(flatten)]
    gateway: GatewayArgs,
}

/// One kind of webhook: where it goes and how its sample reads.
struct Event {
    path: &'static str,
    sample: fn(&Sample) -> String,
}

/// What a sample is made of: fresh ids (so a second send is a new event, not a duplicate),
/// the caller's number and the business's.
struct Sample {
    id: String,
    now: i64,
    from: String,
    to: String,
}

const ELEVENLABS_EVENTS: &[(&str, Event)] = &[
    (
        "post-call",
        Event {
            path: "/api/webhooks/elevenlabs/post-call",
            sample: post_call,
        },
    ),
    (
        "conversation-initiation",
        Event {
            path: "/api/webhooks/elevenlabs/conversation-initiation",
            sample: |s| {
                json!({"caller_id": s.from, "agent_id": "agent_cli_sample",
                       "called_number": s.to, "call_sid": format!("CA{}", s.id)})
                .to_string()
            },
        },
    ),
    (
        "conversation-event",
        Event {
            path: "/api/webhooks/elevenlabs/conversation-events",
            sample: |s| {
                json!({"type": "agent_response", "conversation_id": format!("conv_{}", s.id),
                       "timestamp": s.now,
                       "data": {"agent_response": "Hi, thanks for calling. How can I help?"}})
                .to_string()
            },
        },
    ),
    (
        "call-status",
        Event {
            path: "/api/webhooks/elevenlabs/call-status",
            sample: |s| {
                json!({"event_type": "call.ringing", "conversation_id": format!("conv_{}", s.id),
                       "callSid": format!("CA{}", s.id)})
                .to_string()
            },
        },
    ),
];

const TWILIO_EVENTS: &[(&str, Event)] = &[
    (
        "sms",
        Event {
            path: "/api/webhooks/twilio/sms/incoming",
            sample: |s| {
                form(&[
                    ("AccountSid", ACCOUNT),
                    ("ApiVersion", "2010-04-01"),
                    (
                        "Body",
                        "Hi, do you have the Metro e-bike in stock? I'd like to come by this week.",
                    ),
                    ("From", &s.from),
                    ("MessageSid", &format!("SM{}", s.id)),
                    ("NumMedia", "0"),
                    ("SmsStatus", "received"),
                    ("To", &s.to),
                ])
            },
        },
    ),
    (
        "sms-status",
        Event {
            path: "/api/webhooks/twilio/sms/status",
            sample: |s| {
                form(&[
                    ("AccountSid", ACCOUNT),
                    ("From", &s.to),
                    ("MessageSid", &format!("SM{}", s.id)),
                    ("MessageStatus", "delivered"),
                    ("To", &s.from),
                ])
            },
        },
    ),
    (
        "voice-status",
        Event {
            path: "/api/webhooks/twilio/voice/status",
            sample: |s| {
                form(&[
                    ("AccountSid", ACCOUNT),
                    ("CallDuration", "42"),
                    ("CallSid", &format!("CA{}", s.id)),
                    ("CallStatus", "completed"),
                    ("Direction", "inbound"),
                    ("From", &s.from),
                    ("SequenceNumber", "3"),
                    ("To", &s.to),
                ])
            },
        },
    ),
    (
        "voice-incoming",
        Event {
            path: "/api/webhooks/twilio/voice/incoming",
            sample: |s| {
                form(&[
                    ("AccountSid", ACCOUNT),
                    ("CallSid", &format!("CA{}", s.id)),
                    ("CallStatus", "ringing"),
                    ("Direction", "inbound"),
                    ("From", &s.from),
                    ("To", &s.to),
                ])
            },
        },
    ),
    (
        "recording",
        Event {
            path: "/api/webhooks/twilio/voice/recording",
            sample: |s| {
                form(&[
                    ("AccountSid", ACCOUNT),
                    ("CallSid", &format!("CA{}", s.id)),
                    ("RecordingDuration", "42"),
                    ("RecordingSid", &format!("RE{}", s.id)),
                    ("RecordingStatus", "absent"),
                ])
            },
        },
    ),
];

const ACCOUNT: &str = "AC00000000000000000000000000000000";

fn post_call(s: &Sample) -> String {
    let mut payload: Value =
        serde_json::from_str(include_str!("samples/elevenlabs_post_call.json"))
            .unwrap_or(Value::Null);
    payload["event_timestamp"] = json!(s.now);
    payload["data"]["conversation_id"] = json!(format!("conv_{}", s.id));
    let call = &mut payload["data"]["metadata"];
    call["start_time_unix_secs"] = json!(s.now - 90);
    call["phone_call"]["external_number"] = json!(s.from);
    call["phone_call"]["agent_number"] = json!(s.to);
    call["phone_call"]["call_sid"] = json!(format!("CA{}", s.id));
    payload.to_string()
}

fn form(fields: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

fn names(events: &[(&str, Event)]) -> String {
    events
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn send(args: SendArgs) -> anyhow::Result<()> {
    let config = GatewayConfig::from_env().context("reading the gateway's configuration")?;
    let events = match args.provider {
        Provider::Elevenlabs => ELEVENLABS_EVENTS,
        Provider::Twilio => TWILIO_EVENTS,
    };
    let Some((_, event)) = events.iter().find(|(name, _)| *name == args.event) else {
        bail!(
            "no {:?} event {:?}: one of {}",
            args.provider,
            args.event,
            names(events)
        );
    };
    let body = match &args.file {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => {
            let id = uuid::Uuid::now_v7().simple().to_string();
            let sample = Sample {
                id,
                now: chrono::Utc::now().timestamp(),
                from: args.from.clone(),
                to: config
                    .twilio
                    .phone_number
                    .clone()
                    .unwrap_or_else(|| "+14155550100".to_owned()),
            };
            (event.sample)(&sample).into_bytes()
        }
    };
    let gateway = Gateway::new(&args.gateway)?;
    let mut request = gateway.post(event.path).body(body.clone());
    match args.provider {
        Provider::Elevenlabs => {
            request = request.header("content-type", "application/json");
            let el = &config.elevenlabs;
            let (secrets, variable) = match args.event.as_str() {
                "post-call" => (&el.post_call_secrets, "ELEVENLABS_POST_CALL_WEBHOOK_SECRET"),
                "conversation-event" => (
                    &el.conversation_events_secrets,
                    "ELEVENLABS_CONVERSATION_EVENTS_WEBHOOK_SECRET",
                ),
                "call-status" => (
                    &el.call_status_secrets,
                    "ELEVENLABS_CALL_STATUS_WEBHOOK_SECRET",
                ),
                _ => (
                    &el.initiation_secrets,
                    "ELEVENLABS_CONVERSATION_INITIATION_HMAC_SECRET",
                ),
            };
            if args.event == "conversation-initiation" {
                // The header ElevenLabs is configured to send; a signature as well when an HMAC
                // secret is configured for it.
                match &el.initiation_header_secret {
                    Some(secret) => {
                        request = request.header(el.initiation_header.as_str(), secret.expose());
                    }
                    None if secrets.is_empty() => {
                        bail!("ELEVENLABS_CONVERSATION_INITIATION_WEBHOOK_SECRET is not set");
                    }
                    None => {}
                }
            } else if secrets.is_empty() {
                bail!("{variable} (or ELEVENLABS_WEBHOOK_SECRET) is not set: nothing to sign with");
            }
            if let Some(secret) = secrets.first() {
                let signature =
                    elevenlabs::sign(secret.expose(), chrono::Utc::now().timestamp(), &body);
                request = request.header(elevenlabs::HEADER, signature);
            }
        }
        Provider::Twilio => {
            let Some(token) = config.twilio.auth_tokens.first() else {
                bail!("TWILIO_AUTH_TOKEN is not set: nothing to sign with");
            };
            let Some(base) = &config.twilio.public_base_url else {
                bail!("PUBLIC_BASE_URL is not set: Twilio signs the URL it calls, so it is needed");
            };
            // Twilio signs the public URL it called, not the address this posts to.
            let url = format!("{base}{}", event.path);
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .header(twilio::HEADER, twilio::sign(token.expose(), &url, &body));
        }
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the gateway at {}", gateway.url))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("POST {} -> {status}", event.path);
    println!("{text}");
    if !status.is_success() {
        bail!("the gateway refused the webhook ({status})");
    }
    Ok(())
}
