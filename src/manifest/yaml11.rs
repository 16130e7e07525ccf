//! How YAML 1.1 readers read a scalar, and the YAML node tree kept beside the
//! parsed value so that id and name positions can be checked against it.
//!
//! The earlier tools load the manifest with PyYAML's `safe_load`, a YAML 1.1
//! reader: an unquoted `2021-09-27` is a date to them, `yes` is `True`, `1:20`
//! is the integer 80. This crate reads YAML 1.2, where most of those are
//! strings, so the two would silently disagree about an id. The rules here
//! are PyYAML's implicit resolvers (`yaml/resolver.py`, PyYAML 6), written
//! out by hand; `tests/fixtures/manifests/pyyaml-scalars.json`, made with
//! PyYAML, checks them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, ScanError, Tag};

/// The namespace of YAML's own tags (`!!str` is `tag:yaml.org,2002:str`).
const YAML_TAGS: &str = "tag:yaml.org,2002:";

/// What a YAML 1.1 reader makes of a scalar that it does not read as a
/// string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    /// `yes`, `No`, `ON`, `false`, … (not `y` or `n`: PyYAML reads those as
    /// strings).
    Bool(bool),
    /// `12`, `0x1F`, `017` (octal), `0b101`, `1_000`, `1:20` (base 60).
    Int,
    /// `1.5`, `1.`, `.5`, `1.0e+3`, `1:20.5`, `.inf`, `.NaN`.
    Float,
    /// `~`, `null`, `Null`, `NULL` and the empty scalar.
    Null,
    /// `2021-09-27`.
    Date,
    /// `2021-09-27 10:00:00`, `2001-12-14t21:59:43.10-05:00`.
    Timestamp,
    /// `<<`, which `safe_load` refuses as a value.
    Merge,
    /// `=`, which `safe_load` refuses.
    Value,
    /// An explicit tag other than `!!str`, such as `!!int`.
    Tag(String),
}

impl Reading {
    /// "a date", "the boolean true", …: what the value becomes.
    pub(crate) fn describe(&self) -> String {
        match self {
            Reading::Bool(b) => format!("the boolean {b}"),
            Reading::Int => "an integer".to_owned(),
            Reading::Float => "a floating-point number".to_owned(),
            Reading::Null => "null".to_owned(),
            Reading::Date => "a date".to_owned(),
            Reading::Timestamp => "a timestamp".to_owned(),
            Reading::Merge => "a merge key, which they refuse as a value".to_owned(),
            Reading::Value => "a `=` value key, which they refuse".to_owned(),
            Reading::Tag(tag) => format!("a `{tag}` value"),
        }
    }
}

/// How PyYAML resolves a plain (unquoted, untagged) scalar: `None` when it
/// is a string. The checks follow PyYAML's resolver order: bool, float, int,
/// merge, null, timestamp, value.
pub(crate) fn resolve_plain(value: &str) -> Option<Reading> {
    let s = value.as_bytes();
    if let Some(b) = bool_word(s) {
        return Some(Reading::Bool(b));
    }
    if is_float(s) {
        return Some(Reading::Float);
    }
    if is_int(s) {
        return Some(Reading::Int);
    }
    match s {
        b"<<" => return Some(Reading::Merge),
        b"" | b"~" | b"null" | b"Null" | b"NULL" => return Some(Reading::Null),
        b"=" => return Some(Reading::Value),
        _ => {}
    }
    timestamp(s)
}

fn bool_word(s: &[u8]) -> Option<bool> {
    match s {
        b"yes" | b"Yes" | b"YES" | b"true" | b"True" | b"TRUE" | b"on" | b"On" | b"ON" => {
            Some(true)
        }
        b"no" | b"No" | b"NO" | b"false" | b"False" | b"FALSE" | b"off" | b"Off" | b"OFF" => {
            Some(false)
        }
        _ => None,
    }
}

