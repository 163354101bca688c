//! Reading typed values out of the YAML tree with serde.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use crate::node::{Entry, Node, Value};
use crate::source::Pos;

/// Why a tree did not fit a type. The loader checks the tree against the schema first, so
/// this only fires for what a schema cannot express.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeError {
    pub(crate) message: String,
    pub(crate) pos: Option<Pos>,
}

impl fmt::Display for NodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for NodeError {}

impl de::Error for NodeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        NodeError {
            message: message.to_string(),
            pos: None,
        }
    }
}

impl NodeError {
    fn at(mut self, pos: Pos) -> NodeError {
        self.pos.get_or_insert(pos);
        self
    }
}

/// Reads a `T` from a node.
pub(crate) fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, NodeError> {
    T::deserialize(node)
}

impl<'de> de::Deserializer<'de> for &Node {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let result = match &self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(value) => visitor.visit_bool(*value),
            Value::Int(value) => visitor.visit_i64(*value),
            Value::UInt(value) => visitor.visit_u64(*value),
            Value::Float(value) => visitor.visit_f64(*value),
            Value::Str(value) => visitor.visit_str(value),
            Value::Seq(items) => visitor.visit_seq(Items(items.iter())),
            Value::Map(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
            }),
        };
        result.map_err(|error| error.at(self.pos))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        // A field that takes text takes any scalar as it was spelt: `name: 2024`.
        match self.as_text() {
            Some(text) => visitor
                .visit_str(text)
                .map_err(|error: NodeError| error.at(self.pos)),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        let result = match &self.value {
            Value::Str(name) => visitor.visit_enum(name.as_str().into_deserializer()),
            Value::Map(entries) if entries.len() == 1 => visitor.visit_enum(Variant(&entries[0])),
            _ => Err(de::Error::custom(
                "expected a name, or a mapping with a single key",
            )),
        };
        result.map_err(|error| error.at(self.pos))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct Items<'a>(std::slice::Iter<'a, Node>);

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = NodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, NodeError> {
        self.0.next().map(|item| seed.deserialize(item)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'a> {
    entries: std::slice::Iter<'a, Entry>,
    value: Option<&'a Node>,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = NodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NodeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(&entry.value);
        seed.deserialize(entry.key.as_str().into_deserializer())
            .map(Some)
            .map_err(|error: NodeError| error.at(entry.key_pos))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value was read before its key"))?;
        seed.deserialize(value)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct Variant<'a>(&'a Entry);

impl<'de, 'a> EnumAccess<'de> for Variant<'a> {
    type Error = NodeError;
    type Variant = &'a Node;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, &'a Node), NodeError> {
        let name = seed.deserialize(self.0.key.as_str().into_deserializer())?;
        Ok((name, &self.0.value))
    }
}

impl<'de> VariantAccess<'de> for &Node {
    type Error = NodeError;

    fn unit_variant(self) -> Result<(), NodeError> {
        match self.value {
            Value::Null => Ok(()),
            _ => Err(de::Error::custom("this name takes no value")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, NodeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        de::Deserializer::deserialize_any(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::node::parse_yaml;
    use crate::source::FileId;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Shape {
        Always,
        Contains(String),
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(untagged)]
    enum Either {
        Number(i64),
        Text(String),
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: String,
        count: Option<u32>,
        shapes: Vec<Shape>,
        either: Vec<Either>,
        map: BTreeMap<String, f64>,
    }

    #[test]
    fn reads_structs_enums_and_untagged_values() {
        let text = "name: 2024\ncount: 3\nshapes: [always, {contains: OK}]\neither: [-1, 30m]\nmap: {a: 1, b: 0.5}\n";
        let node = parse_yaml(text, FileId(0)).expect("valid YAML");
        let sample: Sample = from_node(&node).expect("fits");
        assert_eq!(
            sample,
            Sample {
                name: "2024".into(),
                count: Some(3),
                shapes: vec![Shape::Always, Shape::Contains("OK".into())],
                either: vec![Either::Number(-1), Either::Text("30m".into())],
                map: BTreeMap::from([("a".into(), 1.0), ("b".into(), 0.5)]),
            }
        );
    }

    #[test]
    fn errors_carry_the_position_of_the_failing_value() {
        let text = "name: x\ncount: -4\nshapes: []\neither: []\nmap: {}\n";
        let node = parse_yaml(text, FileId(0)).expect("valid YAML");
        let error = from_node::<Sample>(&node).unwrap_err();
        assert_eq!(error.pos.map(|pos| pos.line), Some(2), "{error}");
    }
}
