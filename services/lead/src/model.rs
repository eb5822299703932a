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
