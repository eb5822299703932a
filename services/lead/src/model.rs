//! Domain types of the lead service. They know nothing of gRPC or SQL.

use callmesh_runtime::stored_enum;
use chrono::{DateTime, Utc};

use crate::phone::PhoneNumber;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub timezone: chrono_tz::Tz,
    pub phone_numbers: Vec<PhoneNumber>,
    pub is_default: bool,
    pub settings: OrganizationSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How an organization follows up; empty fields mean "the mesh's default".
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct OrganizationSettings {
    pub business_hours: String,
    pub sms_auto_reply: String,
    pub urgent_keywords: Vec<String>,
    pub call_score_threshold: u8,
    pub human_number: Option<PhoneNumber>,
    pub forward_number: Option<PhoneNumber>,
    pub agent_id: String,
    pub agent_phone_number_id: String,
    pub crm_webhook_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub id: String,
    pub organization_id: String,
    pub phone_number: PhoneNumber,
    pub name: String,
    /// Where `name` came from; `None` while the lead has no name.
    pub name_source: Option<NameSource>,
    /// What shows a name callmesh heard: the caller's sentence, or the agent's rationale.
    pub name_evidence: String,
    pub email: String,
    pub status: LeadStatus,
    pub score: u8,
    /// `None` until the lead is first scored.
    pub tier: Option<LeadTier>,
    pub summary: String,
    pub interaction_count: u32,
    pub last_contact_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_outcome: Option<ContactOutcome>,
    pub source: String,
    pub notes: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

stored_enum!(
    /// Where a lead stands in the funnel.
    LeadStatus {
        New => "new",
        Contacted => "contacted",
        Qualified => "qualified",
        Converted => "converted",
        Lost => "lost",
        DoNotContact => "do_not_contact",
    }
);

stored_enum!(
    /// Hot >= 80, Warm 50-79, Cold < 50.
    LeadTier {
        Cold => "cold",
        Warm => "warm",
        Hot => "hot",
    }
);

stored_enum!(
    /// Where a lead's name came from, in the order of trust: a person's word is final, the
    /// agent's collected name beats one read from the caller's own words.
    NameSource {
        Person => "person",
        Agent => "agent",
        Caller => "caller",
    }
);

impl NameSource {
    fn rank(self) -> u8 {
        match self {
            NameSource::Caller => 1,
            NameSource::Agent => 2,
            NameSource::Person => 3,
        }
    }

    /// Whether a name from `heard` may replace a name from `self`: never a person's; an agent's
    /// collected name replaces a caller's words or an earlier collected name; a caller's words
    /// only ever fill a gap (see [`HeardName`]).
    pub fn yields_to(self, heard: NameSource) -> bool {
        self != NameSource::Person && heard != NameSource::Caller && heard.rank() >= self.rank()
    }
}

/// A name a conversation gave for its caller: the agent collected it or the caller said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeardName {
    pub name: String,
    /// `Agent` or `Caller`; a `Person` here is treated as `Agent`.
    pub source: NameSource,
    pub evidence: String,
}

stored_enum!(
    ContactOutcome {
        Connected => "connected",
        NoAnswer => "no_answer",
        Busy => "busy",
        Voicemail => "voicemail",
        Failed => "failed",
        Delivered => "delivered",
    }
);

stored_enum!(
    Channel {
        Voice => "voice",
        Sms => "sms",
    }
);

impl LeadTier {
    /// The tier a score falls in.
    pub fn for_score(score: u8) -> LeadTier {
        match score {
            80.. => LeadTier::Hot,
            50..=79 => LeadTier::Warm,
            _ => LeadTier::Cold,
        }
    }
}

/// An organization to create.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub name: String,
    pub timezone: chrono_tz::Tz,
    pub phone_numbers: Vec<PhoneNumber>,
    pub settings: OrganizationSettings,
}

/// Who to find or create.
#[derive(Debug, Clone)]
pub struct LeadContact {
    pub organization_id: String,
    pub phone_number: PhoneNumber,
    /// Used only when the lead is created.
    pub name: String,
    pub email: String,
    pub source: String,
}

/// Fields to change on a lead; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct LeadChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub status: Option<LeadStatus>,
    pub notes: Option<String>,
}

/// What a finished conversation's analysis says about its lead.
#[derive(Debug, Clone)]
pub struct AnalysisOutcome {
    pub lead_id: String,
    pub conversation_id: String,
    pub score: u8,
    pub tier: LeadTier,
    pub summary: String,
    pub status: Option<LeadStatus>,
    pub occurred_at: DateTime<Utc>,
    /// A re-analysis of a conversation already counted: no new interaction or contact.
    pub revision: bool,
    /// The caller's name, when the conversation gave one.
    pub heard_name: Option<HeardName>,
}

/// Which leads a list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadFilter {
    pub status: Option<LeadStatus>,
    pub tier: Option<LeadTier>,
    /// Name, phone or email contains this (case-insensitive); phone by its digits.
    pub query: Option<String>,
}

/// The order of a lead list; ties are broken by id (creation order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LeadOrder {
    #[default]
    Oldest,
    /// Highest score first.
    Score,
    /// Most recent contact first, never-contacted leads last.
    LastContact,
}

