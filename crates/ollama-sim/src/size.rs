//! Sizes as people write them: the grammar of agentrun's workflow files, so a size means the
//! same in a simulator config as in a workflow. A unit is required (B, KB, MB, GB, TB are
//! powers of 1000; KiB, MiB, GiB, TiB powers of 1024; case-insensitive, optional space);
//! a bare `G` is refused as ambiguous. Numbers in YAML or JSON (not strings) are bytes.
//! The shared case table is `tests/fixtures/sizes.txt` at the repository root.

/// A size that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Nothing was given.
    #[error("the size is empty")]
    Empty,
    /// The text does not start with a number.
    #[error("`{text}` does not start with a number")]
    NotANumber {
        /// The text given.
        text: String,
    },
    /// A number without a unit.
    #[error("`{text}` has no unit")]
    MissingUnit {
        /// The text given.
        text: String,
    },
    /// A unit that is not one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB.
    #[error("unknown size unit `{unit}` in `{text}`")]
    UnknownUnit {
        /// The text given.
        text: String,
        /// The unit as written.
        unit: String,
    },
    /// More bytes than fit in 64 bits.
    #[error("`{text}` is too large")]
    TooLarge {
        /// The text given.
        text: String,
    },
}

impl SizeError {
    /// How to write a size that parses.
    pub fn hint(&self) -> String {
        match self {
            SizeError::UnknownUnit { unit, .. }
                if matches!(unit.to_ascii_uppercase().as_str(), "K" | "M" | "G" | "T") =>
            {
                format!(
                    "`{unit}` is ambiguous; write `{unit}B` (powers of 1000) or `{unit}iB` (powers of 1024)"
                )
            }
            _ => "use B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), \
                  e.g. `54GB` or `48GiB`"
                .to_owned(),
        }
    }
}

const UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KIB", 1 << 10),
    ("MIB", 1 << 20),
    ("GIB", 1 << 30),
    ("TIB", 1 << 40),
];

/// Parses `"54GB"` (54 x 10^9 bytes), `"48GiB"` (48 x 2^30), `"1.5 TB"`, `"768MiB"`.
/// Fractions are exact decimal arithmetic, rounded down to whole bytes.
pub fn parse_byte_size(text: &str) -> Result<u64, SizeError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SizeError::Empty);
    }
    let number_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(number_end);
    let number = number.replace('_', "");
    let not_a_number = || SizeError::NotANumber {
        text: text.to_owned(),
    };
    if number.is_empty() {
        return Err(not_a_number());
    }
    let unit = unit.trim();
    if unit.is_empty() {
        return Err(SizeError::MissingUnit {
            text: text.to_owned(),
        });
    }
    let Some(&(_, multiplier)) = UNITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(unit))
    else {
        return Err(SizeError::UnknownUnit {
            text: text.to_owned(),
            unit: unit.to_owned(),
        });
    };
    let too_large = || SizeError::TooLarge {
        text: text.to_owned(),
    };
    match number.split_once('.') {
        None => {
            let whole: u64 = number.parse().map_err(|_| too_large())?;
            whole.checked_mul(multiplier).ok_or_else(too_large)
        }
        Some((whole, fraction)) => {
            if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
                return Err(not_a_number());
            }
            let digits = format!("{whole}{fraction}");
            let mantissa: u128 = digits.parse().map_err(|_| too_large())?;
            let scale = 10u128
                .checked_pow(u32::try_from(fraction.len()).map_err(|_| too_large())?)
                .ok_or_else(too_large)?;
            let bytes = mantissa
                .checked_mul(u128::from(multiplier))
                .ok_or_else(too_large)?
                / scale;
            u64::try_from(bytes).map_err(|_| too_large())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case of the shared table `tests/fixtures/sizes.txt`.
    #[test]
    fn sizes_follow_the_shared_table() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/sizes.txt"
        );
        let table = std::fs::read_to_string(path).expect("read sizes.txt");
        let mut cases = 0;
        for (number, line) in table.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (input, expected) = line.rsplit_once(' ').expect("input and expected");
            let input: String = serde_json::from_str(input).expect("a JSON string");
            let parsed = parse_byte_size(&input);
            match expected {
                "error" => assert!(
                    parsed.is_err(),
                    "line {}: {input:?} gave {parsed:?}",
                    number + 1
                ),
                bytes => assert_eq!(
                    parsed,
                    Ok(bytes.parse::<u64>().expect("bytes")),
                    "line {}: {input:?}",
                    number + 1
                ),
            }
            cases += 1;
        }
        assert!(cases > 30);
    }

    #[test]
    fn a_bare_g_is_ambiguous() {
        let error = parse_byte_size("54G").expect_err("ambiguous");
        assert!(error.hint().contains("`GB`") && error.hint().contains("`GiB`"));
    }
}
