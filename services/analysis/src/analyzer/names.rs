//! The caller's name, for the lead: what the ElevenLabs agent collected (a data collection item
//! such as `name`, `full_name`, `caller_name` or `first_name` + `last_name`), else what the caller
//! said of themselves ("it's Marcus Bell", read in [`super::reading`]), each with its evidence.
//! The lead service decides whether it replaces the lead's name (never a person's).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ProviderDataPoint;
use super::text::clip;

/// Where a heard name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameOrigin {
    /// The agent's data collection.
    Agent,
    /// The caller's own words.
    Caller,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerName {
    pub name: String,
    pub source: NameOrigin,
    /// The caller's sentence, or the data collection item and the agent's rationale.
    pub evidence: String,
}

/// Data collection ids that hold the caller's whole name.
const FULL_NAME_IDS: &[&str] = &[
    "name",
    "full_name",
    "fullname",
    "caller_name",
    "customer_name",
    "client_name",
    "lead_name",
    "contact_name",
    "user_name",
    "username",
    "person_name",
    "patient_name",
    "candidate_name",
];
/// Values an agent writes when it has no name.
const NO_NAME: &[&str] = &[
    "unknown",
    "n/a",
    "na",
    "none",
    "null",
    "not provided",
    "not given",
    "not mentioned",
    "anonymous",
    "caller",
    "customer",
];
const EVIDENCE_CHARS: usize = 300;

/// The caller's name: the agent's collected one first, then the caller's words.
pub fn caller_name(
    collected: &BTreeMap<String, ProviderDataPoint>,
    said: Option<&str>,
    said_in: &str,
) -> Option<CallerName> {
    collected_name(collected).or_else(|| {
        said.map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| CallerName {
                name: name.to_owned(),
                source: NameOrigin::Caller,
                evidence: clip(said_in.trim(), EVIDENCE_CHARS),
            })
    })
}

fn key(id: &str) -> String {
    id.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .collect()
}

fn name_value(point: &ProviderDataPoint) -> Option<String> {
    let Value::String(raw) = &point.value else {
        return None;
    };
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let plausible = !name.is_empty()
        && name.chars().count() <= 80
        && name.chars().any(char::is_alphabetic)
        && !name.chars().any(|c| c.is_ascii_digit() || c == '@')
        && !NO_NAME.contains(&name.to_lowercase().as_str());
    plausible.then_some(name)
}

fn evidence(ids: &[&str], points: &[&ProviderDataPoint]) -> String {
    let rationale = points
        .iter()
        .map(|p| p.rationale.trim())
        .filter(|r| !r.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let text = if rationale.is_empty() {
        format!("collected by the agent as {}", ids.join(" + "))
    } else {
        format!("collected by the agent as {}: {rationale}", ids.join(" + "))
    };
    clip(&text, EVIDENCE_CHARS)
}

fn collected_name(collected: &BTreeMap<String, ProviderDataPoint>) -> Option<CallerName> {
    let by_key: BTreeMap<String, (&str, &ProviderDataPoint)> = collected
        .iter()
        .map(|(id, point)| (key(id), (id.as_str(), point)))
        .collect();
    for wanted in FULL_NAME_IDS {
        if let Some((id, point)) = by_key.get(*wanted)
            && let Some(name) = name_value(point)
        {
            return Some(CallerName {
                name,
                source: NameOrigin::Agent,
                evidence: evidence(&[id], &[point]),
            });
        }
    }
    let first = by_key.get("first_name").or_else(|| by_key.get("firstname"));
    let last = by_key.get("last_name").or_else(|| by_key.get("lastname"));
    let (ids, points, parts): (Vec<&str>, Vec<&ProviderDataPoint>, Vec<String>) = [first, last]
        .into_iter()
        .flatten()
        .filter_map(|(id, point)| name_value(point).map(|name| (*id, *point, name)))
        .fold(
            Default::default(),
            |(mut ids, mut points, mut parts), (id, point, name)| {
                ids.push(id);
                points.push(point);
                parts.push(name);
                (ids, points, parts)
            },
        );
    (!parts.is_empty()).then(|| CallerName {
        name: parts.join(" "),
        source: NameOrigin::Agent,
        evidence: evidence(&ids, &points),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn collected(value: Value) -> BTreeMap<String, ProviderDataPoint> {
        serde_json::from_value(value).expect("data collection results")
    }

    #[test]
    fn the_agents_collected_name_comes_first_with_its_rationale() {
        // The shape ElevenLabs sends in `analysis.data_collection_results`.
        let results = collected(json!({
            "order_id": {"data_collection_id": "order_id", "value": "123", "rationale": "…"},
            "Full Name": {"data_collection_id": "Full Name", "value": " Marcus  Bell ",
                          "rationale": "The caller said his name is Marcus Bell."}
        }));
        let name = caller_name(&results, Some("Mark"), "Mark here.").expect("a name");
        assert_eq!(name.name, "Marcus Bell");
        assert_eq!(name.source, NameOrigin::Agent);
        assert_eq!(
            name.evidence,
            "collected by the agent as Full Name: The caller said his name is Marcus Bell."
        );
    }

    #[test]
    fn first_and_last_names_join_and_empty_answers_do_not_count() {
        let results = collected(json!({
            "first_name": {"data_collection_id": "first_name", "value": "Dana", "rationale": ""},
            "last_name": {"data_collection_id": "last_name", "value": "Whitfield", "rationale": ""}
        }));
        let name = caller_name(&results, None, "").expect("a name");
        assert_eq!(name.name, "Dana Whitfield");
        assert_eq!(
            name.evidence,
            "collected by the agent as first_name + last_name"
        );

        let nothing = collected(json!({
            "caller_name": {"data_collection_id": "caller_name", "value": null, "rationale": "not said"},
            "name": {"data_collection_id": "name", "value": "Unknown", "rationale": ""},
            "customer_name": {"data_collection_id": "customer_name", "value": 42, "rationale": ""}
        }));
        let said = caller_name(&nothing, Some("Marcus Bell"), "Hi, it's Marcus Bell.")
            .expect("the caller's words");
        assert_eq!(said.source, NameOrigin::Caller);
        assert_eq!(said.evidence, "Hi, it's Marcus Bell.");
        assert_eq!(caller_name(&nothing, None, ""), None);
    }
}