/// A cursor over the bytes of a scalar, for the hand-written regular
/// expressions below (all of PyYAML's are ASCII-only).
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a [u8]) -> Cursor<'a> {
        Cursor { s, i: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.s.get(self.i + ahead).copied()
    }

    /// Consumes one byte if it satisfies `accept`.
    fn eat(&mut self, accept: impl Fn(u8) -> bool) -> bool {
        match self.peek() {
            Some(b) if accept(b) => {
                self.i += 1;
                true
            }
            _ => false,
        }
    }

    /// Consumes bytes while they satisfy `accept`; returns how many.
    fn eat_while(&mut self, accept: impl Fn(u8) -> bool) -> usize {
        let start = self.i;
        while self.eat(&accept) {}
        self.i - start
    }

    fn rest(&self) -> &'a [u8] {
        &self.s[self.i.min(self.s.len())..]
    }

    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    /// `[-+]?`
    fn sign(&mut self) {
        self.eat(|b| b == b'-' || b == b'+');
    }

    /// `(?::[0-5]?[0-9])+`: at least one group.
    fn sexagesimal_groups(&mut self) -> bool {
        let mut groups = 0;
        while self.peek() == Some(b':') {
            self.i += 1;
            // Two digits only when the first is 0-5; a third digit then
            // fails the match whichever way the group is split.
            match (self.peek(), self.peek_at(1)) {
                (Some(b'0'..=b'5'), Some(b'0'..=b'9')) => self.i += 2,
                (Some(b'0'..=b'9'), _) => self.i += 1,
                _ => return false,
            }
            groups += 1;
        }
        groups > 0
    }

    /// `(?:[eE][-+][0-9]+)?` followed by the end.
    fn optional_exponent_then_end(&mut self) -> bool {
        let exponent = self.eat(|b| b == b'e' || b == b'E');
        if exponent && (!self.eat(|b| b == b'-' || b == b'+') || self.eat_while(digit) == 0) {
            return false;
        }
        self.done()
    }
}

fn digit(b: u8) -> bool {
    b.is_ascii_digit()
}

fn digit_or_underscore(b: u8) -> bool {
    b.is_ascii_digit() || b == b'_'
}

/// ```text
/// [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
/// |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
/// |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
/// |[-+]?\.(?:inf|Inf|INF)
/// |\.(?:nan|NaN|NAN)
/// ```
fn is_float(s: &[u8]) -> bool {
    if matches!(s, b".nan" | b".NaN" | b".NAN") {
        return true;
    }
    let mut c = Cursor::new(s);
    c.sign();
    if matches!(c.rest(), b".inf" | b".Inf" | b".INF") {
        return true;
    }
    if let Some(rest) = s.strip_prefix(b".") {
        // No sign before this form.
        let mut c = Cursor::new(rest);
        return c.eat(digit) && {
            c.eat_while(digit_or_underscore);
            c.optional_exponent_then_end()
        };
    }
    if !c.eat(digit) {
        return false;
    }
    c.eat_while(digit_or_underscore);
    if c.eat(|b| b == b'.') {
        c.eat_while(digit_or_underscore);
        return c.optional_exponent_then_end();
    }
    if !c.sexagesimal_groups() || !c.eat(|b| b == b'.') {
        return false;
    }
    c.eat_while(digit_or_underscore);
    c.done()
}

/// ```text
/// [-+]?0b[0-1_]+
/// |[-+]?0[0-7_]+
/// |[-+]?(?:0|[1-9][0-9_]*)
/// |[-+]?0x[0-9a-fA-F_]+
/// |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
/// ```
fn is_int(s: &[u8]) -> bool {
    let mut c = Cursor::new(s);
    c.sign();
    let r = c.rest();
    let all = |t: &[u8], accept: fn(u8) -> bool| !t.is_empty() && t.iter().all(|&b| accept(b));
    if let Some(t) = r.strip_prefix(b"0b") {
        if all(t, |b| matches!(b, b'0' | b'1' | b'_')) {
            return true;
        }
    }
    if let Some(t) = r.strip_prefix(b"0x") {
        if all(t, |b| b.is_ascii_hexdigit() || b == b'_') {
            return true;
        }
    }
    if let Some(t) = r.strip_prefix(b"0") {
        return t.is_empty() || all(t, |b| matches!(b, b'0'..=b'7' | b'_'));
    }
    if !c.eat(|b| matches!(b, b'1'..=b'9')) {
        return false;
    }
    c.eat_while(digit_or_underscore);
    c.done() || (c.sexagesimal_groups() && c.done())
}

