//! Checks a YAML tree against the JSON Schema of the format, reporting every unknown key,
//! wrong type and missing field at once.
//!
//! The schema is the one `agentrun schema` prints, generated from the serde types, so the
//! loader, the editor integration and the docs can never disagree about the format. Only the
//! keywords schemars emits for these types are interpreted: `$ref`, `type`, `properties`,
//! `additionalProperties`, `required`, `items`, `minItems`, `maxItems`, `anyOf`, `oneOf`,
//! `const` and integer `format`s.

#[cfg(test)]
mod tests;
mod wording;

use serde_json::{Map, Value as Json};

use crate::node::{FieldPath, Node, Value};
use crate::source::Pos;
use crate::spelling;

use wording::{
    as_hint, describe_alternatives, describe_node, describe_schema, first_sentence, lower_first,
    misplaced_key_hint, type_hint,
};

/// One way a tree does not fit the schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ShapeProblem {
    pub(crate) path: FieldPath,
    pub(crate) pos: Pos,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

/// Every place where `node` does not fit `schema` (a root schema with `$defs`), whose own
/// definition is called `root_name` (for hints about misplaced keys).
pub(crate) fn check_shape(node: &Node, schema: &Json, root_name: &str) -> Vec<ShapeProblem> {
    let empty = Map::new();
    let defs = schema
        .get("$defs")
        .and_then(Json::as_object)
        .unwrap_or(&empty);
    let mut checker = Checker {
        defs,
        problems: Vec::new(),
    };
    let context = Context {
        buffered: false,
        def_name: root_name,
        description: None,
    };
    checker.check(node, schema, &FieldPath::root(), context);
    checker.problems
}

struct Checker<'a> {
    defs: &'a Map<String, Json>,
    problems: Vec<ShapeProblem>,
}

#[derive(Clone, Copy)]
struct Context<'a> {
    /// Inside an untagged enum, serde sees scalars as what they look like, so a field that
    /// takes text no longer takes a number.
    buffered: bool,
    /// The `$defs` name of the innermost type, for hints about misplaced keys.
    def_name: &'a str,
    /// The documentation of the field being checked, used as a hint.
    description: Option<&'a str>,
}

