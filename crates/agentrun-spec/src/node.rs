//! The YAML tree of one file: every value with its position, parsed by serde-saphyr under a
//! tight budget.
//!
//! Files are read into this tree first, rather than straight into typed structs, so that the
//! loader can report every problem at once, merge `use`d agent files key by key, and point
//! at the line of any field later on.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::source::{FileId, Pos};

/// A value in the tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A value and where it is. A mapping or list under a key is placed at its key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) pos: Pos,
    /// How a non-text scalar was spelt (`1.50`, `0x10`, `true`), for fields that take text.
    pub(crate) raw: Option<String>,
}

/// One `key: value` pair of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_pos: Pos,
    pub(crate) value: Node,
}

impl Node {
    pub(crate) fn new(value: Value, pos: Pos) -> Node {
        Node {
            value,
            pos,
            raw: None,
        }
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    pub(crate) fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries().iter().find(|entry| entry.key == key)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|entry| &entry.value)
    }

    pub(crate) fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// The text of a string scalar, or the spelling of another scalar.
    pub(crate) fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::Str(text) => Some(text),
            Value::Bool(_) | Value::Int(_) | Value::UInt(_) | Value::Float(_) => {
                self.raw.as_deref()
            }
            _ => None,
        }
    }

    /// The node at `path`, or the deepest node on the way there: a missing field is reported
    /// at the mapping that lacks it.
    pub(crate) fn locate(&self, path: &FieldPath) -> Pos {
        let mut node = self;
        let mut pos = self.pos;
        for segment in &path.0 {
            let next = match segment {
                Segment::Key(key) => node.entry(key).map(|entry| {
                    // An empty value has no place of its own; its key does.
                    let at_key = matches!(entry.value.value, Value::Null);
                    (
                        &entry.value,
                        if at_key {
                            entry.key_pos
                        } else {
                            entry.value.pos
                        },
                    )
                }),
                Segment::Index(index) => node.items().get(*index).map(|item| (item, item.pos)),
            };
            match next {
                Some((child, child_pos)) => {
                    node = child;
                    pos = child_pos;
                }
                None => break,
            }
        }
        pos
    }
}

/// A field's place in the tree: `agents.coder.options.num_ctx`, `flow.edges[2].to`.
#[derive(Debug, Clone, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub(crate) struct FieldPath(pub(crate) Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

impl FieldPath {
    pub(crate) fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    pub(crate) fn key(&self, key: &str) -> FieldPath {
        let mut path = self.clone();
        path.0.push(Segment::Key(key.to_owned()));
        path
    }

    pub(crate) fn index(&self, index: usize) -> FieldPath {
        let mut path = self.clone();
        path.0.push(Segment::Index(index));
        path
    }

    pub(crate) fn starts_with(&self, prefix: &FieldPath) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if index == 0 => write!(formatter, "{key}")?,
                Segment::Key(key) => write!(formatter, ".{key}")?,
                Segment::Index(position) => write!(formatter, "[{position}]")?,
            }
        }
        Ok(())
    }
}

/// Why a file is not YAML this loader accepts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    pub(crate) pos: Pos,
}

/// Parses one YAML document into a tree, under budgets that stop entity expansion ("billion
/// laughs"), deep nesting and node floods long before they cost memory or stack.
pub(crate) fn parse_yaml(text: &str, file: FileId) -> Result<Node, SyntaxError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_nodes: 100_000,
            max_events: 400_000,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_documents: 1,
            max_total_scalar_bytes: 8 << 20,
            max_recorded_anchor_events: 100_000,
            max_recorded_anchor_bytes: 8 << 20,
            max_merge_keys: 1_000,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
        },
        strict_booleans: true,
        with_snippet: false,
    };
    let root: Spanned<RawValue> = serde_saphyr::from_str_with_options(text, options)
        .map_err(|error| syntax_error(&error, file))?;
    Ok(into_node(root, text, file))
}

/// Deepest nesting of mappings and lists accepted; the format itself needs six levels.
const MAX_DEPTH: usize = 32;

fn syntax_error(error: &serde_saphyr::Error, file: FileId) -> SyntaxError {
    let location = error.location();
    let pos = location
        .map(|location| Pos {
            file,
            line: u32::try_from(location.line()).unwrap_or(u32::MAX).max(1),
            column: u32::try_from(location.column()).unwrap_or(u32::MAX).max(1),
            width: 1,
        })
        .unwrap_or(Pos::file_start(file));
    let (message, hint) = describe_yaml_error(error);
    SyntaxError { message, hint, pos }
}

struct PlainLocalizer;

impl serde_saphyr::Localizer for PlainLocalizer {
    fn attach_location<'a>(
        &self,
        base: std::borrow::Cow<'a, str>,
        _location: serde_saphyr::Location,
    ) -> std::borrow::Cow<'a, str> {
        base
    }

    fn alias_defined_at(&self, _defined: serde_saphyr::Location) -> String {
        String::new()
    }

    fn alias_used_at(&self, _used: serde_saphyr::Location) -> String {
        String::new()
    }
}