/// ```text
/// [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
/// |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
///  (?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
///  (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?
/// ```
fn timestamp(s: &[u8]) -> Option<Reading> {
    let mut c = Cursor::new(s);
    let one_or_two = |c: &mut Cursor<'_>| {
        let one = c.eat(digit);
        if one {
            c.eat(digit);
        }
        one
    };
    let exactly = |c: &mut Cursor<'_>, n: usize| (0..n).all(|_| c.eat(digit));
    if !(exactly(&mut c, 4) && c.eat(|b| b == b'-')) {
        return None;
    }
    let month_at = c.i;
    if !(one_or_two(&mut c) && c.eat(|b| b == b'-') && one_or_two(&mut c)) {
        return None;
    }
    if c.done() {
        // The date-only form needs two-digit month and day.
        return (c.i - month_at == 5).then_some(Reading::Date);
    }
    let separated =
        c.eat(|b| b == b'T' || b == b't') || c.eat_while(|b| b == b' ' || b == b'\t') > 0;
    if !(separated
        && one_or_two(&mut c)
        && c.eat(|b| b == b':')
        && exactly(&mut c, 2)
        && c.eat(|b| b == b':')
        && exactly(&mut c, 2))
    {
        return None;
    }
    if c.eat(|b| b == b'.') {
        c.eat_while(digit);
    }
    c.eat_while(|b| b == b' ' || b == b'\t');
    // The zone: `Z`, or an offset of hours and optional minutes.
    let zulu = c.eat(|b| b == b'Z');
    if !zulu && c.eat(|b| b == b'-' || b == b'+') {
        if !one_or_two(&mut c) {
            return None;
        }
        if c.eat(|b| b == b':') && !exactly(&mut c, 2) {
            return None;
        }
    }
    c.done().then_some(Reading::Timestamp)
}

/// A YAML node, as far as the manifest checks need it. Aliases share the
/// anchored node, so an alias bomb costs no memory here.
#[derive(Debug)]
pub(crate) enum Node {
    /// A scalar: its text after escapes and folding, and what a YAML 1.1
    /// reader makes of it when not a string.
    Scalar {
        text: String,
        reading: Option<Reading>,
    },
    /// A sequence.
    Seq(Vec<Rc<Node>>),
    /// A mapping's entries in document order, merge keys (`<<`) included.
    Map(Vec<(Rc<Node>, Rc<Node>)>),
    /// An alias of a node that is not complete yet (a recursive alias).
    Other,
}

/// How deep merge keys are followed; real files merge once or twice.
const MAX_MERGE_DEPTH: usize = 32;

impl Node {
    /// The scalar's text and, when a YAML 1.1 reader does not read it as a
    /// string, how it reads it.
    pub(crate) fn scalar(&self) -> Option<(&str, Option<&Reading>)> {
        match self {
            Node::Scalar { text, reading } => Some((text, reading.as_ref())),
            _ => None,
        }
    }

    /// The key and value nodes of `key` in a mapping, with merge keys applied
    /// as PyYAML applies them: a key written in the mapping wins over merged
    /// ones; among merged ones, a later `<<` wins, and within `<<: [*a, *b]`
    /// the earlier entry wins.
    pub(crate) fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.entry_within(key, MAX_MERGE_DEPTH)
    }

    fn entry_within(&self, key: &str, depth: usize) -> Option<(&Node, &Node)> {
        let Node::Map(entries) = self else {
            return None;
        };
        let written = entries.iter().rev().find(|(k, _)| {
            !k.is_merge_key() && matches!(k.scalar(), Some((text, _)) if text == key)
        });
        if let Some((k, v)) = written {
            return Some((k, v));
        }
        let depth = depth.checked_sub(1)?;
        entries
            .iter()
            .rev()
            .filter(|(k, _)| k.is_merge_key())
            .find_map(|(_, source)| match &**source {
                Node::Seq(sources) => sources.iter().find_map(|s| s.entry_within(key, depth)),
                other => other.entry_within(key, depth),
            })
    }

    /// The value node of `key` in a mapping (see [`Node::entry`]).
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// Item `index` of a sequence.
    pub(crate) fn index(&self, index: usize) -> Option<&Node> {
        match self {
            Node::Seq(items) => items.get(index).map(|n| &**n),
            _ => None,
        }
    }

    fn is_merge_key(&self) -> bool {
        matches!(
            self,
            Node::Scalar {
                reading: Some(Reading::Merge),
                ..
            }
        )
    }
}

