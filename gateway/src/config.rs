//! Gateway configuration, read from the environment once at start. Missing optional values
//! disable a feature with a log line; malformed values stop start-up naming the variable.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderName;

use callmesh_runtime::config::{env_or, env_parse, env_var};
use callmesh_runtime::db::DatabaseUrl;
use callmesh_runtime::{Component, ConfigError};

use crate::secret::{Secret, parse_list};

/// ElevenLabs' documented webhook egress addresses (all regions and residencies).
pub const ELEVENLABS_EGRESS_IPS: [&str; 12] = [
    "34.67.146.145",
    "34.59.11.47",
    "35.204.38.71",
    "34.147.113.54",
    "35.185.187.110",
    "35.247.157.189",
    "34.77.234.246",
    "34.140.184.144",
    "34.93.26.174",
    "34.93.252.69",
    "34.87.23.17",
    "34.126.179.103",
];

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The gateway's own database (the webhook inbox).
    pub database: DatabaseUrl,
    /// Where each service is reached, in `Component::SERVICES` order.
    pub service_urls: Vec<(Component, String)>,
    /// Bearer token of the admin API; the admin API is off without it.
    pub admin_token: Option<Secret>,
    pub elevenlabs: ElevenLabsConfig,
    pub inbox: InboxConfig,
    pub initiation: InitiationConfig,
    /// Name used in the minimal initiation answer when the mesh cannot say.
    pub default_organization_name: String,
    pub twilio: TwilioConfig,
    /// Follow-up settings of organizations that set none of their own.
    pub follow_up: FollowUpDefaults,
    pub http: HttpLimits,
    /// How long flows reuse an organization's settings and the owner of a number.
    pub organization_cache: Duration,
}

/// What one client may cost the HTTP server.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// A connection that has not sent a request's whole headers by then is closed.
    pub header_read_timeout: Duration,
    /// A request whose body has not arrived by then is answered 408.
    pub body_read_timeout: Duration,
    /// Open connections at once (live streams included); beyond it a new connection is
    /// answered 503 and closed.
    pub max_connections: usize,
    /// Requests at once on one HTTP/2 connection.
    pub max_streams_per_connection: u32,
}

