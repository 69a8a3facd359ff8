//! RFC 3339 timestamps (`2026-11-01T12:00:00Z`, `2026-11-01T14:00:00.250+02:00`) as UTC instants.
//!
//! Deliberately small instead of a date-time crate: the scorer only compares instants and prints the
//! earliest one, and every extra crate is one more lockfile entry that must be identical on crates.io and
//! in the offline (Debian) registry (see README.md, "Dependencies").
//!
//! Accepted (RFC 3339 §5.6 `date-time`): `YYYY-MM-DD` `T`|`t` `hh:mm:ss` [`.` 1+ digits]
//! (`Z`|`z`|`±hh:mm`). Years 0000–9999, real calendar days (leap years), hours 00–23, minutes 00–59,
//! seconds 00–60 (a leap second `:60` is the same instant as the next minute's `:00`), offsets up to
//! ±23:59. Fractions beyond nanoseconds are truncated. The UTC instant must also lie in 0000–9999, so
//! it can always be written back as RFC 3339.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

const NANOS_PER_SEC: u32 = 1_000_000_000;
/// 0000-01-01T00:00:00Z
const MIN_SECS: i64 = -62_167_219_200;
/// 9999-12-31T23:59:59Z
const MAX_SECS: i64 = 253_402_300_799;

/// A UTC instant with nanosecond precision. Ordered chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    secs: i64,
    /// 0..1_000_000_000
    nanos: u32,
}

/// Why a string is not an accepted RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(&'static str);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ParseError {}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    // month and day are in range by construction; the casts cannot truncate.
    (year, month as u32, day as u32)
}

/// Byte cursor over the input; every accessor is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, allowed: &[u8], what: &'static str) -> Result<u8, ParseError> {
        match self.peek() {
            Some(b) if allowed.contains(&b) => {
                self.pos += 1;
                Ok(b)
            }
            _ => Err(ParseError(what)),
        }
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize, what: &'static str) -> Result<u32, ParseError> {
        let mut value = 0u32;
        for _ in 0..n {
            match self.peek() {
                Some(b) if b.is_ascii_digit() => {
                    value = value * 10 + u32::from(b - b'0');
                    self.pos += 1;
                }
                _ => return Err(ParseError(what)),
            }
        }
        Ok(value)
    }
}

impl Timestamp {
    /// The Unix epoch.
    pub const UNIX_EPOCH: Timestamp = Timestamp { secs: 0, nanos: 0 };

    /// Seconds since the Unix epoch (negative before 1970).
    pub fn unix_seconds(&self) -> i64 {
        self.secs
    }

    /// Sub-second nanoseconds.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Builds an instant from Unix seconds and nanoseconds; `None` when outside 0000–9999 or when
    /// `nanos` is not below one second.
    pub fn from_unix(secs: i64, nanos: u32) -> Option<Timestamp> {
        if (MIN_SECS..=MAX_SECS).contains(&secs) && nanos < NANOS_PER_SEC {
            Some(Timestamp { secs, nanos })
        } else {
            None
        }
    }

