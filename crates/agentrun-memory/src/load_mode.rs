//! How a model's weights are read when it loads (Ollama's `use_mmap` load-time option), and
//! the workflow's choice of it.

use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use strum::{Display, IntoStaticStr, VariantArray};

use crate::name::{UnknownName, from_name};

/// How Ollama reads a model's weights, a load-time option (`use_mmap`).
#[derive(
    Debug,
    Clone,
    Copy,
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
pub enum LoadMode {
    /// Ollama's default on Metal: memory-mapped weights (send no `use_mmap`, or `true`).
    Mmap,
    /// `use_mmap: false`: read the file into memory, much faster cold on Apple Silicon.
    NoMmap,
}

impl FromStr for LoadMode {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<LoadMode, UnknownName> {
        from_name("load mode", text)
    }
}

/// Which load mode a model uses in a run: the workflow's `load_mode` (`auto`, `mmap`,
/// `no-mmap`).
///
/// A model's mode must stay the same for every call (changing it reloads the model), so once a
/// load has been recorded with [`crate::Workload::record_load`] an `Auto` choice is pinned to
/// the mode used.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
    Display,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum LoadModeChoice {
    /// The mode with the shorter estimated load time (ties go to `Mmap`).
    #[default]
    Auto,
    /// Always memory-mapped.
    Mmap,
    /// Always read into memory.
    NoMmap,
}

impl LoadModeChoice {
    /// Every choice, in the order the documentation lists them.
    pub const ALL: &'static [LoadModeChoice] = LoadModeChoice::VARIANTS;

    /// The fixed mode, `None` for `Auto`.
    pub fn fixed(self) -> Option<LoadMode> {
        match self {
            LoadModeChoice::Auto => None,
            LoadModeChoice::Mmap => Some(LoadMode::Mmap),
            LoadModeChoice::NoMmap => Some(LoadMode::NoMmap),
        }
    }

    /// The name used in files and on the command line.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl From<LoadMode> for LoadModeChoice {
    fn from(mode: LoadMode) -> LoadModeChoice {
        match mode {
            LoadMode::Mmap => LoadModeChoice::Mmap,
            LoadMode::NoMmap => LoadModeChoice::NoMmap,
        }
    }
}

impl FromStr for LoadModeChoice {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<LoadModeChoice, UnknownName> {
        from_name("load mode", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for choice in LoadModeChoice::ALL {
            assert_eq!(choice.to_string().parse(), Ok(*choice));
            if let Some(mode) = choice.fixed() {
                assert_eq!(mode.to_string(), choice.to_string());
                assert_eq!(LoadModeChoice::from(mode), *choice);
            }
        }
        let error = "nommap".parse::<LoadModeChoice>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown load mode `nommap`; expected one of: auto, mmap, no-mmap"
        );
    }
}
