//! The follow-up policy: an organization's own settings over the mesh's defaults, business
//! hours read in the organization's time zone, and what makes an SMS urgent.

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

use callmesh_proto::lead::v1 as lead_pb;

use crate::config::FollowUpDefaults;

/// The settings that apply to one organization.
#[derive(Debug, Clone)]
pub struct FollowUp {
    pub organization_name: String,
    pub timezone: Tz,
    pub business_hours: String,
    pub sms_auto_reply: String,
    pub urgent_keywords: Vec<String>,
    pub call_score_threshold: u8,
    pub human_number: String,
    pub forward_number: String,
    pub agent_id: String,
    pub agent_phone_number_id: String,
    /// The number the organization texts and calls from.
    pub own_number: String,
    /// The organization's own CRM webhook (empty: the mesh's `CRM_WEBHOOK_URL`).
    pub crm_webhook_url: String,
}

impl FollowUp {
    pub fn of(
        organization: &lead_pb::Organization,
        defaults: &FollowUpDefaults,
        fallback_number: Option<&str>,
    ) -> Self {
        let settings = organization.settings.clone().unwrap_or_default();
        let pick = |own: String, default: &str| {
            if own.trim().is_empty() {
                default.to_owned()
            } else {
                own
            }
        };
        FollowUp {
            organization_name: organization.name.clone(),
            timezone: organization.timezone.parse().unwrap_or(chrono_tz::UTC),
            business_hours: pick(settings.business_hours, &defaults.business_hours),
            sms_auto_reply: pick(settings.sms_auto_reply, &defaults.sms_auto_reply),
            urgent_keywords: if settings.urgent_keywords.is_empty() {
                defaults.urgent_keywords.clone()
            } else {
                settings.urgent_keywords
            },
            call_score_threshold: match u8::try_from(settings.call_score_threshold) {
                Ok(0) | Err(_) => defaults.call_score_threshold,
                Ok(own) => own,
            },
            human_number: pick(settings.human_number, &defaults.human_number),
            forward_number: pick(settings.forward_number, &defaults.forward_number),
            agent_id: pick(settings.agent_id, &defaults.agent_id),
            agent_phone_number_id: pick(
                settings.agent_phone_number_id,
                &defaults.agent_phone_number_id,
            ),
            crm_webhook_url: settings.crm_webhook_url,
            own_number: organization
                .phone_numbers
                .first()
                .cloned()
                .or_else(|| fallback_number.map(str::to_owned))
                .unwrap_or_default(),
        }
    }

    /// Whether `at` falls within business hours (always, when none are set).
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        match BusinessHours::parse(&self.business_hours) {
            Ok(hours) => hours.contains(at.with_timezone(&self.timezone)),
            Err(error) => {
                // A setting we cannot read must not make the agent call at 3 a.m.
                tracing::warn!(%error, hours = %self.business_hours, "unreadable business hours: treated as closed");
                false
            }
        }
    }

    /// The urgent keywords `body` contains.
    pub fn urgency(&self, body: &str) -> Vec<String> {
        let body = body.to_lowercase();
        self.urgent_keywords
            .iter()
            .filter(|keyword| contains_phrase(&body, keyword))
            .cloned()
            .collect()
    }

    /// The auto-reply for a lead, `None` when none is configured.
    pub fn auto_reply(&self, lead_name: &str) -> Option<String> {
        let template = self.sms_auto_reply.trim();
        if template.is_empty() {
            return None;
        }
        let name = if lead_name.trim().is_empty() {
            "there"
        } else {
            lead_name.trim()
        };
        Some(
            template
                .replace("{name}", name)
                .replace("{organization}", &self.organization_name),
        )
    }
}

