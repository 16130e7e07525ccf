//! How large a release record is, as DynamoDB counts an item, and how large
//! this crate lets one grow.
//!
//! Every deployment is appended to its release's record, and a DynamoDB item
//! holds at most 400 KB. A deploy checks the record it would leave behind
//! before its first write, on every backend (records move between backends
//! as they are, so one that fits nowhere else is refused everywhere).

use serde_json::Value;

/// The most a DynamoDB item holds: 400 KB, names and values included.
pub const DYNAMODB_ITEM_LIMIT: usize = 400 * 1024;

/// The largest release record a deploy leaves behind. Below
/// [`DYNAMODB_ITEM_LIMIT`] by 9,600 bytes, for deployments recorded by
/// others between a plan and its execution and for the estimate's rounding
/// of numbers.
pub const MAX_RECORD_SIZE: usize = 400_000;

/// Above this size (75% of [`MAX_RECORD_SIZE`]) a deploy warns that the
/// release's record is filling up.
pub const RECORD_SIZE_WARNING: usize = 300_000;

/// The size of a record (the JSON form of an item) as DynamoDB counts it:
/// each attribute's name and value; a string is its UTF-8 bytes, a number
/// about one byte per two digits plus one, `null` and booleans one byte, a
/// list or map 3 bytes plus, for each element, 1 byte, its key (in a map)
/// and its value.
pub fn item_size(record: &Value) -> usize {
    match record {
        Value::Object(attributes) => attributes
            .iter()
            .map(|(name, value)| name.len() + value_size(value))
            .sum(),
        other => value_size(other),
    }
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::String(s) => s.len(),
        Value::Number(n) => {
            let digits = n.to_string().chars().filter(char::is_ascii_digit).count();
            digits.div_ceil(2) + 1
        }
        Value::Array(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        Value::Object(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_follow_dynamodb_rules() {
        // Top-level attributes: name + value, no overhead.
        assert_eq!(item_size(&json!({"id": "abc"})), 2 + 3);
        assert_eq!(item_size(&json!({"é": "ü"})), 2 + 2, "UTF-8 bytes");
        assert_eq!(item_size(&json!({"n": null, "b": true})), 2 + 2);
        assert_eq!(item_size(&json!({"n": 12345})), 1 + 3 + 1);
        // A list: 3 + per element 1 + value.
        assert_eq!(item_size(&json!({"l": []})), 1 + 3);
        assert_eq!(item_size(&json!({"l": ["ab", "c"]})), 1 + 3 + 3 + 2);
        // A map: 3 + per element 1 + key + value.
        assert_eq!(item_size(&json!({"m": {"k": "vv"}})), 1 + 3 + 1 + 1 + 2);
        assert_eq!(
            item_size(&json!({"m": {"l": [{"x": "y"}]}})),
            1 + 3 + (1 + 1 + (3 + 1 + (3 + 1 + 1 + 1)))
        );
    }
}
