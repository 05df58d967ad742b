//! `[auth]`: tokens provisioned from files.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// A directory of token files, one per source (`admin`: the admin token), accepted at
    /// start (the Helm chart mounts its tokens Secret here).
    pub tokens_dir: Option<PathBuf>,
}