impl<'a> Checker<'a> {
    fn check(&mut self, node: &Node, schema: &'a Json, path: &FieldPath, context: Context<'a>) {
        let mut context = context;
        if let Some(description) = schema.get("description").and_then(Json::as_str) {
            context.description.get_or_insert(description);
        }
        let (schema, def_name) = self.resolve(schema);
        if let Some(name) = def_name {
            context.def_name = name;
        }
        if let Some(description) = schema.get("description").and_then(Json::as_str) {
            context.description.get_or_insert(description);
        }
        if let Some(alternatives) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Json::as_array)
        {
            let untagged = schema.get("anyOf").is_some();
            self.check_alternatives(node, alternatives, untagged, path, context);
            return;
        }
        if let Some(constant) = schema.get("const") {
            if constant.as_str() != node.as_text() {
                self.problem(
                    node.pos,
                    path,
                    format!("expected {}", describe_schema(schema)),
                    None,
                );
            }
            return;
        }
        if !self.check_type(node, schema, path, context) {
            return;
        }
        match &node.value {
            Value::Map(_) => self.check_object(node, schema, path, context),
            Value::Seq(items) => self.check_array(node, items, schema, path, context),
            _ => {}
        }
    }

    fn resolve(&self, schema: &'a Json) -> (&'a Json, Option<&'a str>) {
        let mut schema = schema;
        let mut name = None;
        // Definitions never refer to themselves directly; the bound only guards bad input.
        for _ in 0..8 {
            let Some(reference) = schema.get("$ref").and_then(Json::as_str) else {
                break;
            };
            let Some((key, target)) = reference
                .strip_prefix("#/$defs/")
                .and_then(|key| self.defs.get_key_value(key))
            else {
                break;
            };
            schema = target;
            name = Some(key.as_str());
        }
        (schema, name)
    }

    fn check_alternatives(
        &mut self,
        node: &Node,
        alternatives: &'a [Json],
        untagged: bool,
        path: &FieldPath,
        context: Context<'a>,
    ) {
        let (nulls, others): (Vec<&Json>, Vec<&Json>) = alternatives
            .iter()
            .partition(|alternative| is_null_schema(self.resolve(alternative).0));
        if matches!(node.value, Value::Null) && !nulls.is_empty() {
            return;
        }
        if let [only] = others.as_slice() {
            self.check(node, only, path, context);
            return;
        }
        let context = Context {
            buffered: context.buffered || untagged,
            ..context
        };
        if others
            .iter()
            .any(|alternative| self.fits(node, alternative, path, context))
        {
            return;
        }
        let by_kind: Vec<&Json> = others
            .iter()
            .copied()
            .filter(|alternative| {
                kind_accepted(node, self.resolve(alternative).0, context.buffered)
            })
            .collect();
        if let [only] = by_kind.as_slice() {
            self.check(node, only, path, context);
            return;
        }
        let resolved: Vec<&Json> = others.iter().map(|a| self.resolve(a).0).collect();
        if let Value::Map(entries) = &node.value {
            let keyed: Vec<&Json> = by_kind
                .iter()
                .copied()
                .filter(|alternative| {
                    let properties = self.resolve(alternative).0.get("properties");
                    entries.iter().any(|entry| {
                        properties.is_some_and(|properties| properties.get(&entry.key).is_some())
                    })
                })
                .collect();
            match keyed.as_slice() {
                [only] => {
                    self.check(node, only, path, context);
                    return;
                }
                [] => {
                    let known: Vec<&str> = resolved
                        .iter()
                        .filter_map(|schema| schema.get("properties").and_then(Json::as_object))
                        .flat_map(|properties| properties.keys().map(String::as_str))
                        .collect();
                    if !known.is_empty() {
                        for entry in entries {
                            self.unknown_key(entry, path, &known, context.def_name);
                        }
                        if !entries.is_empty() {
                            return;
                        }
                    }
                }
                _ => {
                    self.problem(
                        node.pos,
                        path,
                        format!("expected {}", describe_alternatives(&resolved)),
                        Some("give exactly one of these keys".to_owned()),
                    );
                    return;
                }
            }
        }
        let constants: Vec<&str> = resolved
            .iter()
            .filter_map(|schema| schema.get("const").and_then(Json::as_str))
            .collect();
        if let (Some(text), false) = (node.as_text(), constants.is_empty()) {
            let hint = Some(
                spelling::nearest(text, constants.iter().copied())
                    .map(|near| format!("did you mean `{near}`?"))
                    .unwrap_or_else(|| "use one of the values listed".to_owned()),
            );
            self.problem(
                node.pos,
                path,
                format!(
                    "unknown value `{text}`; expected {}",
                    describe_alternatives(&resolved)
                ),
                hint,
            );
            return;
        }
        self.problem(
            node.pos,
            path,
            format!(
                "expected {}, found {}",
                describe_alternatives(&resolved),
                describe_node(node)
            ),
            context.description.map(as_hint),
        );
    }

    /// Whether `node` fits `schema` without a single problem.
    fn fits(&self, node: &Node, schema: &'a Json, path: &FieldPath, context: Context<'a>) -> bool {
        let mut trial = Checker {
            defs: self.defs,
            problems: Vec::new(),
        };
        trial.check(node, schema, path, context);
        trial.problems.is_empty()
    }

    /// Checks `type` and integer ranges; false when the node is of the wrong kind.
    fn check_type(
        &mut self,
        node: &Node,
        schema: &Json,
        path: &FieldPath,
        context: Context<'a>,
    ) -> bool {
        if schema.get("type").is_none() {
            return true;
        }
        if !kind_accepted(node, schema, context.buffered) {
            let hint = type_hint(node, schema).or_else(|| context.description.map(as_hint));
            self.problem(
                node.pos,
                path,
                format!(
                    "expected {}, found {}",
                    describe_schema(schema),
                    describe_node(node)
                ),
                hint,
            );
            return false;
        }
        let format = schema.get("format").and_then(Json::as_str);
        let (minimum, maximum): (i128, i128) = match format {
            Some("uint8") => (0, u8::MAX.into()),
            Some("uint16") => (0, u16::MAX.into()),
            Some("uint32") => (0, u32::MAX.into()),
            Some("uint64" | "uint") => (0, u64::MAX.into()),
            Some("int32") => (i32::MIN.into(), i32::MAX.into()),
            Some("int64" | "int") => (i64::MIN.into(), i64::MAX.into()),
            _ => return true,
        };
        let number: i128 = match node.value {
            Value::Int(value) => value.into(),
            Value::UInt(value) => value.into(),
            _ => return true,
        };
        if number < minimum {
            self.problem(
                node.pos,
                path,
                format!("expected a number of at least {minimum}, found {number}"),
                None,
            );
            return false;
        }
        if number > maximum {
            self.problem(
                node.pos,
                path,
                format!("the number {number} is too large (at most {maximum})"),
                None,
            );
            return false;
        }
        true
    }

    fn check_object(
        &mut self,
        node: &Node,
        schema: &'a Json,
        path: &FieldPath,
        context: Context<'a>,
    ) {
        static EMPTY: std::sync::OnceLock<Map<String, Json>> = std::sync::OnceLock::new();
        let properties = schema
            .get("properties")
            .and_then(Json::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new));
        let additional = schema.get("additionalProperties");
        for entry in node.entries() {
            let child_context = Context {
                description: None,
                ..context
            };
            if let Some(property) = properties.get(&entry.key) {
                self.check(&entry.value, property, &path.key(&entry.key), child_context);
                continue;
            }
            match additional {
                Some(Json::Bool(false)) => {
                    let known: Vec<&str> = properties.keys().map(String::as_str).collect();
                    self.unknown_key(entry, path, &known, context.def_name);
                }
                Some(extra @ Json::Object(_)) => {
                    self.check(&entry.value, extra, &path.key(&entry.key), child_context);
                }
                _ => {}
            }
        }
        for required in schema
            .get("required")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let Some(key) = required.as_str() else {
                continue;
            };
            if node.entry(key).is_none() {
                let description = properties
                    .get(key)
                    .and_then(|property| property.get("description"))
                    .and_then(Json::as_str);
                let hint = match description {
                    Some(description) => format!(
                        "add `{key}:` here ({})",
                        lower_first(first_sentence(description))
                    ),
                    None => format!("add `{key}:` here"),
                };
                self.problem(
                    node.pos,
                    &path.key(key),
                    "required key is missing".to_owned(),
                    Some(hint),
                );
            }
        }
    }

    fn check_array(
        &mut self,
        node: &Node,
        items: &[Node],
        schema: &'a Json,
        path: &FieldPath,
        context: Context<'a>,
    ) {
        let count = items.len() as u64;
        let minimum = schema.get("minItems").and_then(Json::as_u64);
        let maximum = schema.get("maxItems").and_then(Json::as_u64);
        let count_problem = match (minimum, maximum) {
            (Some(min), Some(max)) if min == max && count != min => {
                Some(format!("expected exactly {min} values, found {count}"))
            }
            (Some(min), _) if count < min => {
                Some(format!("expected at least {min} values, found {count}"))
            }
            (_, Some(max)) if count > max => {
                Some(format!("expected at most {max} values, found {count}"))
            }
            _ => None,
        };
        if let Some(message) = count_problem {
            self.problem(node.pos, path, message, context.description.map(as_hint));
        }
        let Some(item_schema) = schema.get("items") else {
            return;
        };
        for (index, item) in items.iter().enumerate() {
            let item_context = Context {
                description: None,
                ..context
            };
            self.check(item, item_schema, &path.index(index), item_context);
        }
    }

    fn unknown_key(
        &mut self,
        entry: &crate::node::Entry,
        path: &FieldPath,
        known: &[&str],
        def_name: &str,
    ) {
        let hint = misplaced_key_hint(def_name, &entry.key)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                spelling::suggestion(&entry.key, known.iter().copied(), "known keys here")
            });
        let mut pos = entry.key_pos;
        pos.width = u32::try_from(entry.key.chars().count()).unwrap_or(1);
        self.problems.push(ShapeProblem {
            path: path.key(&entry.key),
            pos,
            message: "unknown key".to_owned(),
            hint: Some(hint),
        });
    }

    fn problem(&mut self, pos: Pos, path: &FieldPath, message: String, hint: Option<String>) {
        self.problems.push(ShapeProblem {
            path: path.clone(),
            pos,
            message,
            hint,
        });
    }
}

fn is_null_schema(schema: &Json) -> bool {
    schema.get("type").and_then(Json::as_str) == Some("null")
}

pub(super) fn schema_types(schema: &Json) -> Vec<&str> {
    match schema.get("type") {
        Some(Json::String(single)) => vec![single.as_str()],
        Some(Json::Array(many)) => many.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether the node's kind is one the schema's `type` allows (constants count as text).
fn kind_accepted(node: &Node, schema: &Json, buffered: bool) -> bool {
    let types = schema_types(schema);
    if types.is_empty() {
        return schema.get("const").is_some() && matches!(node.value, Value::Str(_));
    }
    let has = |name: &str| types.contains(&name);
    let text_takes_scalar = has("string") && !buffered;
    match node.value {
        Value::Null => has("null"),
        Value::Bool(_) => has("boolean") || text_takes_scalar,
        Value::Int(_) | Value::UInt(_) => has("integer") || has("number") || text_takes_scalar,
        Value::Float(_) => has("number") || text_takes_scalar,
        Value::Str(_) => has("string"),
        Value::Seq(_) => has("array"),
        Value::Map(_) => has("object"),
    }
}
