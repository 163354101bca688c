//! Byte sizes as people write them: `54GB` is 54 x 10^9 bytes, `48GiB` is 48 x 2^30, `1.5TB`,
//! `512 MB`. One grammar for agentrun's workflow files and ollama-sim's settings, so a size
//! means the same in both. A unit is required (B, KB, MB, GB, TB are powers of 1000; KiB, MiB,
//! GiB, TiB powers of 1024; case-insensitive, optional space); a bare `G` is refused as
//! ambiguous. The case table both follow is `tests/fixtures/sizes.txt` at the repository root.

pub mod hardware;

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
        let units = "use B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)";
        match self {
            SizeError::UnknownUnit { unit, .. }
                if matches!(unit.to_ascii_uppercase().as_str(), "K" | "M" | "G" | "T") =>
            {
                format!(
                    "`{unit}` is ambiguous; write `{unit}B` (powers of 1000) or `{unit}iB` (powers of 1024)"
                )
            }
            _ => format!("{units}, e.g. `54GB` or `48GiB`"),
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

/// Parses a size with a unit: `54GB` is 54 x 10^9 bytes, `48GiB` is 48 x 2^30, `1.5TB`,
/// `512 MB`. Units are case-insensitive; a bare number is rejected because `54` is far more
/// likely a forgotten `GB` than 54 bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SizeError::Empty);
    }
    let number_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(number_end);
    let number = number.replace('_', "");
    if number.is_empty() {
        return Err(SizeError::NotANumber {
            text: text.to_owned(),
        });
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
            // Exact decimal arithmetic: "1.5TB" must be 1_500_000_000_000, not a float's guess.
            if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
                return Err(SizeError::NotANumber {
                    text: text.to_owned(),
                });
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

/// Writes a size in the largest unit that keeps it exact: `54GB`, `48GiB`, `1500MB`.
pub fn format_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0B".to_owned();
    }
    let (name, multiplier) = UNITS
        .iter()
        .filter(|(_, multiplier)| bytes.is_multiple_of(*multiplier))
        .max_by_key(|(_, multiplier)| *multiplier)
        .expect("1 divides every size");
    let name = name.replace('I', "i");
    format!("{}{name}", bytes / multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_decimal_and_binary_units() {
        assert_eq!(parse_size("54GB"), Ok(54_000_000_000));
        assert_eq!(parse_size("48GiB"), Ok(48 << 30));
        assert_eq!(parse_size("512MB"), Ok(512_000_000));
        assert_eq!(parse_size("1.5TB"), Ok(1_500_000_000_000));
        assert_eq!(parse_size("0.5GiB"), Ok(1 << 29));
        assert_eq!(parse_size(" 54 gb "), Ok(54_000_000_000));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("1_000MB"), Ok(1_000_000_000));
    }

    #[test]
    fn rejects_what_it_cannot_read_with_a_reason() {
        assert_eq!(
            parse_size("54XB"),
            Err(SizeError::UnknownUnit {
                text: "54XB".into(),
                unit: "XB".into()
            })
        );
        assert_eq!(
            parse_size("54XB").unwrap_err().to_string(),
            "unknown size unit `XB` in `54XB`"
        );
        assert!(parse_size("54G").unwrap_err().hint().contains("`GB`"));
        assert_eq!(
            parse_size("54"),
            Err(SizeError::MissingUnit { text: "54".into() })
        );
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(
            parse_size("GB"),
            Err(SizeError::NotANumber { text: "GB".into() })
        );
        assert_eq!(
            parse_size("1.2.3GB"),
            Err(SizeError::NotANumber {
                text: "1.2.3GB".into()
            })
        );
        assert_eq!(
            parse_size("20000000TB"),
            Err(SizeError::TooLarge {
                text: "20000000TB".into()
            })
        );
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        assert_eq!(format_size(54_000_000_000), "54GB");
        assert_eq!(format_size(48 << 30), "48GiB");
        assert_eq!(format_size(1_500_000_000), "1500MB");
        assert_eq!(format_size(7), "7B");
        for bytes in [1, 999, 54_000_000_000, 48 << 30, 123_456_789] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
        }
    }

    /// Every case of the shared table `tests/fixtures/sizes.txt`.
    #[test]
    fn sizes_follow_the_shared_table() {
        let cases = case_table("sizes.txt");
        for (line, input, expected) in &cases {
            let parsed = parse_size(input);
            match expected.as_str() {
                "error" => assert!(parsed.is_err(), "line {line}: {input:?} gave {parsed:?}"),
                bytes => assert_eq!(
                    parsed,
                    Ok(bytes.parse::<u64>().expect("bytes")),
                    "line {line}: {input:?}"
                ),
            }
        }
        assert!(cases.len() > 30);
    }

    include!("../../../tests/fixtures/case_table.rs");
}