/// A keyword or phrase as whole words ("help" matches "please help!", not "helpful").
fn contains_phrase(text: &str, phrase: &str) -> bool {
    let phrase = phrase.trim();
    if phrase.is_empty() {
        return false;
    }
    text.match_indices(phrase).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let after = text[start + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Opening hours: `"mon-fri 09:00-17:00; sat 10:00-14:00"`. Empty means always open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours(Vec<(Vec<Weekday>, NaiveTime, NaiveTime)>);

impl BusinessHours {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut spans = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (days, times) = part
                .split_once(' ')
                .ok_or_else(|| format!("{part:?}: expected <days> HH:MM-HH:MM"))?;
            let days = parse_days(days.trim())?;
            let (open, close) = times
                .trim()
                .split_once('-')
                .ok_or_else(|| format!("{part:?}: expected HH:MM-HH:MM"))?;
            let open = parse_time(open)?;
            let close = parse_time(close)?;
            spans.push((days, open, close));
        }
        Ok(BusinessHours(spans))
    }

    pub fn contains<T: chrono::TimeZone>(&self, at: DateTime<T>) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let day = at.weekday();
        let time = at.time();
        self.0
            .iter()
            .any(|(days, open, close)| days.contains(&day) && *open <= time && time < *close)
    }
}

fn parse_days(text: &str) -> Result<Vec<Weekday>, String> {
    let day = |name: &str| -> Result<Weekday, String> {
        name.trim()
            .parse::<Weekday>()
            .map_err(|_| format!("{name:?} is not a day"))
    };
    let mut days = Vec::new();
    for item in text.split(',') {
        match item.split_once('-') {
            Some((first, last)) => {
                let (mut current, last) = (day(first)?, day(last)?);
                days.push(current);
                while current != last {
                    current = current.succ();
                    days.push(current);
                }
            }
            None => days.push(day(item)?),
        }
    }
    Ok(days)
}

fn parse_time(text: &str) -> Result<NaiveTime, String> {
    let text = text.trim();
    if text == "24:00" {
        return NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999)
            .ok_or_else(|| "24:00".to_owned());
    }
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| format!("{text:?} is not HH:MM"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn business_hours_are_read_in_the_local_time_zone() {
        let hours = BusinessHours::parse("mon-fri 09:00-17:00; sat 10:00-14:00").expect("valid");
        let new_york = chrono_tz::America::New_York;
        // Monday 2026-11-23, 10:00 in New York is 15:00 UTC.
        let monday_morning = new_york
            .with_ymd_and_hms(2026, 11, 23, 10, 0, 0)
            .single()
            .expect("time");
        assert!(hours.contains(monday_morning));
        let monday_night = new_york
            .with_ymd_and_hms(2026, 11, 23, 20, 0, 0)
            .single()
            .expect("time");
        assert!(!hours.contains(monday_night));
        let saturday = new_york
            .with_ymd_and_hms(2026, 11, 28, 13, 59, 0)
            .single()
            .expect("time");
        assert!(hours.contains(saturday));
        let sunday = new_york
            .with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
            .single()
            .expect("time");
        assert!(!hours.contains(sunday));
        assert!(
            BusinessHours::parse("").expect("empty").contains(sunday),
            "none set: always open"
        );
        assert!(BusinessHours::parse("someday 9-5").is_err());
    }

    #[test]
    fn urgency_matches_whole_words_and_phrases() {
        let follow_up = FollowUp {
            organization_name: "Bike Shop".into(),
            timezone: chrono_tz::UTC,
            business_hours: String::new(),
            sms_auto_reply: "Hi {name}, thanks for texting {organization}!".into(),
            urgent_keywords: vec!["help".into(), "call me".into()],
            call_score_threshold: 75,
            human_number: String::new(),
            forward_number: String::new(),
            agent_id: String::new(),
            agent_phone_number_id: String::new(),
            own_number: String::new(),
            crm_webhook_url: String::new(),
        };
        assert_eq!(follow_up.urgency("Please CALL ME asap"), vec!["call me"]);
        assert_eq!(follow_up.urgency("Help!"), vec!["help"]);
        assert!(follow_up.urgency("that was helpful").is_empty());
        assert_eq!(
            follow_up.auto_reply("").as_deref(),
            Some("Hi there, thanks for texting Bike Shop!")
        );
    }
}
