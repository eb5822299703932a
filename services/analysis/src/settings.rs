//! What an operator tunes without a rebuild: the lead score's factor weights and each
//! organization's domain vocabulary (a bike shop's products, a clinic's treatments), read from
//! the JSON file `ANALYSIS_CONFIG` names. The file is read again when it changes, so a re-run
//! after editing a vocabulary uses the new one without a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Deserialize;

/// The weights of the rule-based lead score. Every factor's contribution is reported with the
/// analysis, so a score can always be explained by these numbers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringWeights {
    /// Where every conversation starts.
    pub baseline: i32,
    /// Points per caller turn, up to `max_engagement`.
    pub per_caller_turn: i32,
    pub max_engagement: i32,
    /// Points (or penalties) per detected intent, by intent name.
    pub intents: BTreeMap<String, i32>,
    /// Points per vocabulary term the caller used, up to `max_vocabulary`.
    pub vocabulary_term: i32,
    pub max_vocabulary: i32,
    /// The caller's sentiment (-1..1) times this.
    pub sentiment_scale: f64,
    /// Calls of at least 180 s, and of 60-179 s.
    pub long_call: i32,
    pub medium_call: i32,
    /// ElevenLabs' `call_successful`.
    pub agent_success: i32,
    pub agent_failure: i32,
    /// Per ElevenLabs evaluation criterion met (and taken away per criterion failed).
    pub criterion: i32,
    /// When a next step (an action item) was agreed.
    pub next_step: i32,
    /// An agreed purchase or a booked visit: hot even on a short call.
    pub commitment: i32,
    /// Buying interest short of a decision (shopping, comparing, asking for information).
    pub interest: i32,
    /// The most a lead scores without an agreed purchase or visit (warm at most by default).
    pub undecided_cap: i32,
    /// A screening interview's lead score, by the interview evaluation's recommendation:
    /// panel interview, further screening, not recommended.
    pub interview_advance: i32,
    pub interview_hold: i32,
    pub interview_reject: i32,
}

impl Default for ScoringWeights {
    fn default() -> Self {
        ScoringWeights {
            baseline: 20,
            per_caller_turn: 2,
            max_engagement: 10,
            intents: [
                ("purchase", 30),
                ("booking", 25),
                ("pricing", 20),
                ("call_back", 20),
                ("support", -5),
                ("complaint", -20),
                ("not_interested", -40),
                ("wrong_number", -60),
                ("voicemail", -30),
            ]
            .into_iter()
            .map(|(name, points)| (name.to_owned(), points))
            .collect(),
            vocabulary_term: 4,
            max_vocabulary: 8,
            sentiment_scale: 15.0,
            long_call: 10,
            medium_call: 5,
            agent_success: 15,
            agent_failure: -10,
            criterion: 3,
            next_step: 5,
            commitment: 35,
            interest: 10,
            undecided_cap: 79,
            interview_advance: 85,
            interview_hold: 60,
            interview_reject: 25,
        }
    }
}

/// The contents of the `ANALYSIS_CONFIG` file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisSettings {
    pub scoring: ScoringWeights,
    /// Organization id → its domain terms. `"*"` applies to every organization.
    pub vocabularies: BTreeMap<String, Vec<String>>,
    /// Job role (any case) → the terms a strong candidate for it would use.
    pub interview_vocabularies: BTreeMap<String, Vec<String>>,
}

impl AnalysisSettings {
    pub fn parse(text: &str) -> Result<Self, String> {
        let settings: AnalysisSettings =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text))
                .map_err(|e| e.to_string())?;
        Ok(settings)
    }

    /// The organization's terms plus the shared ones, each once.
    pub fn vocabulary(&self, organization_id: &str) -> Vec<String> {
        let mut terms: Vec<String> = Vec::new();
        for key in [organization_id, "*"] {
            for term in self.vocabularies.get(key).into_iter().flatten() {
                let term = term.trim();
                if !term.is_empty() && !terms.iter().any(|t| t.eq_ignore_ascii_case(term)) {
                    terms.push(term.to_owned());
                }
            }
        }
        terms
    }

    pub fn interview_vocabulary(&self, job_role: &str) -> Vec<String> {
        let role = job_role.trim().to_lowercase();
        self.interview_vocabularies
            .iter()
            .find(|(name, _)| name.trim().to_lowercase() == role)
            .map(|(_, terms)| {
                // An empty term would match everywhere: ignored, like the organizations' ones.
                terms
                    .iter()
                    .map(|t| t.trim())
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The settings in force, re-read from the file when its modification time changes. A file
/// that stops parsing keeps the last good settings (with a warning) rather than failing calls.
pub struct SettingsSource {
    path: Option<PathBuf>,
    current: Mutex<(Option<SystemTime>, Arc<AnalysisSettings>)>,
}

impl SettingsSource {
    /// Fixed settings, for tests and when no file is configured.
    pub fn fixed(settings: AnalysisSettings) -> Self {
        SettingsSource {
            path: None,
            current: Mutex::new((None, Arc::new(settings))),
        }
    }

    /// Reads the file once now; a missing or invalid file is an error at start-up.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let (modified, settings) = read(path)?;
        Ok(SettingsSource {
            path: Some(path.to_owned()),
            current: Mutex::new((modified, Arc::new(settings))),
        })
    }

    pub fn current(&self) -> Arc<AnalysisSettings> {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(path) = &self.path {
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            if modified != current.0 {
                match read(path) {
                    Ok((modified, settings)) => {
                        tracing::info!(path = %path.display(), "analysis settings reloaded");
                        *current = (modified, Arc::new(settings));
                    }
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "analysis settings unreadable; keeping the previous ones");
                        current.0 = modified;
                    }
                }
            }
        }
        current.1.clone()
    }
}

fn read(path: &Path) -> Result<(Option<SystemTime>, AnalysisSettings), String> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let settings =
        AnalysisSettings::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((modified, settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_files_keep_the_other_defaults_and_typos_are_refused() {
        let settings = AnalysisSettings::parse(
            r#"{"scoring": {"baseline": 30}, "vocabularies": {"org-1": ["E-bike", "cargo bike"], "*": ["e-bike", "helmet"]}}"#,
        )
        .unwrap();
        assert_eq!(settings.scoring.baseline, 30);
        assert_eq!(settings.scoring.per_caller_turn, 2);
        assert_eq!(
            settings.vocabulary("org-1"),
            vec!["E-bike", "cargo bike", "helmet"]
        );
        assert_eq!(settings.vocabulary("org-2"), vec!["e-bike", "helmet"]);
        let error = AnalysisSettings::parse(r#"{"scoring": {"basline": 30}}"#).unwrap_err();
        assert!(error.contains("basline"), "{error}");
    }

    #[test]
    fn empty_vocabulary_terms_are_ignored() {
        let settings = AnalysisSettings::parse(
            r#"{"vocabularies": {"*": ["", " ", "helmet"]},
                "interview_vocabularies": {"Backend Engineer": ["", "  ", "Postgres"]}}"#,
        )
        .unwrap();
        assert_eq!(settings.vocabulary("org-1"), vec!["helmet"]);
        assert_eq!(
            settings.interview_vocabulary("backend engineer"),
            vec!["Postgres"]
        );
        // Whatever reaches the analyzer, an empty phrase matches nothing and never panics.
        assert!(crate::analyzer::text::find_phrase("I use postgres daily", "").is_empty());
        assert!(crate::analyzer::text::find_phrase("", "").is_empty());
    }
}