/// What a YAML 1.1 reader makes of a scalar with this style and tag.
fn reading(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Option<Reading> {
    let Some(tag) = tag else {
        return match style {
            ScalarStyle::Plain => resolve_plain(text),
            _ => None,
        };
    };
    let name = tag.suffix_in_namespace(YAML_TAGS);
    let written = format!("{}{}", tag.handle(), tag.suffix());
    match name.as_deref() {
        Some("str") => None,
        Some("merge") => Some(Reading::Merge),
        Some(name) => Some(Reading::Tag(format!("!!{name}"))),
        // PyYAML resolves a scalar with the non-specific tag `!` like a plain
        // one, even when quoted: `! "yes"` is `True` to it.
        None if written == "!" => resolve_plain(text),
        None => Some(Reading::Tag(written)),
    }
}

enum Frame {
    Seq(usize, Vec<Rc<Node>>),
    Map(usize, Vec<(Rc<Node>, Rc<Node>)>, Option<Rc<Node>>),
}

/// The node tree of the first document of `text`. Called only on text that
/// the value parser (the same YAML parser underneath) already accepted,
/// within its depth and alias limits; an error here is still reported.
pub(crate) fn compose(text: &str) -> Result<Option<Rc<Node>>, ScanError> {
    let mut anchors: HashMap<usize, Rc<Node>> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let remember = |anchors: &mut HashMap<usize, Rc<Node>>, anchor: usize, node: &Rc<Node>| {
        if anchor != 0 {
            anchors.insert(anchor, Rc::clone(node));
        }
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event?;
        let node = match event {
            Event::Scalar(value, style, anchor, tag) => {
                // The parser gives an empty node the text `~`; its span is
                // empty, unlike that of a `~` written out.
                let empty = style == ScalarStyle::Plain && span.start.index() == span.end.index();
                let text = if empty {
                    String::new()
                } else {
                    value.into_owned()
                };
                let reading = reading(&text, style, tag.as_ref().map(Cow::as_ref));
                let node = Rc::new(Node::Scalar { text, reading });
                remember(&mut anchors, anchor, &node);
                node
            }
            Event::Alias(anchor) => anchors
                .get(&anchor)
                .map_or_else(|| Rc::new(Node::Other), Rc::clone),
            Event::SequenceStart(_, anchor, _) => {
                stack.push(Frame::Seq(anchor, Vec::new()));
                continue;
            }
            Event::MappingStart(_, anchor, _) => {
                stack.push(Frame::Map(anchor, Vec::new(), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (anchor, node) = match stack.pop() {
                    Some(Frame::Seq(anchor, items)) => (anchor, Node::Seq(items)),
                    Some(Frame::Map(anchor, entries, _)) => (anchor, Node::Map(entries)),
                    None => (0, Node::Other),
                };
                let node = Rc::new(node);
                remember(&mut anchors, anchor, &node);
                node
            }
            _ => continue,
        };
        match stack.last_mut() {
            // The first document's root is complete.
            None => return Ok(Some(node)),
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, entries, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made once with PyYAML 6.0 (`yaml.compose`): the tag it resolves for
    /// each scalar written unquoted as a mapping value.
    const PYYAML_TABLE: &str = include_str!("../../tests/fixtures/manifests/pyyaml-scalars.json");

    fn tag_of(reading: Option<&Reading>) -> &'static str {
        match reading {
            None => "str",
            Some(Reading::Bool(_)) => "bool",
            Some(Reading::Int) => "int",
            Some(Reading::Float) => "float",
            Some(Reading::Null) => "null",
            Some(Reading::Date | Reading::Timestamp) => "timestamp",
            Some(Reading::Merge) => "merge",
            Some(Reading::Value) => "value",
            Some(Reading::Tag(_)) => "tagged",
        }
    }

    #[test]
    fn plain_scalars_resolve_as_pyyaml_resolves_them() {
        let table: Vec<serde_json::Value> = serde_json::from_str(PYYAML_TABLE).unwrap();
        assert!(table.len() > 150, "{}", table.len());
        let mut disagreements = Vec::new();
        for row in &table {
            let scalar = row["scalar"].as_str().unwrap();
            let text = row["text"].as_str().unwrap();
            let expected = row["tag"].as_str().unwrap();
            let got = tag_of(resolve_plain(text).as_ref());
            if got != expected {
                disagreements.push(format!("{scalar:?}: PyYAML {expected}, here {got}"));
            }
            // The same scalar inside a document is read the same way.
            let root = compose(&format!("k: {scalar}\n")).unwrap().unwrap();
            let (composed, reading) = root.get("k").and_then(Node::scalar).unwrap();
            assert_eq!(composed, text, "{scalar:?}");
            assert_eq!(tag_of(reading), expected, "{scalar:?} in a document");
        }
        assert!(disagreements.is_empty(), "{disagreements:#?}");
    }

    #[test]
    fn booleans_keep_their_value_and_dates_their_kind() {
        assert_eq!(resolve_plain("Off"), Some(Reading::Bool(false)));
        assert_eq!(resolve_plain("ON"), Some(Reading::Bool(true)));
        assert_eq!(resolve_plain("2021-09-27"), Some(Reading::Date));
        assert_eq!(resolve_plain("2021-9-27 1:00:00"), Some(Reading::Timestamp));
        assert_eq!(resolve_plain("2021-9-27"), None);
    }

    fn reading_in(document: &str) -> Option<Reading> {
        let root = compose(document).unwrap().unwrap();
        root.get("k").and_then(Node::scalar).unwrap().1.cloned()
    }

    #[test]
    fn tags_decide_before_the_text() {
        assert_eq!(reading_in("k: !!str yes\n"), None);
        assert_eq!(reading_in("k: !<tag:yaml.org,2002:str> 1\n"), None);
        assert_eq!(reading_in("k: \"yes\"\n"), None);
        assert_eq!(reading_in("k: 'yes'\n"), None);
        assert_eq!(reading_in("k: |\n  yes\n"), None);
        // As in PyYAML, `!` alone resolves like a plain scalar, even quoted.
        assert_eq!(reading_in("k: ! \"yes\"\n"), Some(Reading::Bool(true)));
        assert_eq!(reading_in("k: ! stage\n"), None);
        assert_eq!(
            reading_in("k: !!int \"5\"\n"),
            Some(Reading::Tag("!!int".to_owned()))
        );
        assert_eq!(
            reading_in("k: !custom stage\n"),
            Some(Reading::Tag("!custom".to_owned()))
        );
    }

    #[test]
    fn merge_keys_apply_as_in_pyyaml() {
        let root = compose(
            "a: &a {x: 1, y: 1}\nb: &b {x: 2, z: 2}\n\
             c:\n  <<: [*a, *b]\n  y: 3\n\
             d:\n  <<: *a\n  <<: *b\n",
        )
        .unwrap()
        .unwrap();
        let text = |map: &str, key: &str| {
            root.get(map)
                .and_then(|m| m.get(key))
                .and_then(Node::scalar)
                .map(|(t, _)| t.to_owned())
        };
        // In a list, the earlier mapping wins; written keys win over merged.
        assert_eq!(text("c", "x").as_deref(), Some("1"));
        assert_eq!(text("c", "y").as_deref(), Some("3"));
        assert_eq!(text("c", "z").as_deref(), Some("2"));
        // Of two merge keys, the later wins.
        assert_eq!(text("d", "x").as_deref(), Some("2"));
        assert_eq!(text("d", "<<"), None);
    }

    #[test]
    fn aliases_share_nodes_and_recursion_stops() {
        let root = compose("a: &x [1, *x]\nb: *x\n").unwrap().unwrap();
        let b = root.get("b").unwrap();
        assert!(matches!(b.index(1), Some(Node::Other)));
        assert!(compose("").unwrap().is_none());
    }
}
