//! Key paths and messages.

use serde_json::{Map, Value};

use super::yaml11::Node;
use crate::error::Error;
use crate::names::{Escaped, MAX_ECHO_CHARS};

/// The location used for problems with the document as a whole.
pub(super) const TOP_LEVEL: &str = "(top level)";
fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// A key or value in double quotes, escaped and cut as every echoed value.
pub(super) fn quoted(key: &str) -> String {
    format!("\"{}\"", Escaped::new(key))
}

/// `parent.key`, or `parent["odd key"]` when the key has dots, spaces, ….
pub(super) fn key_path(parent: &str, key: &str) -> String {
    if is_plain_key(key) && key.len() <= MAX_ECHO_CHARS {
        if parent.is_empty() {
            key.to_owned()
        } else {
            format!("{parent}.{key}")
        }
    } else {
        format!("{parent}[{}]", quoted(key))
    }
}

pub(super) fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// A list in the document: its items, its key path and its YAML node.
pub(super) struct List<'v> {
    items: &'v [Value],
    path: String,
    node: Option<&'v Node>,
}

impl<'v> List<'v> {
    /// The list `items` at `key` of the entry at `path` whose node is `node`.
    pub(super) fn at(
        path: &str,
        key: &str,
        items: &'v [Value],
        node: Option<&'v Node>,
    ) -> List<'v> {
        List {
            items,
            path: key_path(path, key),
            node: node.and_then(|n| n.get(key)),
        }
    }

    /// How many items it holds.
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// Each item with its key path (`storage.environments[1]`) and YAML node.
    pub(super) fn items(&self) -> impl Iterator<Item = (String, &'v Value, Option<&'v Node>)> + '_ {
        self.items.iter().enumerate().map(|(i, item)| {
            (
                index_path(&self.path, i),
                item,
                self.node.and_then(|n| n.index(i)),
            )
        })
    }
}

pub(super) fn invalid(file: &str, location: &str, problem: &str) -> Error {
    Error::ManifestInvalid {
        file: file.to_owned(),
        location: if location.is_empty() {
            TOP_LEVEL.to_owned()
        } else {
            location.to_owned()
        },
        problem: problem.to_owned(),
    }
}

pub(super) fn wrong_type(file: &str, location: &str, expected: &str, found: &Value) -> Error {
    invalid(
        file,
        location,
        &format!(
            "expected {expected}, found {}",
            crate::release::value_kind(found)
        ),
    )
}

/// Edit distance between two short strings (keys), by characters, where
/// swapping two neighbours counts as one edit (`nmae` is one edit from `name`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: the one before the previous is needed for swaps.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j - 1] + cost)
                .min(previous[j] + 1)
                .min(current[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The known key an unknown one is probably a typo of.
pub(super) fn suggestion<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = key.to_lowercase();
    known
        .iter()
        .filter(|k| k.len().abs_diff(lower.len()) <= 2)
        .map(|k| (edit_distance(&lower, k), *k))
        // Short keys need a closer match: `ib` is not a typo of `id`.
        .filter(|(d, k)| *d <= 2 && *d * 2 < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The keys of an entry that are not in `known`.
pub(super) fn unknown_keys<'o>(
    object: &'o Map<String, Value>,
    known: &'o [&str],
) -> impl Iterator<Item = &'o String> + 'o {
    object.keys().filter(move |k| !known.contains(&k.as_str()))
}

/// The unknown key that looks like a typo of `key`, if any: the one the
/// error about a missing `key` names.
pub(super) fn near_miss<'o>(
    object: &'o Map<String, Value>,
    known: &[&str],
    key: &str,
) -> Option<&'o str> {
    object
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .find(|k| suggestion(k, known) == Some(key))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::validate::{ENVIRONMENT_KEYS, PROJECT_KEYS};

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("role_ar", "role_arn"), 1);
        assert_eq!(edit_distance("nmae", "name"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("é", "e"), 1);
    }

    #[test]
    fn suggestions_need_a_close_match() {
        assert_eq!(
            suggestion("enviroments", PROJECT_KEYS),
            Some("environments")
        );
        assert_eq!(suggestion("REGION_NAME", PROJECT_KEYS), Some("region_name"));
        assert_eq!(suggestion("ib", ENVIRONMENT_KEYS), None);
        assert_eq!(suggestion("team", PROJECT_KEYS), None);
    }

    #[test]
    fn key_paths_quote_odd_keys() {
        assert_eq!(key_path("", "storage"), "storage");
        assert_eq!(key_path("storage", "role_arn"), "storage.role_arn");
        assert_eq!(key_path("", "my.project"), r#"["my.project"]"#);
        assert_eq!(key_path("a", "b c"), r#"a["b c"]"#);
        let long = "x".repeat(1000);
        assert!(key_path("a", &long).chars().count() < MAX_ECHO_CHARS + 10);
    }
}
