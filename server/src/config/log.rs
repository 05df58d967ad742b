//! `[log]`: the format, level and access lines of the logs on stderr.

use serde::{Deserialize, Deserializer, Serialize};

/// How log lines are written (`[log] format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    /// The error names the key, as the other configuration errors do.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log.format must be `text` or `json`, not `{other}`")),
        }
    }
}

/// Read as a string first, so that a value of the wrong type is reported as before, and a
/// string that names no format with [`LogFormat::from_str`]'s text.
impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `scimbridge=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
    /// One line per HTTP request (target `scimbridge::access`). Off: only rejected and failed
    /// requests are logged.
    pub access: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { format: LogFormat::Text, level: "info".to_owned(), access: true }
    }
}
