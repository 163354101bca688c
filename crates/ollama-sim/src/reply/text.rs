//! Deterministic filler text and the small random generator behind it.

/// splitmix64: small, fast, and the same on every platform.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// A number in `0.0..1.0`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const WORDS: &[&str] = &[
    "the", "model", "plan", "test", "function", "module", "returns", "value", "input", "output",
    "error", "case", "handles", "checks", "builds", "state", "request", "reply", "memory", "cache",
    "load", "runner", "queue", "order", "first", "then", "next", "each", "every", "result",
    "should", "must", "will", "can", "data", "file", "line", "field", "type", "code", "change",
    "update", "keeps", "stores", "reads", "writes", "simple", "clear", "small", "correct", "fast",
    "safe", "step", "agent", "turn", "graph", "edge", "node", "time",
];

/// `tokens` words of plausible prose; one word counts as one token.
pub(crate) fn filler(rng: &mut Rng, tokens: u64) -> String {
    let mut text = String::with_capacity(tokens as usize * 7);
    let mut sentence_left = 0;
    for index in 0..tokens {
        let word = WORDS[rng.below(WORDS.len() as u64) as usize];
        if index > 0 {
            text.push(' ');
        }
        if sentence_left == 0 {
            sentence_left = 6 + rng.below(10);
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                text.extend(first.to_uppercase());
                text.push_str(chars.as_str());
            }
        } else {
            text.push_str(word);
        }
        sentence_left -= 1;
        if sentence_left == 0 || index + 1 == tokens {
            text.push('.');
        }
    }
    text
}

/// Ollama-like token estimate: about four characters a token.
pub(crate) fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}