    /// Converts a system time, clamped to the supported range (years 0000–9999).
    pub fn from_system_time(t: SystemTime) -> Timestamp {
        let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                d.subsec_nanos(),
            ),
            Err(before) => {
                let d = before.duration();
                let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                match d.subsec_nanos() {
                    0 => (-secs, 0),
                    n => (-secs - 1, NANOS_PER_SEC - n),
                }
            }
        };
        if secs < MIN_SECS {
            Timestamp {
                secs: MIN_SECS,
                nanos: 0,
            }
        } else if secs > MAX_SECS {
            Timestamp {
                secs: MAX_SECS,
                nanos: NANOS_PER_SEC - 1,
            }
        } else {
            Timestamp { secs, nanos }
        }
    }

    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    /// Parses an RFC 3339 `date-time` (see the module docs for what is accepted).
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, ParseError> {
        let mut c = Cursor {
            bytes: s.as_bytes(),
            pos: 0,
        };
        let year = i64::from(c.digits(4, "expected a 4-digit year")?);
        c.expect(b"-", "expected '-' after the year")?;
        let month = c.digits(2, "expected a 2-digit month")?;
        c.expect(b"-", "expected '-' after the month")?;
        let day = c.digits(2, "expected a 2-digit day")?;
        c.expect(b"Tt", "expected 'T' between date and time")?;
        let hour = c.digits(2, "expected a 2-digit hour")?;
        c.expect(b":", "expected ':' after the hour")?;
        let minute = c.digits(2, "expected 2-digit minutes")?;
        c.expect(b":", "expected ':' after the minutes")?;
        let second = c.digits(2, "expected 2-digit seconds")?;

        let mut nanos = 0u32;
        if c.peek() == Some(b'.') {
            c.pos += 1;
            let mut count = 0usize;
            while let Some(b) = c.peek().filter(u8::is_ascii_digit) {
                if count < 9 {
                    nanos = nanos * 10 + u32::from(b - b'0');
                }
                count += 1;
                c.pos += 1;
            }
            if count == 0 {
                return Err(ParseError("expected digits after '.'"));
            }
            for _ in count..9 {
                nanos *= 10;
            }
        }

        let offset_secs: i64 =
            match c.expect(b"Zz+-", "expected a time zone: 'Z' or +hh:mm / -hh:mm")? {
                b'Z' | b'z' => 0,
                sign => {
                    let oh = c.digits(2, "expected a 2-digit offset hour")?;
                    c.expect(b":", "expected ':' in the offset")?;
                    let om = c.digits(2, "expected 2-digit offset minutes")?;
                    if oh > 23 || om > 59 {
                        return Err(ParseError("offset out of range"));
                    }
                    let magnitude = i64::from(oh * 3600 + om * 60);
                    if sign == b'-' {
                        -magnitude
                    } else {
                        magnitude
                    }
                }
            };
        if c.pos != c.bytes.len() {
            return Err(ParseError("unexpected characters after the time zone"));
        }

        if !(1..=12).contains(&month) {
            return Err(ParseError("month out of range"));
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err(ParseError("day out of range for the month"));
        }
        if hour > 23 || minute > 59 || second > 60 {
            return Err(ParseError("time of day out of range"));
        }

        let secs = days_from_civil(year, month, day) * 86_400
            + i64::from(hour * 3600 + minute * 60 + second)
            - offset_secs;
        Timestamp::from_unix(secs, nanos)
            .ok_or(ParseError("instant is outside the years 0000-9999 in UTC"))
    }

    /// RFC 3339 in UTC with `Z`; the fraction is omitted when zero, else 3, 6 or 9 digits.
    pub fn to_rfc3339(&self) -> String {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let (h, m, s) = (sod / 3600, sod % 3600 / 60, sod % 60);
        let mut out = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
        let n = self.nanos;
        if n != 0 {
            if n % 1_000_000 == 0 {
                out.push_str(&format!(".{:03}", n / 1_000_000));
            } else if n % 1_000 == 0 {
                out.push_str(&format!(".{:06}", n / 1_000));
            } else {
                out.push_str(&format!(".{n:09}"));
            }
        }
        out.push('Z');
        out
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn p(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn known_instants() {
        assert_eq!(p("1970-01-01T00:00:00Z"), Timestamp::UNIX_EPOCH);
        assert_eq!(p("2001-09-09T01:46:40Z").unix_seconds(), 1_000_000_000);
        assert_eq!(p("2038-01-19T03:14:08Z").unix_seconds(), 1 << 31);
        assert_eq!(p("1969-12-31T23:59:59Z").unix_seconds(), -1);
        assert_eq!(p("2000-02-29T00:00:00Z").unix_seconds(), 951_782_400);
        assert_eq!(p("0000-01-01T00:00:00Z").unix_seconds(), MIN_SECS);
        assert_eq!(p("9999-12-31T23:59:59Z").unix_seconds(), MAX_SECS);
        assert_eq!(p("2026-11-01T12:00:00Z").unix_seconds(), 1_793_534_400);
    }

    #[test]
    fn offsets_fractions_and_case() {
        assert_eq!(p("2026-11-01T14:00:00+02:00"), p("2026-11-01T12:00:00Z"));
        assert_eq!(p("2026-11-01T07:30:00-04:30"), p("2026-11-01T12:00:00Z"));
        assert_eq!(p("2026-11-01t12:00:00z"), p("2026-11-01T12:00:00Z"));
        assert_eq!(p("2026-11-01T12:00:00-00:00"), p("2026-11-01T12:00:00Z"));
        assert_eq!(p("2026-11-01T12:00:00.5Z").subsec_nanos(), 500_000_000);
        assert_eq!(p("2026-11-01T12:00:00.000000001Z").subsec_nanos(), 1);
        assert_eq!(
            p("2026-11-01T12:00:00.1234567899999Z").subsec_nanos(),
            123_456_789
        );
        assert!(p("2026-11-01T12:00:00.1Z") > p("2026-11-01T12:00:00Z"));
        // leap second == next minute's :00
        assert_eq!(p("2016-12-31T23:59:60Z"), p("2017-01-01T00:00:00Z"));
    }

    #[test]
    fn rejects_non_rfc3339() {
        for bad in [
            "",
            "2026-11-01",
            "2026-11-01T12:00:00",
            "2026-11-01 12:00:00Z",
            "2026-11-01T12:00Z",
            "26-11-01T12:00:00Z",
            "2026-1-01T12:00:00Z",
            "2026-11-01T12:00:00.Z",
            "2026-11-01T12:00:00+0200",
            "2026-11-01T12:00:00+02",
            "2026-11-01T12:00:00Z ",
            " 2026-11-01T12:00:00Z",
            "2026-11-01T12:00:00ZZ",
            "2026-13-01T12:00:00Z",
            "2026-00-01T12:00:00Z",
            "2026-11-00T12:00:00Z",
            "2026-11-31T12:00:00Z",
            "2026-02-29T12:00:00Z",
            "1900-02-29T12:00:00Z",
            "2026-11-01T24:00:00Z",
            "2026-11-01T12:60:00Z",
            "2026-11-01T12:00:61Z",
            "2026-11-01T12:00:00+24:00",
            "2026-11-01T12:00:00+02:60",
            "+2026-11-01T12:00:00Z",
            "２０２６-11-01T12:00:00Z",
            "2026-11-01T12:00:00Zé",
            "tomorrow",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn rejects_utc_instants_outside_years_0000_to_9999() {
        assert!(Timestamp::parse_rfc3339("9999-12-31T23:59:59-00:01").is_err());
        assert!(Timestamp::parse_rfc3339("9999-12-31T23:59:60Z").is_err());
        assert!(Timestamp::parse_rfc3339("0000-01-01T00:00:00+00:01").is_err());
        assert!(Timestamp::parse_rfc3339("9999-12-31T23:59:59+23:59").is_ok());
    }

    #[test]
    fn formats_utc() {
        for (input, utc) in [
            ("2026-11-01T14:00:00+02:00", "2026-11-01T12:00:00Z"),
            ("2026-11-01T12:00:00.25Z", "2026-11-01T12:00:00.250Z"),
            ("2026-11-01T12:00:00.00025Z", "2026-11-01T12:00:00.000250Z"),
            (
                "2026-11-01T12:00:00.000000250Z",
                "2026-11-01T12:00:00.000000250Z",
            ),
            ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500Z"),
            ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
            (
                "9999-12-31T23:59:59.999999999Z",
                "9999-12-31T23:59:59.999999999Z",
            ),
        ] {
            assert_eq!(p(input).to_rfc3339(), utc, "{input}");
        }
    }

    #[test]
    fn civil_round_trip_every_day_of_four_centuries_and_edges() {
        // 1600-03-01 .. 2400-03-01 covers every leap-year rule twice.
        let start = days_from_civil(1600, 3, 1);
        let end = days_from_civil(2400, 3, 1);
        let (mut y, mut m, mut d) = (1600i64, 3u32, 1u32);
        for days in start..end {
            assert_eq!(civil_from_days(days), (y, m, d));
            assert_eq!(days_from_civil(y, m, d), days);
            d += 1;
            if d > days_in_month(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        for (y, m, d) in [(0, 1, 1), (9999, 12, 31), (1970, 1, 1), (1969, 12, 31)] {
            assert_eq!(civil_from_days(days_from_civil(y, m, d)), (y, m, d));
        }
    }

    #[test]
    fn parse_format_round_trip() {
        for s in [
            "2026-11-01T12:00:00Z",
            "2024-02-29T23:59:59.999Z",
            "1970-01-01T00:00:00.000001Z",
            "1899-12-31T00:00:00Z",
        ] {
            assert_eq!(p(s).to_rfc3339(), s);
        }
    }

    #[test]
    fn system_time_conversion() {
        for (t, utc) in [
            (
                UNIX_EPOCH + Duration::new(1_793_534_400, 250_000_000),
                "2026-11-01T12:00:00.250Z",
            ),
            (
                UNIX_EPOCH - Duration::new(1, 500_000_000),
                "1969-12-31T23:59:58.500Z",
            ),
            // past year 9999: clamped to its last instant
            (
                UNIX_EPOCH + Duration::from_secs(400_000_000_000),
                "9999-12-31T23:59:59.999999999Z",
            ),
        ] {
            assert_eq!(Timestamp::from_system_time(t).to_rfc3339(), utc, "{t:?}");
        }
        assert!(Timestamp::now() > p("2020-01-01T00:00:00Z"));
    }
}
