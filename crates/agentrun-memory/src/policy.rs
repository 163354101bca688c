//! The residency policies: who decides which models Ollama holds.

use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use strum::{Display, IntoStaticStr, VariantArray};

use crate::name::{UnknownName, from_name};

/// Who decides residency. Spelled in kebab-case in files, on the command line and in reports
/// (`smart`, `static`, `ollama-default`, `oracle`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
    Display,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Policy {
    /// The planner: preloads the likely next models, unloads what is needed furthest away,
    /// ranks keep_alive values to steer Ollama's own eviction.
    #[default]
    Smart,
    /// Each agent's fixed keep_alive from the workflow; no preload, no unload.
    Static,
    /// No keep_alive, no preload, no unload: Ollama decides alone.
    OllamaDefault,
    /// This planner with foresight, for simulations only: it knows the whole future sequence
    /// of turns, evicts the model needed furthest in the future and preloads as early as
    /// memory allows.
    Oracle,
}

impl Policy {
    /// Every policy, in the order reports list them.
    pub const ALL: &'static [Policy] = Policy::VARIANTS;

    /// The name used in workflows, on the command line and in reports.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Whether a real run can use it: the oracle needs the future, which only a simulation
    /// knows.
    pub fn runs_live(self) -> bool {
        self != Policy::Oracle
    }
}

impl FromStr for Policy {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Policy, UnknownName> {
        from_name("policy", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kebab_case_in_every_spelling() {
        for policy in Policy::ALL {
            assert_eq!(policy.to_string().parse(), Ok(*policy));
            assert_eq!(
                serde_json::to_value(policy).expect("serializes"),
                serde_json::json!(policy.name())
            );
        }
        assert_eq!(Policy::OllamaDefault.to_string(), "ollama-default");
        let error = "ollama_default".parse::<Policy>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown policy `ollama_default`; expected one of: smart, static, ollama-default, oracle"
        );
    }
}
