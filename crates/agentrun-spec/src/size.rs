//! Memory sizes as people write them (`54GB`, `48GiB`, `1.5TB`) and the GPU budget.

use std::fmt;

/// The GPU memory the executor may plan with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum GpuBudget {
    /// Ask the machine (macOS `iogpu.wired_limit_mb`, `nvidia-smi`).
    #[default]
    Auto,
    /// This many bytes.
    Bytes(u64),
}

impl fmt::Display for GpuBudget {
    /// `auto`, or the size in the largest unit that keeps it exact (`54GB`, `48GiB`).
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuBudget::Auto => formatter.write_str("auto"),
            GpuBudget::Bytes(bytes) => formatter.write_str(&format_size(*bytes)),
        }
    }
}

pub(crate) use agentrun_size::format_size;
pub use agentrun_size::{SizeError, parse_size};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_written_in_the_largest_exact_unit() {
        assert_eq!(GpuBudget::Bytes(54_000_000_000).to_string(), "54GB");
        assert_eq!(GpuBudget::Bytes(48 << 30).to_string(), "48GiB");
        assert_eq!(GpuBudget::Auto.to_string(), "auto");
    }
}
