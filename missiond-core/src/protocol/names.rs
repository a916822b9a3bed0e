//! The names of unit-variant enums, taken from their serde attributes, so the wire name, the CLI
//! name and the log name of a state or kind are one string that cannot diverge.

use serde::de::value::Error as NameError;
use serde::de::IntoDeserializer;
use serde::ser::{Impossible, Serialize, Serializer};

/// The serde name of a unit variant (`SemanticState::ToolRunning` -> `"tool_running"`).
/// Anything that is not a unit variant has no name: `""` (only unit enums call this).
pub(crate) fn name_of<T: Serialize>(value: &T) -> &'static str {
    value.serialize(VariantName).unwrap_or("")
}

/// The variant whose serde name is `s`, if any.
pub(crate) fn parse_name<'de, T: serde::Deserialize<'de>>(s: &'de str) -> Option<T> {
    let de: serde::de::value::StrDeserializer<'de, NameError> = s.into_deserializer();
    T::deserialize(de).ok()
}

/// A serializer that accepts only a unit variant and returns its name.
struct VariantName;

fn not_a_unit_variant<T>() -> Result<T, NameError> {
    Err(serde::ser::Error::custom("not a unit variant"))
}

macro_rules! refuse {
    ($($method:ident($($ty:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $ty),*) -> Result<&'static str, NameError> {
            not_a_unit_variant()
        })*
    };
}

impl Serializer for VariantName {
    type Ok = &'static str;
    type Error = NameError;
    type SerializeSeq = Impossible<&'static str, NameError>;
    type SerializeTuple = Impossible<&'static str, NameError>;
    type SerializeTupleStruct = Impossible<&'static str, NameError>;
    type SerializeTupleVariant = Impossible<&'static str, NameError>;
    type SerializeMap = Impossible<&'static str, NameError>;
    type SerializeStruct = Impossible<&'static str, NameError>;
    type SerializeStructVariant = Impossible<&'static str, NameError>;

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<&'static str, NameError> {
        Ok(variant)
    }

    refuse!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
    );

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<&'static str, NameError> {
        not_a_unit_variant()
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NameError> {
        not_a_unit_variant()
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NameError> {
        not_a_unit_variant()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NameError> {
        not_a_unit_variant()
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NameError> {
        not_a_unit_variant()
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NameError> {
        not_a_unit_variant()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NameError> {
        not_a_unit_variant()
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NameError> {
        not_a_unit_variant()
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NameError> {
        not_a_unit_variant()
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NameError> {
        not_a_unit_variant()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tasks::TaskStatus;
    use crate::protocol::{Profile, SemanticState};

    #[test]
    fn names_are_the_serde_names() {
        assert_eq!(name_of(&SemanticState::ToolRunning), "tool_running");
        assert_eq!(name_of(&Profile::ClaudeCode), "claude-code");
        assert_eq!(name_of(&TaskStatus::InProgress), "in_progress");
        for s in [
            SemanticState::Starting,
            SemanticState::Idle,
            SemanticState::Thinking,
            SemanticState::ToolRunning,
            SemanticState::Responding,
            SemanticState::Confirming,
            SemanticState::Error,
            SemanticState::Exited,
        ] {
            let wire = serde_json::to_string(&s).unwrap_or_default();
            assert_eq!(wire, format!("\"{}\"", name_of(&s)));
            assert_eq!(parse_name::<SemanticState>(name_of(&s)), Some(s));
        }
    }

    #[test]
    fn unknown_or_non_unit_values_have_no_name() {
        assert_eq!(parse_name::<SemanticState>("Thinking"), None);
        assert_eq!(parse_name::<SemanticState>(""), None);
        assert_eq!(name_of(&7u32), "");
        assert_eq!(name_of(&"idle"), "");
    }
}
