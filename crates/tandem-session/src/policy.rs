//! How control requests are answered: the session's policy.

use serde::{Deserialize, Serialize};
use tandem_proto::ControlLevel;

/// How control requests are answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlPolicy {
    /// Requests wait for the sharer to grant or deny them.
    Ask,
    /// Requests for `view` are granted at once; `interactive` waits for the sharer.
    GrantView,
    /// Every request is granted at once.
    GrantAll,
}

impl ControlPolicy {
    /// Every policy.
    pub const ALL: [ControlPolicy; 3] = [Self::Ask, Self::GrantView, Self::GrantAll];

    /// The policy's name as written in configs and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ask => "ask",
            Self::GrantView => "grant-view",
            Self::GrantAll => "grant-all",
        }
    }

    /// Whether a request for `requested` is granted without asking the sharer.
    pub fn grants(self, requested: ControlLevel) -> bool {
        match self {
            Self::GrantAll => true,
            Self::GrantView => requested == ControlLevel::View,
            Self::Ask => false,
        }
    }
}

impl std::fmt::Display for ControlPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ControlPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!("unknown control policy {s:?}: expected ask, grant-view or grant-all")
            })
    }
}
