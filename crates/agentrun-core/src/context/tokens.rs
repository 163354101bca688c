//! Token estimates per model, corrected from the prompt sizes the server reports.
//!
//! Ollama has no tokenize endpoint, so a prompt's size is estimated from its bytes: a
//! message costs its text's bytes over the model's bytes per token, plus the chat template's
//! markers. Every answer's `prompt_eval_count` is a measurement of the same prompt; the
//! estimate follows the measurements and its safety margin shrinks as they confirm it.

/// Tokens a message costs beyond its text: the chat template's role markers.
pub(crate) const MESSAGE_OVERHEAD_TOKENS: u64 = 4;

/// Bytes per token before anything was measured: below the usual 3.5-4.5 of English and
/// code, so a fresh estimate errs on the large side.
const INITIAL_BYTES_PER_TOKEN: f64 = 3.5;

/// The safety margin before anything was measured.
const INITIAL_MARGIN: f64 = 0.15;

/// The margin never goes below this: texts differ in density from turn to turn.
const MIN_MARGIN: f64 = 0.03;

/// The largest margin: beyond it the estimate is not worth correcting, only replacing.
const MAX_MARGIN: f64 = 0.5;

/// The estimate of one model's token counts.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEstimator {
    bytes_per_token: f64,
    margin: f64,
    confirmations: u32,
}

impl Default for TokenEstimator {
    fn default() -> TokenEstimator {
        TokenEstimator::new()
    }
}

impl TokenEstimator {
    /// An estimator that has measured nothing yet.
    pub fn new() -> TokenEstimator {
        TokenEstimator {
            bytes_per_token: INITIAL_BYTES_PER_TOKEN,
            margin: INITIAL_MARGIN,
            confirmations: 0,
        }
    }

    /// Tokens of a text of `bytes` bytes, without the message markers.
    pub fn text_tokens(&self, bytes: usize) -> u64 {
        (bytes as f64 / self.bytes_per_token).ceil() as u64
    }

    /// Tokens of one message whose text is `bytes` long.
    pub fn message_tokens(&self, bytes: usize) -> u64 {
        self.text_tokens(bytes) + MESSAGE_OVERHEAD_TOKENS
    }

    /// The share by which a prompt may be larger than estimated (0.15 = 15 %).
    pub fn margin(&self) -> f64 {
        self.margin
    }

    /// The bytes per token the estimate uses now.
    pub fn bytes_per_token(&self) -> f64 {
        self.bytes_per_token
    }

    /// How many measurements confirmed the estimate within its margin.
    pub fn confirmations(&self) -> u32 {
        self.confirmations
    }

    /// The estimated tokens that may be sent for a budget of `budget` real tokens.
    pub fn usable(&self, budget: u64) -> u64 {
        (budget as f64 / (1.0 + self.margin)).floor() as u64
    }

    /// Learns from a measurement: `bytes` of text in `messages` messages were counted
    /// as `reported` tokens by the server. Returns whether it confirmed the estimate.
    pub fn learn(&mut self, bytes: usize, messages: u64, reported: u64) -> bool {
        let overhead = messages * MESSAGE_OVERHEAD_TOKENS;
        let predicted = self.text_tokens(bytes) + overhead;
        if predicted == 0 || reported <= overhead || bytes == 0 {
            return false;
        }
        let error = (reported as f64 - predicted as f64).abs() / predicted as f64;
        let measured = bytes as f64 / (reported - overhead) as f64;
        // A weighted step: one odd prompt (a table of numbers, a file of Chinese) moves the
        // estimate halfway, not all the way.
        self.bytes_per_token = 0.5 * self.bytes_per_token + 0.5 * measured;
        if error <= self.margin {
            self.confirmations += 1;
            self.margin = (self.margin * 0.7).max(MIN_MARGIN);
            true
        } else {
            self.margin = (error * 1.25).clamp(MIN_MARGIN, MAX_MARGIN);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_follows_measurements_and_its_margin_shrinks() {
        let mut estimator = TokenEstimator::new();
        // A server that counts 4 bytes per token.
        let bytes = 40_000;
        let reported = 10_000 + 10 * MESSAGE_OVERHEAD_TOKENS;
        assert!(
            estimator.message_tokens(400) > 104,
            "errs on the large side first"
        );
        assert!(
            estimator.learn(bytes, 10, reported),
            "3.5 bytes per token is 14 % off: within the first margin"
        );
        for _ in 0..6 {
            estimator.learn(bytes, 10, reported);
        }
        assert!((estimator.bytes_per_token() - 4.0).abs() < 0.05);
        assert!(estimator.margin() < 0.05, "margin {}", estimator.margin());
        assert!(estimator.confirmations() >= 5);
    }

    #[test]
    fn a_measurement_far_off_widens_the_margin() {
        let mut estimator = TokenEstimator::new();
        assert!(!estimator.learn(40_000, 1, 20_000));
        assert!(estimator.margin() > 0.15);
        assert!(estimator.margin() <= MAX_MARGIN);
    }
}
