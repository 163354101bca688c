//! `use:`: an agent starts from a reusable agent file and overrides some of its fields.
//!
//! Files are merged as YAML trees before anything else is checked, so a mistake inside a used
//! file is reported at its own line. Merging is key by key: a key given in the agent replaces
//! the used file's, except `options`, `residency` and `env`, which merge key by key as well;
//! giving `prompt` or `prompt_file` replaces both. A used file may itself `use` another.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::loader::Loading;
use crate::node::{Entry, FieldPath, Node, Value};
use crate::source::resolve_relative;

/// How many files deep a chain of `use` may go.
const MAX_USE_DEPTH: usize = 8;

/// Fields that merge key by key instead of being replaced.
const MERGED_FIELDS: [&str; 3] = ["options", "residency", "env"];

/// Replaces every agent that has `use:` with the merge of the used file and its own fields.
/// Returns the names of agents whose used file could not be read; the problems are reported.
pub(crate) fn resolve_uses(root: &mut Node, loading: &mut Loading) -> BTreeSet<String> {
    let mut failed = BTreeSet::new();
    let Some(Value::Map(agents)) = root_agents(root) else {
        return failed;
    };
    for entry in agents.iter_mut() {
        let Some(use_node) = entry.value.get("use") else {
            continue;
        };
        let Some(relative) = use_node.as_text().map(str::to_owned) else {
            // Not text: the shape check reports it.
            continue;
        };
        let pos = use_node.pos;
        let field = FieldPath::root().key("agents").key(&entry.key).key("use");
        let path = resolve_relative(loading.sources.path(pos.file), &relative);
        let mut chain = vec![identity(loading.sources.path(pos.file))];
        match load_used(&path, pos, &field, &mut chain, loading) {
            Some(base) => {
                entry.value = merge(
                    base,
                    std::mem::replace(&mut entry.value, Node::new(Value::Null, pos)),
                )
            }
            None => {
                failed.insert(entry.key.clone());
            }
        }
    }
    failed
}

fn root_agents(root: &mut Node) -> Option<&mut Value> {
    let Value::Map(entries) = &mut root.value else {
        return None;
    };
    entries
        .iter_mut()
        .find(|entry| entry.key == "agents")
        .map(|entry| &mut entry.value.value)
}

/// A file's identity for cycle detection: its canonical path when it exists.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Reads the agent file at `path` (named by a `use` at `pos`), with its own `use` resolved.
fn load_used(
    path: &Path,
    pos: crate::source::Pos,
    field: &FieldPath,
    chain: &mut Vec<PathBuf>,
    loading: &mut Loading,
) -> Option<Node> {
    let id = identity(path);
    if chain.contains(&id) {
        let mut names: Vec<String> = chain
            .iter()
            .map(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
        names.push(
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        loading.error(
            pos,
            field,
            format!("`use` goes round in a circle: {}", names.join(" -> ")),
            Some("an agent file cannot use itself, directly or through other files".to_owned()),
        );
        return None;
    }
    if chain.len() > MAX_USE_DEPTH {
        loading.error(
            pos,
            field,
            format!("`use` goes more than {MAX_USE_DEPTH} files deep"),
            Some("use a shorter chain of agent files".to_owned()),
        );
        return None;
    }
    let node = match loading.agent_files.get(path) {
        Some(cached) => cached.clone()?,
        None => {
            let parsed = loading
                .parse_file(path, Some((pos, field)), "agent file")
                .map(|(_, node)| node);
            let parsed = parsed.and_then(|node| {
                if matches!(node.value, Value::Map(_)) {
                    Some(node)
                } else {
                    loading.error(
                        pos,
                        field,
                        format!("`{}` does not hold a mapping of agent fields", path.display()),
                        Some("an agent file looks like an entry under `agents:`, e.g. `model: qwen3:1.7b`".to_owned()),
                    );
                    None
                }
            });
            loading
                .agent_files
                .insert(path.to_path_buf(), parsed.clone());
            parsed?
        }
    };
    let Some(inner) = node.get("use") else {
        return Some(node);
    };
    let Some(relative) = inner.as_text() else {
        return Some(node);
    };
    let inner_pos = inner.pos;
    let inner_path = resolve_relative(path, relative);
    chain.push(id);
    let base = load_used(
        &inner_path,
        inner_pos,
        &FieldPath::root().key("use"),
        chain,
        loading,
    )?;
    Some(merge(base, node))
}

/// `over`'s fields on top of `base`'s, placed where `over` is.
fn merge(base: Node, over: Node) -> Node {
    let (Value::Map(base_entries), Value::Map(over_entries)) = (base.value, over.value.clone())
    else {
        return over;
    };
    let replaces_prompt = over_entries
        .iter()
        .any(|entry| entry.key == "prompt" || entry.key == "prompt_file");
    let mut merged: Vec<Entry> = Vec::new();
    for entry in base_entries {
        if entry.key == "use"
            || (replaces_prompt && (entry.key == "prompt" || entry.key == "prompt_file"))
        {
            continue;
        }
        match over_entries
            .iter()
            .find(|over_entry| over_entry.key == entry.key)
        {
            Some(over_entry) if MERGED_FIELDS.contains(&entry.key.as_str()) => merged.push(Entry {
                key: over_entry.key.clone(),
                key_pos: over_entry.key_pos,
                value: merge(entry.value, over_entry.value.clone()),
            }),
            Some(over_entry) => merged.push(over_entry.clone()),
            None => merged.push(entry),
        }
    }
    for entry in over_entries {
        if entry.key != "use" && !merged.iter().any(|existing| existing.key == entry.key) {
            merged.push(entry);
        }
    }
    Node {
        value: Value::Map(merged),
        pos: over.pos,
        raw: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::parse_yaml;
    use crate::source::FileId;

    fn node(text: &str) -> Node {
        parse_yaml(text, FileId(0)).expect("valid YAML")
    }

    #[test]
    fn fields_override_and_maps_merge() {
        let base = node(
            "model: a\nprompt_file: p.md\noptions: {num_ctx: 8192, temperature: 0.2}\nthink: false\n",
        );
        let over = node("use: base.yaml\nprompt: inline\noptions: {temperature: 0.7}\nmodel: b\n");
        let merged = merge(base, over);
        let keys: Vec<&str> = merged
            .entries()
            .iter()
            .map(|entry| entry.key.as_str())
            .collect();
        assert_eq!(keys, ["model", "options", "think", "prompt"]);
        assert_eq!(merged.get("model").and_then(Node::as_text), Some("b"));
        let options = merged.get("options").expect("options");
        assert_eq!(
            options.get("num_ctx").map(|n| &n.value),
            Some(&Value::UInt(8192))
        );
        assert_eq!(
            options.get("temperature").map(|n| &n.value),
            Some(&Value::Float(0.7))
        );
    }

    #[test]
    fn a_scalar_override_replaces_the_base() {
        let merged = merge(node("a: 1\n"), node("x"));
        assert_eq!(merged.value, Value::Str("x".into()));
    }
}