/// Where the previous page of an ordered list ended: its last row's sort key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadCursor {
    Oldest {
        id: String,
    },
    Score {
        score: i32,
        id: String,
    },
    LastContact {
        at: Option<DateTime<Utc>>,
        id: String,
    },
}

impl LeadCursor {
    /// The cursor after `lead` in `order`.
    pub fn after(order: LeadOrder, lead: &Lead) -> LeadCursor {
        let id = lead.id.clone();
        match order {
            LeadOrder::Oldest => LeadCursor::Oldest { id },
            LeadOrder::Score => LeadCursor::Score {
                score: i32::from(lead.score),
                id,
            },
            LeadOrder::LastContact => LeadCursor::LastContact {
                at: lead.last_contact_at,
                id,
            },
        }
    }

    /// The page token: the bare id for the default order (as before), else `s.<score>.<id>` or
    /// `c.<unix nanos, or "-" for never>.<id>`.
    pub fn to_token(&self) -> String {
        match self {
            LeadCursor::Oldest { id } => id.clone(),
            LeadCursor::Score { score, id } => format!("s.{score}.{id}"),
            LeadCursor::LastContact { at, id } => {
                let at = at
                    .and_then(|t| t.timestamp_nanos_opt())
                    .map_or_else(|| "-".to_owned(), |n| n.to_string());
                format!("c.{at}.{id}")
            }
        }
    }

    /// Reads a token of `order`; `None` for anything else (a token of another order included).
    pub fn parse(order: LeadOrder, token: &str) -> Option<LeadCursor> {
        let valid_id = |id: &str| uuid::Uuid::try_parse(id).is_ok().then(|| id.to_owned());
        match order {
            LeadOrder::Oldest => valid_id(token).map(|id| LeadCursor::Oldest { id }),
            LeadOrder::Score => {
                let (score, id) = token.strip_prefix("s.")?.split_once('.')?;
                Some(LeadCursor::Score {
                    score: score.parse().ok()?,
                    id: valid_id(id)?,
                })
            }
            LeadOrder::LastContact => {
                let (at, id) = token.strip_prefix("c.")?.split_once('.')?;
                let at = match at {
                    "-" => None,
                    nanos => Some(DateTime::from_timestamp_nanos(nanos.parse().ok()?)),
                };
                Some(LeadCursor::LastContact {
                    at,
                    id: valid_id(id)?,
                })
            }
        }
    }
}

/// An attempt to reach a lead.
#[derive(Debug, Clone)]
pub struct ContactAttempt {
    pub lead_id: String,
    pub channel: Channel,
    pub outcome: ContactOutcome,
    pub attempted_at: DateTime<Utc>,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_the_documented_thresholds() {
        assert_eq!(LeadTier::for_score(100), LeadTier::Hot);
        assert_eq!(LeadTier::for_score(80), LeadTier::Hot);
        assert_eq!(LeadTier::for_score(79), LeadTier::Warm);
        assert_eq!(LeadTier::for_score(50), LeadTier::Warm);
        assert_eq!(LeadTier::for_score(49), LeadTier::Cold);
        assert_eq!(LeadTier::for_score(0), LeadTier::Cold);
    }

    #[test]
    fn a_person_named_lead_keeps_its_name() {
        use NameSource::*;
        assert!(!Person.yields_to(Agent));
        assert!(!Person.yields_to(Caller));
        assert!(Caller.yields_to(Agent));
        assert!(Agent.yields_to(Agent));
        assert!(!Agent.yields_to(Caller));
        assert!(!Caller.yields_to(Caller));
    }

    #[test]
    fn cursors_round_trip_and_belong_to_their_order() {
        let id = "0193a3c2-7a44-7c10-8e5e-1f0b2f9b1a11".to_owned();
        let at = DateTime::from_timestamp_nanos(1_764_495_000_123_456_000);
        for (order, cursor) in [
            (LeadOrder::Oldest, LeadCursor::Oldest { id: id.clone() }),
            (
                LeadOrder::Score,
                LeadCursor::Score {
                    score: 87,
                    id: id.clone(),
                },
            ),
            (
                LeadOrder::LastContact,
                LeadCursor::LastContact {
                    at: Some(at),
                    id: id.clone(),
                },
            ),
            (
                LeadOrder::LastContact,
                LeadCursor::LastContact {
                    at: None,
                    id: id.clone(),
                },
            ),
        ] {
            assert_eq!(LeadCursor::parse(order, &cursor.to_token()), Some(cursor));
        }
        assert_eq!(LeadCursor::parse(LeadOrder::Score, &id), None);
        assert_eq!(LeadCursor::parse(LeadOrder::Oldest, "s.5.x"), None);
        assert_eq!(LeadCursor::parse(LeadOrder::LastContact, "c.abc.x"), None);
    }

    #[test]
    fn stored_names_round_trip() {
        for status in [
            LeadStatus::New,
            LeadStatus::Contacted,
            LeadStatus::Qualified,
            LeadStatus::Converted,
            LeadStatus::Lost,
            LeadStatus::DoNotContact,
        ] {
            assert_eq!(LeadStatus::from_stored(status.as_str()), Some(status));
        }
        assert_eq!(LeadStatus::from_stored("nonsense"), None);
    }
}
