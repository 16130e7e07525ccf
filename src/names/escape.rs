//! Outside text made safe to show in a message or a line of output.

use std::fmt;

use super::MAX_ECHO_CHARS;

/// Outside text shown inside a message or a line of output: control and
/// other invisible characters are escaped as Rust's `{:?}` escapes them
/// (`\n`, `\u{1b}`, `\u{202e}`), so a value cannot move the cursor, colour
/// the terminal or hide part of the line; printable characters, other
/// scripts included, are shown as they are.
///
/// Backslashes and quotes are left alone, so text that went through
/// `Escaped` once is shown unchanged: a message may quote another message
/// that escaped its own values.
///
/// ```
/// use release_tracking::names::Escaped;
///
/// assert_eq!(Escaped::new("\u{1b}[31mprod\n").to_string(), "\\u{1b}[31mprod\\n");
/// assert_eq!(Escaped::new("Zürich 東京").to_string(), "Zürich 東京");
/// let long = "x".repeat(1000);
/// assert_eq!(Escaped::new(&long).to_string().chars().count(), 256 + 1); // then `…`
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Escaped<'a> {
    text: &'a str,
    max_chars: usize,
}

impl<'a> Escaped<'a> {
    /// A value echoed from input: its first [`MAX_ECHO_CHARS`] characters,
    /// then `…` if there were more.
    pub fn new(text: &'a str) -> Escaped<'a> {
        Escaped {
            text,
            max_chars: MAX_ECHO_CHARS,
        }
    }

    /// All of `text`: for text that is not one value but may quote some (a
    /// parser's or a service's message, a description, a whole message).
    pub fn whole(text: &'a str) -> Escaped<'a> {
        Escaped {
            text,
            max_chars: usize::MAX,
        }
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        let mut chars = self.text.chars();
        for (i, c) in chars.by_ref().take(self.max_chars).enumerate() {
            match c {
                '\\' | '"' | '\'' => f.write_char(c)?,
                // A combining mark that starts the value would join the
                // character before it, so it is escaped there; elsewhere it
                // belongs to the letter before it. `str::escape_debug` draws
                // that line: escape `c` as a string's second character.
                _ if i > 0 && !c.is_ascii() => {
                    let pair = String::from_iter(['x', c]);
                    for e in pair.escape_debug().skip(1) {
                        f.write_char(e)?;
                    }
                }
                _ => write!(f, "{}", c.escape_debug())?,
            }
        }
        if chars.next().is_some() {
            f.write_char('…')?;
        }
        Ok(())
    }
}
