//! Server-set timestamps: UTC with microsecond precision, in one fixed-width RFC 3339 form,
//! so that their text sorts in time order (SQLite stores and compares the text).

use std::fmt;

use time::{OffsetDateTime, UtcOffset, format_description::FormatItem, macros::format_description};

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn now() -> Self {
        // Microseconds, so that a value read back equals the value written on every backend.
        Timestamp::from_offset_date_time(OffsetDateTime::now_utc())
    }

    /// Parses any RFC 3339 timestamp and normalises it to UTC.
    pub fn parse(s: &str) -> Option<Self> {
        let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
        Some(Timestamp::from_offset_date_time(t))
    }

    /// A timestamp from a date-time, normalised to UTC and cut to microseconds.
    pub fn from_offset_date_time(t: OffsetDateTime) -> Self {
        let t = t.to_offset(UtcOffset::UTC);
        let micros = t.microsecond();
        Timestamp(t.replace_microsecond(micros).expect("valid microsecond"))
    }

    /// This time plus `d`.
    pub fn plus(&self, d: std::time::Duration) -> Timestamp {
        Timestamp::from_offset_date_time(self.0 + d)
    }

    /// This time minus `d`.
    pub fn minus(&self, d: std::time::Duration) -> Timestamp {
        Timestamp::from_offset_date_time(self.0 - d)
    }

    pub fn as_offset_date_time(&self) -> OffsetDateTime {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.format(FORMAT).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts_as_text() {
        let a = Timestamp::now();
        let text = a.to_string();
        assert_eq!(text.len(), 27, "{text}");
        assert!(text.ends_with('Z'));
        assert_eq!(Timestamp::parse(&text), Some(a));
        let b = Timestamp::parse("2023-11-07T05:31:56+02:00").unwrap();
        assert_eq!(b.to_string(), "2023-11-07T03:31:56.000000Z");
        assert!(b.to_string() < a.to_string());
    }

    #[test]
    fn rejects_garbage() {
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(Timestamp::parse("").is_none());
    }
}
