//! Reading the document: JSON or YAML into a `Value`, duplicate keys
//! rejected.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::messages::{index_path, invalid, key_path, quoted, TOP_LEVEL};
use super::yaml11::{self, Node};
use crate::error::{Error, Result};

/// The document as a value and, for YAML, its node tree (to read ids and
/// names as YAML 1.1 readers do).
type Document = (Value, Option<Rc<Node>>);

pub(super) fn read_document(text: &str, file: &str) -> Result<Document> {
    // Editors on Windows may write a byte-order mark; serde_json rejects it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(invalid(
            file,
            TOP_LEVEL,
            "the manifest is empty; expected an object keyed by project id",
        ));
    }
    let duplicate = RefCell::new(None);
    if matches!(text.trim_start().chars().next(), Some('{' | '[')) {
        // JSON, and only JSON: reading a broken JSON file as YAML would
        // guess at what was meant (a trailing comma, a comment).
        read_json(text, file, &duplicate).map(|value| (value, None))
    } else {
        let value = read_yaml(text, file, &duplicate)?;
        let root = yaml11::compose(text).map_err(|e| {
            let marker = e.marker();
            syntax_error(file, "YAML", (marker.line(), marker.col() + 1), &e.info())
        })?;
        Ok((value, root))
    }
}

fn read_json(text: &str, file: &str, duplicate: &RefCell<Option<String>>) -> Result<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let error = match StrictValue::root(duplicate)
        .deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value))
    {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    if let Some(path) = duplicate.take() {
        return Err(duplicate_key(file, path, Some(error.line())));
    }
    let (line, column) = (error.line(), error.column());
    let message = error.to_string();
    let message = strip_suffix(&message, &format!(" at line {line} column {column}"));
    Err(syntax_error(file, "JSON", (line, column), message))
}

fn read_yaml(text: &str, file: &str, duplicate: &RefCell<Option<String>>) -> Result<Value> {
    let options = serde_saphyr::options! {
        // Our visitor sees repeated keys and reports them with their path.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        // Account ids such as `012345678901` must not lose their leading zero.
        leading_zero_numbers_as_strings: true,
        // A key `~` or `null` is kept as its text, so that the id checks
        // can say how YAML 1.1 readers take it.
        null_as_string: true,
        // `.inf` as a value is kept as text, not refused.
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::AsString,
        // The message goes into one line of our error; no source snippet.
        with_snippet: false,
    };
    let error = match serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        StrictValue::root(duplicate).deserialize(de)
    }) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    if let Some(path) = duplicate.take() {
        let line = error
            .location()
            .or_else(|| yaml_duplicate_location(text))
            .map(|l| saturate(l.line()));
        return Err(duplicate_key(file, path, line));
    }
    let (line, column) = error
        .location()
        .map(|l| (saturate(l.line()), saturate(l.column())))
        .unwrap_or((0, 0));
    let message = error.to_string();
    let message = strip_suffix(&message, &format!(" at line {line}, column {column}"));
    Err(syntax_error(file, "YAML", (line, column), message))
}

/// A parser's error at a 1-based position; 0 (serde_json's column at the
/// start of a line, or no position known) is shown as 1.
fn syntax_error(
    file: &str,
    format: &'static str,
    (line, column): (usize, usize),
    message: &str,
) -> Error {
    Error::ManifestSyntax {
        file: file.to_owned(),
        format,
        line: line.max(1),
        column: column.max(1),
        message: message.to_owned(),
    }
}

/// Where saphyr's own duplicate-key check finds the first repeated key (our
/// visitor's error has no position in YAML). Only called on the error path.
fn yaml_duplicate_location(text: &str) -> Option<serde_saphyr::Location> {
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    };
    let error = serde_saphyr::from_str_with_options::<de::IgnoredAny>(text, options).err()?;
    // Only trust a position that is about a duplicate key.
    if error.to_string().contains("duplicate") {
        error.location()
    } else {
        None
    }
}

fn saturate(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn strip_suffix<'a>(message: &'a str, suffix: &str) -> &'a str {
    message.strip_suffix(suffix).unwrap_or(message)
}

fn duplicate_key(file: &str, path: String, line: Option<usize>) -> Error {
    let again = match line {
        Some(line) if line > 0 => format!(" (again at line {line})"),
        _ => String::new(),
    };
    invalid(
        file,
        &path,
        &format!(
            "appears more than once in the same object{again}; \
             a later entry would silently replace the earlier one, so remove or rename one"
        ),
    )
}

/// Deserializes any JSON/YAML document into a [`Value`] like
/// `serde_json::Value` does, except that a key repeated within one object is
/// an error whose key path is left in `duplicate` (serde_json's own `Value`
/// keeps the last entry silently, which would hide a duplicated project).
struct StrictValue<'a> {
    path: String,
    duplicate: &'a RefCell<Option<String>>,
}

impl<'a> StrictValue<'a> {
    fn root(duplicate: &'a RefCell<Option<String>>) -> StrictValue<'a> {
        StrictValue {
            path: String::new(),
            duplicate,
        }
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON or YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(v) => Value::Number(v.into()),
            // Like serde_json, a number too large for 64 bits becomes a float.
            Err(_) => float(v as f64),
        })
    }

    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(match u64::try_from(v) {
            Ok(v) => Value::Number(v.into()),
            Err(_) => float(v as f64),
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let item = StrictValue {
                path: index_path(&self.path, items.len()),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(item)? {
                Some(value) => items.push(value),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let path = key_path(&self.path, &key);
            if object.contains_key(&key) {
                let message = format!("duplicate key {}", quoted(&key));
                *self.duplicate.borrow_mut() = Some(path);
                return Err(de::Error::custom(message));
            }
            let value = map.next_value_seed(StrictValue {
                path,
                duplicate: self.duplicate,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// A mapping key: a string, or a YAML scalar taken as its text.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        // `deserialize_string` makes YAML hand over a plain scalar's text as
        // written (`2021-09-27`, `012`), not a number or a date.
        deserializer.deserialize_string(self)
    }
}

impl Visitor<'_> for Key {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_unit<E>(self) -> Result<String, E> {
        Ok("null".to_owned())
    }
}
