//! "Did you mean ...?": the known name nearest to a misspelt one.

/// The candidate closest to `given`, if it is close enough to be a plausible typo: an edit
/// distance of at most a third of the longer name (and at least 1), or the same name in
/// another case or with `-` for `_`.
pub(crate) fn nearest<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let folded = fold(given);
    candidates
        .into_iter()
        .filter(|candidate| *candidate != given)
        .map(|candidate| {
            let distance = if fold(candidate) == folded {
                0
            } else {
                strsim::osa_distance(&folded, &fold(candidate))
            };
            (distance, candidate)
        })
        .filter(|(distance, candidate)| {
            let longest = given.chars().count().max(candidate.chars().count());
            *distance <= (longest / 3).max(1)
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// A hint naming the nearest candidate, or listing them all when none is near.
pub(crate) fn suggestion<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
    what: &str,
) -> String {
    match nearest(given, candidates.clone()) {
        Some(near) => format!("did you mean `{near}`?"),
        None => {
            let all: Vec<String> = candidates.into_iter().map(|c| format!("`{c}`")).collect();
            if all.is_empty() {
                format!("there are no {what} here")
            } else {
                format!("{what}: {}", all.join(", "))
            }
        }
    }
}

fn fold(name: &str) -> String {
    name.to_lowercase().replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_plausible_typos_only() {
        let keys = ["model", "prompt", "prompt_file", "options", "kind"];
        assert_eq!(nearest("modle", keys), Some("model"));
        assert_eq!(nearest("promt", keys), Some("prompt"));
        assert_eq!(nearest("prompt-file", keys), Some("prompt_file"));
        assert_eq!(nearest("Model", keys), Some("model"));
        assert_eq!(nearest("temperature", keys), None);
        assert_eq!(nearest("x", keys), None);
    }

    #[test]
    fn suggests_or_lists() {
        assert_eq!(
            suggestion("revewer", ["coder", "reviewer"], "agents"),
            "did you mean `reviewer`?"
        );
        assert_eq!(
            suggestion("zzz", ["coder", "reviewer"], "agents"),
            "agents: `coder`, `reviewer`"
        );
    }

    #[test]
    fn a_swapped_pair_of_letters_counts_as_one_edit() {
        // "ab" -> "ba" is one transposition: within the one edit a two-letter name allows.
        assert_eq!(nearest("ab", ["ba"]), Some("ba"));
        assert_eq!(nearest("cdoer", ["coder", "tester"]), Some("coder"));
        assert_eq!(nearest("", ["abc"]), None);
    }
}
