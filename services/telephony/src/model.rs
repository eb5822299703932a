//! Domain types of the telephony service: calls and their status machine.

use chrono::{DateTime, Utc};

/// Call states in the order a call moves through them. Terminal states never give way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    /// Known to callmesh (e.g. its audio arrived first) before any status.
    Pending,
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Canceled,
    Failed,
}

impl CallStatus {
    pub const ALL: [CallStatus; 10] = [
        CallStatus::Pending,
        CallStatus::Queued,
        CallStatus::Initiated,
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Completed,
        CallStatus::Busy,
        CallStatus::NoAnswer,
        CallStatus::Canceled,
        CallStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Pending => "pending",
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in_progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no_answer",
            CallStatus::Canceled => "canceled",
            CallStatus::Failed => "failed",
        }
    }

    pub fn from_stored(text: &str) -> Option<CallStatus> {
        CallStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    fn rank(self) -> u8 {
        match self {
            CallStatus::Pending => 0,
            CallStatus::Queued => 1,
            CallStatus::Initiated => 2,
            CallStatus::Ringing => 3,
            CallStatus::InProgress => 4,
            CallStatus::Completed
            | CallStatus::Busy
            | CallStatus::NoAnswer
            | CallStatus::Canceled
            | CallStatus::Failed => 5,
        }
    }

    pub fn is_terminal(self) -> bool {
        self.rank() == 5
    }

    /// Whether a call in `self` moves to `next`: only forward, and never out of a terminal state.
    pub fn advances_to(self, next: CallStatus) -> bool {
        next.rank() > self.rank()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Unknown,
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Unknown => "",
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    pub fn from_stored(text: &str) -> Direction {
        match text {
            "inbound" => Direction::Inbound,
            "outbound" => Direction::Outbound,
            _ => Direction::Unknown,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub id: String,
    pub organization_id: String,
    pub lead_id: String,
    pub conversation_id: Option<String>,
    pub call_sid: Option<String>,
    pub agent_id: String,
    pub direction: Direction,
    pub status: CallStatus,
    pub from_number: String,
    pub to_number: String,
    pub duration_secs: u32,
    pub cost: f64,
    pub termination_reason: String,
    pub answered_by: String,
    pub last_sequence_number: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which call: by callmesh id, provider CallSid, or ElevenLabs conversation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallRef {
    Id(String),
    Sid(String),
    Conversation(String),
}

/// A finished (or failed) call as the provider reports it.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub organization_id: String,
    pub lead_id: String,
    pub conversation_id: Option<String>,
    pub call_sid: Option<String>,
    pub agent_id: String,
    pub direction: Direction,
    pub status: CallStatus,
    pub from_number: String,
    pub to_number: String,
    pub duration_secs: u32,
    pub cost: f64,
    pub termination_reason: String,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// One status callback.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    pub call: CallRef,
    pub status: CallStatus,
    pub sequence_number: i64,
    pub duration_secs: u32,
    pub answered_by: String,
    pub reason: String,
    pub raw_payload_json: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub call_id: String,
    pub status: CallStatus,
    pub sequence_number: i64,
    pub applied: bool,
    pub raw_payload_json: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub id: String,
    pub call_id: String,
    pub recording_sid: Option<String>,
    /// Relative to the storage directory.
    pub storage_path: String,
    pub content_type: String,
    pub duration_secs: u32,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_only_move_forward() {
        use CallStatus::*;
        assert!(Pending.advances_to(Ringing));
        assert!(Ringing.advances_to(InProgress));
        assert!(InProgress.advances_to(Completed));
        assert!(
            !InProgress.advances_to(Ringing),
            "a late ringing changes nothing"
        );
        assert!(
            !Completed.advances_to(Failed),
            "terminal states never give way"
        );
        assert!(!Busy.advances_to(Completed));
        for status in CallStatus::ALL {
            assert_eq!(CallStatus::from_stored(status.as_str()), Some(status));
        }
    }
}
