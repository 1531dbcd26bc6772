//! Civil dates as days since 1970-01-01, the representation the datastore and the language use.
//!
//! A tiny type of our own rather than a date crate: the register format only needs proleptic
//! Gregorian days and ISO `YYYY-MM-DD` text, and this keeps the WASM bundle small.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A calendar date, stored as days since 1970-01-01 (negative before).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

/// Why text could not be read as a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a date: {reason} (write dates as YYYY-MM-DD, e.g. 2021-01-01)")]
pub struct DateError {
    pub text: String,
    pub reason: &'static str,
}

impl Date {
    pub const fn from_epoch_days(days: i32) -> Date {
        Date(days)
    }

    pub const fn epoch_days(self) -> i32 {
        self.0
    }

    /// The date for a year, month (1–12) and day, or `None` if no such day exists.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date(days_from_civil(year, month, day)))
    }

    pub fn year(self) -> i32 {
        self.ymd().0
    }

    /// Year, month (1–12) and day of month.
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    /// The same day `n` days later (or earlier for negative `n`).
    pub fn add_days(self, n: i32) -> Date {
        Date(self.0 + n)
    }
}

pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

// Howard Hinnant's `days_from_civil` / `civil_from_days`: exact for the proleptic Gregorian
// calendar over the whole i32 day range we use.
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl FromStr for Date {
    type Err = DateError;

    fn from_str(text: &str) -> Result<Date, DateError> {
        let err = |reason| DateError { text: text.to_owned(), reason };
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(err("expected the form YYYY-MM-DD"));
        }
        let number = |range: std::ops::Range<usize>| -> Result<u32, DateError> {
            let part = &text[range];
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("expected digits"));
            }
            part.parse().map_err(|_| err("expected digits"))
        };
        let (year, month, day) = (number(0..4)? as i32, number(5..7)?, number(8..10)?);
        if !(1..=12).contains(&month) {
            return Err(err("month must be 01 to 12"));
        }
        Date::from_ymd(year, month, day).ok_or_else(|| err("that month has no such day"))
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates_round_trip() {
        assert_eq!(Date::from_ymd(1970, 1, 1).unwrap().epoch_days(), 0);
        assert_eq!(Date::from_ymd(2000, 3, 1).unwrap().epoch_days(), 11_017);
        assert_eq!(Date::from_ymd(1969, 12, 31).unwrap().epoch_days(), -1);
        assert_eq!(Date::from_epoch_days(19_723).to_string(), "2024-01-01");
    }

    #[test]
    fn every_day_from_1900_to_2100_round_trips_through_text() {
        let start = Date::from_ymd(1900, 1, 1).unwrap().epoch_days();
        let end = Date::from_ymd(2100, 12, 31).unwrap().epoch_days();
        let mut previous: Option<(i32, u32, u32)> = None;
        for days in start..=end {
            let date = Date::from_epoch_days(days);
            let parsed: Date = date.to_string().parse().unwrap();
            assert_eq!(parsed, date);
            let ymd = date.ymd();
            if let Some(p) = previous {
                assert!(ymd > p, "{ymd:?} does not follow {p:?}");
            }
            previous = Some(ymd);
        }
    }

    #[test]
    fn invalid_dates_name_the_text_and_the_form() {
        let err = "2021-02-29".parse::<Date>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "'2021-02-29' is not a date: that month has no such day (write dates as YYYY-MM-DD, e.g. 2021-01-01)"
        );
        assert!("2020-02-29".parse::<Date>().is_ok());
        assert_eq!("21-1-1".parse::<Date>().unwrap_err().reason, "expected the form YYYY-MM-DD");
        assert_eq!("2021-13-01".parse::<Date>().unwrap_err().reason, "month must be 01 to 12");
        assert_eq!("2021-0a-01".parse::<Date>().unwrap_err().reason, "expected digits");
    }
}