impl HttpLimits {
    fn from_env() -> Result<Self, ConfigError> {
        let defaults = HttpLimits::default();
        let header_secs = env_parse(
            "HTTP_HEADER_READ_TIMEOUT_SECS",
            defaults.header_read_timeout.as_secs(),
        )?;
        if !(1..=30).contains(&header_secs) {
            return Err(ConfigError::invalid(
                "HTTP_HEADER_READ_TIMEOUT_SECS",
                "must be between 1 and 30",
            ));
        }
        let body_secs = env_parse(
            "HTTP_BODY_READ_TIMEOUT_SECS",
            defaults.body_read_timeout.as_secs(),
        )?;
        let max_connections = env_parse("HTTP_MAX_CONNECTIONS", defaults.max_connections)?;
        if body_secs == 0 || max_connections == 0 {
            return Err(ConfigError::invalid(
                if body_secs == 0 {
                    "HTTP_BODY_READ_TIMEOUT_SECS"
                } else {
                    "HTTP_MAX_CONNECTIONS"
                },
                "must be at least 1",
            ));
        }
        Ok(HttpLimits {
            header_read_timeout: Duration::from_secs(header_secs),
            body_read_timeout: Duration::from_secs(body_secs),
            max_connections,
            max_streams_per_connection: defaults.max_streams_per_connection,
        })
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(15),
            // Long enough for a whole call's audio on a slow link.
            body_read_timeout: Duration::from_secs(60),
            // Room for the 10,000 live subscribers a gateway is sized for.
            max_connections: 20_000,
            max_streams_per_connection: 256,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TwilioConfig {
    /// Auth tokens that sign Twilio's requests (the primary; a secondary while rotating).
    pub auth_tokens: Vec<Secret>,
    /// The scheme and host Twilio calls (`PUBLIC_BASE_URL`); TLS ends in front of us, so the
    /// signed URL is rebuilt from it.
    pub public_base_url: Option<String>,
    /// Number SMS go out from when the organization owns none.
    pub phone_number: Option<String>,
    pub max_body_bytes: usize,
    /// Where inbound calls stream to when an agent is configured.
    pub agent_stream_url: String,
    /// Start an agent call when an outbound SMS fails or is undelivered.
    pub call_on_sms_failure: bool,
    /// Outbound calls that end busy / no-answer / failed are retried this many times...
    pub call_retry_attempts: u32,
    /// ...this long apart.
    pub call_retry_spacing: Duration,
    /// An inbound SMS's automatic follow-ups (the auto-reply, the call back) reach one lead at
    /// most once per this period, however many texts it sends and whichever replica handles
    /// them (the cooldown is kept in the gateway database); zero answers every text.
    pub sms_follow_up_cooldown: Duration,
}

/// The mesh-wide follow-up policy; each organization's own settings override it field by field.
#[derive(Debug, Clone, Default)]
pub struct FollowUpDefaults {
    pub business_hours: String,
    pub sms_auto_reply: String,
    pub urgent_keywords: Vec<String>,
    pub call_score_threshold: u8,
    pub human_number: String,
    pub forward_number: String,
    pub agent_id: String,
    pub agent_phone_number_id: String,
}

#[derive(Debug, Clone)]
pub struct ElevenLabsConfig {
    pub post_call_secrets: Vec<Secret>,
    pub conversation_events_secrets: Vec<Secret>,
    pub call_status_secrets: Vec<Secret>,
    /// HMAC secrets for the initiation webhook, checked when a signature is present.
    pub initiation_secrets: Vec<Secret>,
    pub initiation_header: HeaderName,
    pub initiation_header_secret: Option<Secret>,
    /// Addresses allowed to post call-status updates when no call-status secret is set.
    pub allowed_ips: Vec<IpAddr>,
    /// Proxies in front of the gateway that append to `X-Forwarded-For`; the client is the
    /// entry the outermost of them added. 0: the socket peer is the client.
    pub trusted_proxies: usize,
    pub api_base_url: String,
    pub api_key: Option<Secret>,
    pub post_call_max_body_bytes: usize,
    pub max_body_bytes: usize,
    /// How long after a call completes its transcript must have arrived before it is fetched.
    pub transcript_grace: Duration,
    /// A non-final call status older than this is refreshed from the API when asked for.
    pub status_staleness: Duration,
    /// Agents that hold interviews: their finished calls also get an interview evaluation.
    pub interview_agent_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct InboxConfig {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long a claimed item stays claimed before another dispatcher may take it over.
    pub lease: Duration,
    pub poll_interval: Duration,
    /// How long an idle dispatcher, woken by a new webhook, waits before claiming, so the
    /// webhooks of that moment go through the services together: one transaction and one
    /// fsync in each service for all of them instead of one each. It adds at most this much
    /// to an item's lag and nothing to its ack; a dispatcher with work waiting never waits.
    pub batch_window: Duration,
    /// Flows running at once. Flows mostly wait on other services, so this is high.
    pub concurrency: usize,
    /// How long finished (`done`, `ignored`) items are kept.
    pub retention: Duration,
}

#[derive(Debug, Clone)]
pub struct InitiationConfig {
    pub deadline: Duration,
    pub rate_limit: u32,
    pub rate_window: Duration,
}

impl GatewayConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let shared = env_var("ELEVENLABS_WEBHOOK_SECRET")
            .map(|v| parse_list(&v))
            .unwrap_or_default();
        let per_endpoint = |name: &str| {
            env_var(name)
                .map(|v| parse_list(&v))
                .unwrap_or_else(|| shared.clone())
        };
        let header_name = env_or("ELEVENLABS_INITIATION_AUTH_HEADER", "X-Webhook-Secret");
        let initiation_header =
            HeaderName::try_from(header_name.to_ascii_lowercase()).map_err(|_| {
                ConfigError::invalid("ELEVENLABS_INITIATION_AUTH_HEADER", "not a header name")
            })?;
        let allowed_ips = match env_var("ELEVENLABS_ALLOWED_IPS") {
            Some(list) => parse_ips("ELEVENLABS_ALLOWED_IPS", &list)?,
            None => parse_ips("ELEVENLABS_ALLOWED_IPS", &ELEVENLABS_EGRESS_IPS.join(","))?,
        };
        let config = GatewayConfig {
            database: DatabaseUrl::from_env(Component::Gateway)?,
            service_urls: Component::SERVICES
                .into_iter()
                .map(|service| (service, service.service_url()))
                .collect(),
            admin_token: env_var("CALLMESH_ADMIN_TOKEN").map(Secret::new),
            elevenlabs: ElevenLabsConfig {
                post_call_secrets: per_endpoint("ELEVENLABS_POST_CALL_WEBHOOK_SECRET"),
                conversation_events_secrets: per_endpoint(
                    "ELEVENLABS_CONVERSATION_EVENTS_WEBHOOK_SECRET",
                ),
                call_status_secrets: per_endpoint("ELEVENLABS_CALL_STATUS_WEBHOOK_SECRET"),
                initiation_secrets: per_endpoint("ELEVENLABS_CONVERSATION_INITIATION_HMAC_SECRET"),
                initiation_header,
                initiation_header_secret: env_var(
                    "ELEVENLABS_CONVERSATION_INITIATION_WEBHOOK_SECRET",
                )
                .map(Secret::new),
                allowed_ips,
                trusted_proxies: match env_var("TRUSTED_PROXIES") {
                    Some(_) => env_parse("TRUSTED_PROXIES", 0)?,
                    // The older switch: one proxy.
                    None => usize::from(env_parse("TRUST_FORWARDED_FOR", false)?),
                },
                api_base_url: env_or("ELEVENLABS_API_BASE_URL", "https://api.elevenlabs.io"),
                api_key: env_var("ELEVENLABS_API_KEY").map(Secret::new),
                post_call_max_body_bytes: env_parse(
                    "ELEVENLABS_POST_CALL_MAX_BODY_BYTES",
                    64 * 1024 * 1024,
                )?,
                max_body_bytes: env_parse("WEBHOOK_MAX_BODY_BYTES", 1024 * 1024)?,
                transcript_grace: Duration::from_secs(env_parse("TRANSCRIPT_GRACE_SECS", 120)?),
                status_staleness: Duration::from_secs(env_parse("CALL_STATUS_STALE_SECS", 60)?),
                interview_agent_ids: env_var("ELEVENLABS_INTERVIEW_AGENT_IDS")
                    .map(|ids| {
                        ids.split(',')
                            .map(str::trim)
                            .filter(|id| !id.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            organization_cache: Duration::from_secs(env_parse("ORGANIZATION_CACHE_SECS", 5)?),
            inbox: InboxConfig {
                max_attempts: env_parse("INBOX_MAX_ATTEMPTS", 12)?,
                base_delay: Duration::from_millis(env_parse("INBOX_RETRY_BASE_MS", 1000)?),
                max_delay: Duration::from_millis(env_parse("INBOX_RETRY_MAX_MS", 300_000)?),
                lease: Duration::from_secs(env_parse("INBOX_LEASE_SECS", 10)?),
                poll_interval: Duration::from_millis(env_parse("INBOX_POLL_MS", 1000)?),
                batch_window: Duration::from_millis(env_parse("INBOX_BATCH_WINDOW_MS", 50)?),
                concurrency: env_parse("INBOX_CONCURRENCY", 1024)?,
                retention: Duration::from_secs(
                    env_parse::<u64>("INBOX_RETENTION_DAYS", 7)?.saturating_mul(86_400),
                ),
            },
            initiation: InitiationConfig {
                deadline: Duration::from_millis(env_parse("INITIATION_DEADLINE_MS", 2000)?),
                rate_limit: env_parse("INITIATION_RATE_LIMIT", 20)?,
                rate_window: Duration::from_secs(env_parse("INITIATION_RATE_WINDOW_SECS", 300)?),
            },
            default_organization_name: env_or("DEFAULT_ORGANIZATION_NAME", "Default Organization"),
            twilio: TwilioConfig {
                auth_tokens: env_var("TWILIO_AUTH_TOKEN")
                    .map(|v| parse_list(&v))
                    .unwrap_or_default(),
                public_base_url: env_var("PUBLIC_BASE_URL")
                    .map(|url| url.trim_end_matches('/').to_owned()),
                phone_number: env_var("TWILIO_PHONE_NUMBER"),
                max_body_bytes: env_parse("TWILIO_MAX_BODY_BYTES", 256 * 1024)?,
                agent_stream_url: env_or(
                    "ELEVENLABS_AGENT_STREAM_URL",
                    "wss://api.elevenlabs.io/v1/convai/conversation",
                ),
                call_on_sms_failure: env_parse("CALL_ON_SMS_FAILURE", true)?,
                call_retry_attempts: env_parse("CALL_RETRY_ATTEMPTS", 2)?,
                call_retry_spacing: Duration::from_secs(env_parse("CALL_RETRY_SPACING_SECS", 900)?),
                sms_follow_up_cooldown: Duration::from_secs(env_parse(
                    "SMS_FOLLOW_UP_COOLDOWN_SECS",
                    900,
                )?),
            },
            http: HttpLimits::from_env()?,
            follow_up: FollowUpDefaults {
                business_hours: env_or("BUSINESS_HOURS", ""),
                sms_auto_reply: env_or("SMS_AUTO_REPLY", ""),
                urgent_keywords: env_var("URGENT_KEYWORDS")
                    .map(|v| {
                        v.split(',')
                            .map(|k| k.trim().to_lowercase())
                            .filter(|k| !k.is_empty())
                            .collect()
                    })
                    .unwrap_or_else(default_urgent_keywords),
                call_score_threshold: env_parse("CALL_SCORE_THRESHOLD", 75)?,
                human_number: env_or("HUMAN_NUMBER", ""),
                forward_number: env_or("FORWARD_NUMBER", ""),
                agent_id: env_or("ELEVENLABS_AGENT_ID", ""),
                agent_phone_number_id: env_or("ELEVENLABS_AGENT_PHONE_NUMBER_ID", ""),
            },
        };
        if let Some(base) = &config.twilio.public_base_url
            && !(base.starts_with("https://") || base.starts_with("http://"))
        {
            return Err(ConfigError::invalid(
                "PUBLIC_BASE_URL",
                "expected https://host[:port][/prefix]",
            ));
        }
        config.log_disabled_features();
        Ok(config)
    }

    /// A configuration for tests and embedding: everything at its default, nothing secret set.
    pub fn new(database: DatabaseUrl, service_urls: Vec<(Component, String)>) -> Self {
        GatewayConfig {
            database,
            service_urls,
            admin_token: None,
            elevenlabs: ElevenLabsConfig {
                post_call_secrets: Vec::new(),
                conversation_events_secrets: Vec::new(),
                call_status_secrets: Vec::new(),
                initiation_secrets: Vec::new(),
                initiation_header: HeaderName::from_static("x-webhook-secret"),
                initiation_header_secret: None,
                allowed_ips: Vec::new(),
                trusted_proxies: 0,
                api_base_url: "https://api.elevenlabs.io".into(),
                api_key: None,
                post_call_max_body_bytes: 64 * 1024 * 1024,
                max_body_bytes: 1024 * 1024,
                transcript_grace: Duration::from_secs(120),
                status_staleness: Duration::from_secs(60),
                interview_agent_ids: Vec::new(),
            },
            organization_cache: Duration::from_secs(5),
            inbox: InboxConfig {
                max_attempts: 12,
                base_delay: Duration::from_millis(1000),
                max_delay: Duration::from_secs(300),
                lease: Duration::from_secs(10),
                poll_interval: Duration::from_millis(1000),
                batch_window: Duration::from_millis(50),
                concurrency: 1024,
                retention: Duration::from_secs(7 * 86_400),
            },
            initiation: InitiationConfig {
                deadline: Duration::from_millis(2000),
                rate_limit: 20,
                rate_window: Duration::from_secs(300),
            },
            default_organization_name: "Default Organization".into(),
            twilio: TwilioConfig {
                auth_tokens: Vec::new(),
                public_base_url: None,
                phone_number: None,
                max_body_bytes: 256 * 1024,
                agent_stream_url: "wss://api.elevenlabs.io/v1/convai/conversation".into(),
                call_on_sms_failure: true,
                call_retry_attempts: 2,
                call_retry_spacing: Duration::from_secs(900),
                sms_follow_up_cooldown: Duration::from_secs(900),
            },
            http: HttpLimits::default(),
            follow_up: FollowUpDefaults {
                urgent_keywords: default_urgent_keywords(),
                call_score_threshold: 75,
                ..FollowUpDefaults::default()
            },
        }
    }

    fn log_disabled_features(&self) {
        let el = &self.elevenlabs;
        if el.post_call_secrets.is_empty() {
            tracing::warn!(
                "ELEVENLABS_WEBHOOK_SECRET (or ELEVENLABS_POST_CALL_WEBHOOK_SECRET) is not set: post-call webhooks are refused with 503"
            );
        }
        if el.conversation_events_secrets.is_empty() {
            tracing::warn!(
                "no conversation-events secret: conversation-events webhooks are refused with 503"
            );
        }
        if el.initiation_header_secret.is_none() && el.initiation_secrets.is_empty() {
            tracing::warn!(
                "ELEVENLABS_CONVERSATION_INITIATION_WEBHOOK_SECRET is not set: conversation-initiation webhooks are refused with 503"
            );
        }
        if el.api_key.is_none() {
            tracing::warn!(
                "ELEVENLABS_API_KEY is not set: missing transcripts and stale call states are not fetched from ElevenLabs"
            );
        }
        if self.twilio.auth_tokens.is_empty() || self.twilio.public_base_url.is_none() {
            tracing::warn!(
                "TWILIO_AUTH_TOKEN or PUBLIC_BASE_URL is not set: Twilio webhooks are refused with 503"
            );
        }
        if self.admin_token.is_none() {
            tracing::warn!(
                "CALLMESH_ADMIN_TOKEN is not set: the admin API (inbox, agent call status) is refused with 503"
            );
        }
    }
}

fn default_urgent_keywords() -> Vec<String> {
    ["emergency", "help", "urgent", "call me", "asap"]
        .into_iter()
        .map(String::from)
        .collect()
}

fn parse_ips(variable: &str, list: &str) -> Result<Vec<IpAddr>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|ip| {
            ip.parse()
                .map_err(|_| ConfigError::invalid(variable, format!("{ip:?} is not an IP address")))
        })
        .collect()
}