fn describe_yaml_error(error: &serde_saphyr::Error) -> (String, Option<String>) {
    if let Some(breach) = budget_breach(error) {
        return breach;
    }
    let formatter = serde_saphyr::UserMessageFormatter.with_localizer(&PlainLocalizer);
    let plain = error.render_with_options(serde_saphyr::render_options! {
        formatter: &formatter,
        snippets: serde_saphyr::SnippetMode::Off,
    });
    if plain.contains("recursion limit") {
        return too_large(format!(
            "the YAML is nested more than {MAX_DEPTH} levels deep"
        ));
    }
    let message = format!("invalid YAML: {}", plain.trim());
    let lower = message.to_lowercase();
    let hint = if lower.contains("tab") {
        "indent with spaces; YAML does not allow tabs for indentation"
    } else if lower.contains("duplicate") {
        "each key may appear once in a mapping; remove or rename one of them"
    } else if lower.contains("multiple") && lower.contains("document") {
        "a workflow file holds one YAML document; remove the `---` separator"
    } else if lower.contains("recursive") {
        "an alias cannot refer to the mapping or list that contains it"
    } else {
        "check the indentation and quoting here: nested keys must be indented more than their \
         parent, and text containing `: ` or starting with `[`, `{`, `*`, `&` or `!` needs quotes"
    };
    (message, Some(hint.to_owned()))
}

fn budget_breach(error: &serde_saphyr::Error) -> Option<(String, Option<String>)> {
    let mut current = error;
    loop {
        match current {
            serde_saphyr::Error::WithSnippet { error, .. }
            | serde_saphyr::Error::AliasError { error, .. } => current = error,
            serde_saphyr::Error::Budget { breach, .. } => {
                use serde_saphyr::budget::BudgetBreach;
                let message = match breach {
                    BudgetBreach::Depth { .. } => {
                        format!("the YAML is nested more than {MAX_DEPTH} levels deep")
                    }
                    BudgetBreach::Aliases { .. }
                    | BudgetBreach::AliasAnchorRatio { .. }
                    | BudgetBreach::Anchors { .. }
                    | BudgetBreach::RecordedAnchorEvents { .. }
                    | BudgetBreach::RecordedAnchorBytes { .. } => {
                        "the YAML expands aliases (`*name`) far beyond what a workflow needs"
                            .to_owned()
                    }
                    BudgetBreach::Documents { .. } => {
                        "a workflow file holds one YAML document".to_owned()
                    }
                    _ => "the YAML is far larger than a workflow needs".to_owned(),
                };
                return Some(too_large(message));
            }
            _ => return None,
        }
    }
}

fn too_large(message: String) -> (String, Option<String>) {
    (
        format!("{message}; refusing to read further"),
        Some(
            "workflow files are small and shallow: write the structure out plainly, and use \
             `use:` or `prompt_file:` to share definitions"
                .to_owned(),
        ),
    )
}

