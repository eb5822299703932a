//! Domain types of conversation memory.

use chrono::{DateTime, Utc};

use callmesh_runtime::stored_enum;

stored_enum!(Channel { Voice => "voice", Sms => "sms" });

stored_enum!(
    /// Who spoke or wrote.
    Role {
        User => "user",
        Agent => "agent",
        Operator => "operator",
        System => "system",
    }
);

impl Role {
    /// How the role reads in the agent's prompt.
    pub fn speaker(self) -> &'static str {
        match self {
            Role::User => "Customer",
            Role::Agent => "Agent",
            Role::Operator => "Staff",
            Role::System => "System",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub organization_id: String,
    pub lead_id: String,
    pub channel: Channel,
    pub role: Role,
    pub content: String,
    pub conversation_id: String,
    pub external_id: String,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub organization_id: String,
    pub lead_id: String,
    pub channel: Channel,
    pub role: Role,
    pub content: String,
    pub conversation_id: String,
    pub external_id: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Turn {
    pub role: Role,
    pub message: String,
    pub time_in_call_secs: f64,
}

#[derive(Debug, Clone)]
pub struct NewTranscript {
    pub organization_id: String,
    pub lead_id: String,
    pub conversation_id: String,
    pub channel: Channel,
    pub turns: Vec<Turn>,
    pub summary: String,
    pub started_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    pub conversation_id: String,
    pub organization_id: String,
    pub lead_id: String,
    pub summary: String,
    pub turn_count: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationEvent {
    pub id: String,
    pub organization_id: String,
    pub lead_id: String,
    pub conversation_id: String,
    pub event_type: String,
    pub data_json: String,
    pub occurred_at: DateTime<Utc>,
}

/// What the lead service knows about the caller, as the initiation data needs it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub organization_id: String,
    pub organization_name: String,
    pub lead_id: String,
    pub name: String,
    pub summary: String,
    /// False when this call created the lead.
    pub existing: bool,
}

/// The dynamic variables for a call about to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiationData {
    pub conversation_context: String,
    pub customer_name: String,
    pub organization_name: String,
    pub organization_id: String,
    pub lead_status: String,
    pub previous_summary: String,
    pub caller_type: String,
    pub has_conversation_history: bool,
    pub total_messages: u32,
    pub lead_id: String,
}
