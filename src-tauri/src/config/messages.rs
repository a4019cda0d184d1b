//! `messages`: who may send, and the canned phrases the panel offers for gloved hands.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Languages the panel speaks; canned phrases are keyed by them.
pub const LANGUAGES: [&str; 3] = ["en", "de", "pl"];
/// Phrases per language at most (one row of buttons on a 1280 px panel, scrolled).
pub const MAX_PHRASES: usize = 20;
/// Characters of one phrase at most.
pub const MAX_PHRASE_CHARS: usize = 100;

/// Messaging settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MessagesConfig {
    /// Viewers read the channels of their parks; with this they may also send (off by default:
    /// the role table gives `send_messages` to operators and up).
    pub viewers_may_send: bool,
    /// Canned phrases per language (`en`, `de`, `pl`), offered as one-touch buttons.
    pub phrases: BTreeMap<String, Vec<String>>,
}

impl Default for MessagesConfig {
    fn default() -> Self {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let phrases = BTreeMap::from([
            (
                "en".to_string(),
                list(&["On my way", "Checking now", "Done", "Need help", "Call me"]),
            ),
            (
                "de".to_string(),
                list(&[
                    "Bin unterwegs",
                    "Prüfe gerade",
                    "Erledigt",
                    "Brauche Hilfe",
                    "Bitte anrufen",
                ]),
            ),
            (
                "pl".to_string(),
                list(&[
                    "Już idę",
                    "Sprawdzam",
                    "Zrobione",
                    "Potrzebuję pomocy",
                    "Zadzwoń do mnie",
                ]),
            ),
        ]);
        Self {
            viewers_may_send: false,
            phrases,
        }
    }
}

impl MessagesConfig {
    /// Known languages only, bounded lists of short single-line phrases.
    pub(super) fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        for (lang, list) in &self.phrases {
            let at = format!("$.messages.phrases.{lang}");
            if !LANGUAGES.contains(&lang.as_str()) {
                return Err(ConfigError::new(
                    file,
                    at,
                    format!("unknown language; expected one of {}", LANGUAGES.join(", ")),
                ));
            }
            if list.len() > MAX_PHRASES {
                return Err(ConfigError::new(
                    file,
                    at,
                    format!("at most {MAX_PHRASES} phrases"),
                ));
            }
            for (i, p) in list.iter().enumerate() {
                let n = p.chars().count();
                if p.trim().is_empty() || n > MAX_PHRASE_CHARS || p.chars().any(char::is_control) {
                    return Err(ConfigError::new(
                        file,
                        format!("{at}[{i}]"),
                        format!(
                            "must be 1-{MAX_PHRASE_CHARS} characters on one line, without control characters"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
