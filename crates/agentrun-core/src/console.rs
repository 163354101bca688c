//! The `Console` trait: how agents and tools ask the person running the workflow.

use async_trait::async_trait;

/// The person at the terminal, for human agents and command approvals.
///
/// A run without one is non-interactive: human agents use their canned answers and then
/// fail, and commands that need approval are refused.
#[async_trait]
pub trait Console: Send + Sync {
    /// Shows `question` on behalf of `agent` and waits for one line of answer (without its
    /// line ending); `None` when the input has ended.
    async fn ask(&self, agent: &str, question: &str) -> Option<String>;
}
