//! A custodian's directory: what is in it and its settings file.

use daylight_core::{KeyType, VerifierKey};
use serde::{Deserialize, Serialize};

/// The custodian's signer key (mode 0600): it signs receipts and opens
/// deposits.
pub const KEY_FILE: &str = "custodian.key";
/// The custodian's own gate policy (log key, witnesses and quorum,
/// agencies, courts, content lines); its `daylight-provider` line names the
/// provider whose keys it holds shares of.
pub const POLICY_FILE: &str = "policy";
/// The database: shares and receipts.
pub const DB_FILE: &str = "custodian.db";
/// The settings ([`Config`], TOML).
pub const CONFIG_FILE: &str = "custodian.toml";

/// A settings file that does not say what it must.
#[derive(Debug, thiserror::Error)]
#[error("{CONFIG_FILE}: {0}")]
pub struct ConfigError(String);

/// The custodian's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The log's base URL, where receipts go.
    pub log: String,
    /// The keys whose deposits the custodian takes (the provider's).
    pub depositors: Vec<VerifierKey>,
}

/// [`Config`] as written in the file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    log: String,
    depositors: Vec<String>,
}

impl Config {
    /// Parses the settings file's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        if file.log.trim().is_empty() {
            return Err(ConfigError("`log` is empty: give the log's URL".into()));
        }
        let depositors = file
            .depositors
            .iter()
            .map(|v| depositor_key(v).map_err(ConfigError))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            log: file.log,
            depositors,
        })
    }

    /// The settings file's text.
    pub fn to_toml(&self) -> String {
        let file = ConfigFile {
            log: self.log.clone(),
            depositors: self.depositors.iter().map(|k| k.to_string()).collect(),
        };
        // Two strings and a list of strings always serialize.
        toml::to_string(&file).unwrap_or_default()
    }
}

/// Parses a depositor's verifier key: an Ed25519 note key (what signs the
/// deposits).
pub fn depositor_key(text: &str) -> Result<VerifierKey, String> {
    let key = VerifierKey::parse(text.trim())
        .map_err(|e| format!("depositor {text:?} is not a verifier key: {e}"))?;
    if key.key_type() != KeyType::Ed25519 {
        return Err(format!(
            "depositor {text:?} is not an Ed25519 note key (a provider's key signs deposits)"
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use daylight_core::{KeyName, SignerKey};

    #[test]
    fn settings_round_trip_and_bad_keys_are_refused() {
        let k = SignerKey::from_seed(KeyName::new("p").unwrap(), KeyType::Ed25519, [1; 32]);
        let c = Config {
            log: "http://127.0.0.1:1".into(),
            depositors: vec![k.verifier().clone()],
        };
        assert_eq!(Config::parse(&c.to_toml()).unwrap(), c);
        assert!(Config::parse("log = \"x\"\ndepositors = [\"nope\"]\n").is_err());
        assert!(Config::parse("log = \"\"\ndepositors = []\n").is_err());
        assert!(Config::parse("log = \"x\"\ndepositors = []\nother = 1\n").is_err());
        let w = k.with_key_type(KeyType::CosignatureV1);
        assert!(depositor_key(&w.verifier().to_string()).is_err());
    }
}