/// A YAML value as serde-saphyr hands it over, with the span of every node.
enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<RawValue>, Spanned<RawValue>)>),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawValue, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(deserializer)
    }
    fn visit_bool<E>(self, value: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(value))
    }
    fn visit_i64<E>(self, value: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(value))
    }
    fn visit_u64<E>(self, value: u64) -> Result<RawValue, E> {
        Ok(RawValue::UInt(value))
    }
    fn visit_i128<E: serde::de::Error>(self, value: i128) -> Result<RawValue, E> {
        i64::try_from(value)
            .map(RawValue::Int)
            .map_err(|_| E::custom("the number is too large"))
    }
    fn visit_u128<E: serde::de::Error>(self, value: u128) -> Result<RawValue, E> {
        u64::try_from(value)
            .map(RawValue::UInt)
            .map_err(|_| E::custom("the number is too large"))
    }
    fn visit_f64<E>(self, value: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(value))
    }
    fn visit_str<E>(self, value: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(value.to_owned()))
    }
    fn visit_string<E>(self, value: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(value))
    }
    fn visit_bytes<E>(self, value: &[u8]) -> Result<RawValue, E> {
        Ok(RawValue::Str(String::from_utf8_lossy(value).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = access.next_element::<Spanned<RawValue>>()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = access.next_entry::<Spanned<RawValue>, Spanned<RawValue>>()? {
            entries.push(entry);
        }
        Ok(RawValue::Map(entries))
    }
}

fn position(location: &serde_saphyr::Location, file: FileId) -> Pos {
    Pos {
        file,
        line: u32::try_from(location.line()).unwrap_or(u32::MAX),
        column: u32::try_from(location.column()).unwrap_or(u32::MAX),
        width: u32::try_from(location.span().len()).unwrap_or(u32::MAX),
    }
}

/// The source spelling of a scalar, from the byte span where it is defined.
fn spelling(spanned: &Spanned<RawValue>, text: &str) -> Option<String> {
    let span = spanned.defined.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let length = usize::try_from(span.byte_len()?).ok()?;
    text.get(start..start.checked_add(length)?)
        .map(|spelt| spelt.trim().to_owned())
}

fn into_node(spanned: Spanned<RawValue>, text: &str, file: FileId) -> Node {
    let pos = position(&spanned.referenced, file);
    let raw = match spanned.value {
        RawValue::Bool(_) | RawValue::Int(_) | RawValue::UInt(_) | RawValue::Float(_) => {
            spelling(&spanned, text)
        }
        _ => None,
    };
    let value = match spanned.value {
        RawValue::Null => Value::Null,
        RawValue::Bool(value) => Value::Bool(value),
        RawValue::Int(value) => Value::Int(value),
        RawValue::UInt(value) => Value::UInt(value),
        RawValue::Float(value) => Value::Float(value),
        RawValue::Str(value) => Value::Str(value),
        RawValue::Seq(items) => Value::Seq(
            items
                .into_iter()
                .map(|item| into_node(item, text, file))
                .collect(),
        ),
        RawValue::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(key, value)| {
                    let key = into_node(key, text, file);
                    let mut value = into_node(value, text, file);
                    if matches!(value.value, Value::Map(_) | Value::Seq(_)) {
                        value.pos = key.pos;
                    }
                    Entry {
                        key: key.as_text().unwrap_or_default().to_owned(),
                        key_pos: key.pos,
                        value,
                    }
                })
                .collect(),
        ),
    };
    Node { value, pos, raw }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Node, SyntaxError> {
        parse_yaml(text, FileId(0))
    }

    #[test]
    fn keeps_positions_and_spellings() {
        let node = parse("name: x\nagents:\n  coder:\n    model: 1.50\n    num: 0x10\n")
            .expect("valid YAML");
        let coder = node
            .get("agents")
            .and_then(|a| a.get("coder"))
            .expect("coder");
        assert_eq!((coder.pos.line, coder.pos.column), (3, 3));
        let model = coder.get("model").expect("model");
        assert_eq!(model.value, Value::Float(1.5));
        assert_eq!(model.as_text(), Some("1.50"));
        assert_eq!(
            (model.pos.line, model.pos.column, model.pos.width),
            (4, 12, 4)
        );
        assert_eq!(coder.get("num").and_then(Node::as_text), Some("0x10"));
    }

    #[test]
    fn only_true_and_false_are_booleans() {
        let node = parse("a: yes\nb: on\nc: true\n").expect("valid YAML");
        assert_eq!(
            node.get("a").map(|n| &n.value),
            Some(&Value::Str("yes".into()))
        );
        assert_eq!(
            node.get("b").map(|n| &n.value),
            Some(&Value::Str("on".into()))
        );
        assert_eq!(node.get("c").map(|n| &n.value), Some(&Value::Bool(true)));
    }

    #[test]
    fn locates_fields_and_their_nearest_ancestor() {
        let node = parse("flow:\n  start: a\n  edges:\n    - {from: a, to: b}\n").expect("valid");
        let to = FieldPath::root()
            .key("flow")
            .key("edges")
            .index(0)
            .key("to");
        assert_eq!(to.to_string(), "flow.edges[0].to");
        let pos = node.locate(&to);
        assert_eq!((pos.line, pos.column), (4, 21));
        let missing = FieldPath::root()
            .key("flow")
            .key("edges")
            .index(0)
            .key("when");
        assert_eq!(node.locate(&missing).line, 4);
    }

    #[test]
    fn reports_syntax_errors_with_a_place_and_a_hint() {
        let error = parse("agents:\n  coder:\n    model: x\n   prompt: y\n").unwrap_err();
        assert_eq!(error.pos.line, 4);
        assert!(
            error.message.starts_with("invalid YAML: "),
            "{}",
            error.message
        );
        assert!(!error.message.contains("line 4"), "{}", error.message);
        assert!(error.hint.is_some());
        let tabs = parse("a:\n\tb: 1\n").unwrap_err();
        assert!(tabs.hint.as_deref().unwrap_or_default().contains("spaces"));
    }

    #[test]
    fn refuses_entity_expansion_and_deep_nesting() {
        let mut laughs = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for (name, previous) in ["b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["a", "b", "c", "d", "e", "f", "g"])
        {
            let refs = vec![format!("*{previous}"); 10].join(",");
            laughs.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        let error = parse(&laughs).unwrap_err();
        assert!(error.message.contains("refusing"), "{}", error.message);

        let deep = format!("a: {}{}\n", "[".repeat(200), "]".repeat(200));
        let error = parse(&deep).unwrap_err();
        assert!(
            error.message.contains("nested more than"),
            "{}",
            error.message
        );

        let recursive = parse("a: &x [1, *x]\n").unwrap_err();
        assert!(
            recursive.message.starts_with("invalid YAML"),
            "{}",
            recursive.message
        );
    }

    #[test]
    fn one_document_only() {
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
        assert_eq!(parse("").expect("empty is null").value, Value::Null);
    }
}
