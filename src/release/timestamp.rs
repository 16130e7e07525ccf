//! Timestamps as records store them: naive ISO-8601, UTC.

use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A point in time, UTC, with microsecond precision.
///
/// Records store it as naive ISO-8601 (`2019-07-10T10:44:02.272898`, or
/// `2019-07-10T10:44:02` when the microseconds are 0), which is what
/// [`Display`](fmt::Display) and serde write. Parsing also accepts a space for
/// the `T`, 1 to 9 fractional digits (truncated to microseconds), and a `Z` or
/// `±HH:MM` suffix, which is converted to UTC, so values from other writers
/// compare correctly. The canonical text sorts in the same order as the times.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(PrimitiveDateTime);

impl Timestamp {
    /// The current time, truncated to microseconds.
    pub fn now() -> Timestamp {
        Timestamp::from_offset_date_time(OffsetDateTime::now_utc())
    }

    /// Converts to UTC and truncates to microseconds.
    pub fn from_offset_date_time(at: OffsetDateTime) -> Timestamp {
        let utc = at.to_offset(UtcOffset::UTC);
        let micros = utc.microsecond();
        let time = utc.time().replace_microsecond(micros).unwrap_or(utc.time());
        Timestamp(PrimitiveDateTime::new(utc.date(), time))
    }

    /// Seconds since the Unix epoch plus microseconds; `None` if out of range.
    pub fn from_unix_micros(micros: i64) -> Option<Timestamp> {
        let nanos = i128::from(micros) * 1000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .map(Timestamp::from_offset_date_time)
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(&self) -> i64 {
        // In range for every year `time` can represent by default (±9999).
        (self.0.assume_utc().unix_timestamp_nanos() / 1000) as i64
    }

    /// This time plus `micros` microseconds (negative goes back); unchanged
    /// if the result would fall outside the years -9999 to 9999.
    pub fn add_micros(&self, micros: i64) -> Timestamp {
        let target = self.unix_micros().saturating_add(micros);
        Timestamp::from_unix_micros(target).unwrap_or(*self)
    }

    /// As a `time` value with a UTC offset.
    pub fn to_offset_date_time(&self) -> OffsetDateTime {
        self.0.assume_utc()
    }
}

/// Why a timestamp did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp \"{}\": expected ISO-8601 like 2019-07-10T10:44:02.272898",
    crate::names::Escaped::new(value)
)]
pub struct TimestampError {
    value: String,
}

fn digits(s: &str, at: usize, len: usize) -> Option<u32> {
    let part = s.get(at..at + len)?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = i32::try_from(digits(s, 0, 4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(s, 5, 2)?).ok()?).ok()?;
    let day = u8::try_from(digits(s, 8, 2)?).ok()?;
    let hour = u8::try_from(digits(s, 11, 2)?).ok()?;
    let minute = u8::try_from(digits(s, 14, 2)?).ok()?;
    let second = u8::try_from(digits(s, 17, 2)?).ok()?;
    let mut rest = s.get(19..)?;
    let mut micros = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > 9 {
            return None;
        }
        let padded = format!("{:0<6}", &fraction[..len.min(6)]);
        micros = padded.parse().ok()?;
        rest = &fraction[len..];
    }
    let offset = match rest {
        "" | "Z" | "z" => UtcOffset::UTC,
        _ => {
            let sign: i8 = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let body = &rest[1..];
            let (h, m) = match body.len() {
                5 if body.as_bytes()[2] == b':' => (digits(body, 0, 2)?, digits(body, 3, 2)?),
                4 => (digits(body, 0, 2)?, digits(body, 2, 2)?),
                2 => (digits(body, 0, 2)?, 0),
                _ => return None,
            };
            let h = i8::try_from(h).ok()?;
            let m = i8::try_from(m).ok()?;
            UtcOffset::from_hms(sign * h, sign * m, 0).ok()?
        }
    };
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms_micro(hour, minute, second, micros).ok()?;
    Some(Timestamp::from_offset_date_time(
        PrimitiveDateTime::new(date, time).assume_offset(offset),
    ))
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, TimestampError> {
        parse_timestamp(s).ok_or_else(|| TimestampError {
            // One character more than a message shows, so it marks the cut.
            value: s.chars().take(crate::names::MAX_ECHO_CHARS + 1).collect(),
        })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        )?;
        if d.microsecond() != 0 {
            write!(f, ".{:06}", d.microsecond())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_the_record_format() {
        for text in ["2019-07-10T10:44:02.272898", "2019-07-10T10:44:02"] {
            let t: Timestamp = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
        }
        let t: Timestamp = "2019-07-10T10:44:02.5".parse().unwrap();
        assert_eq!(t.to_string(), "2019-07-10T10:44:02.500000");
    }

    #[test]
    fn timestamps_with_offsets_compare_in_utc() {
        let a: Timestamp = "2019-07-10T11:44:02+01:00".parse().unwrap();
        let b: Timestamp = "2019-07-10T10:44:02".parse().unwrap();
        let c: Timestamp = "2019-07-10T10:44:02.000001Z".parse().unwrap();
        assert_eq!(a, b);
        assert!(c > b);
    }

    #[test]
    fn bad_timestamps_are_errors() {
        for text in [
            "",
            "1562755442",
            "2019-13-10T10:44:02",
            "2019-07-10T25:44:02",
            "2019-07-10T10:44:02.",
            "2019-07-10T10:44:02+0",
            "2019-07-10T10:44:02x",
            "2019-07-10T10:44:0é",
        ] {
            assert!(text.parse::<Timestamp>().is_err(), "{text:?} accepted");
        }
    }
}
