//! Reading the planner's named values (policies, load modes) from their file and command-line
//! spelling, with one error for every one of them.

use strum::VariantArray;

/// A name that is not one of the accepted ones (a policy or a load mode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}`; expected one of: {}", expected.join(", "))]
pub struct UnknownName {
    /// What was being named, e.g. "policy".
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The accepted names.
    pub expected: Vec<&'static str>,
}

/// The value of `T` spelled `text` (its kebab-case name), or an [`UnknownName`] listing every
/// accepted name. `T`'s `Into<&'static str>` is the spelling (derived with strum).
pub(crate) fn from_name<T>(what: &'static str, text: &str) -> Result<T, UnknownName>
where
    T: VariantArray + Copy + Into<&'static str>,
{
    T::VARIANTS
        .iter()
        .copied()
        .find(|value| Into::<&'static str>::into(*value) == text)
        .ok_or_else(|| UnknownName {
            what,
            name: text.to_owned(),
            expected: T::VARIANTS.iter().map(|value| (*value).into()).collect(),
        })
}
