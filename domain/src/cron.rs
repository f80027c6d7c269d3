//! Five-field cron expressions (`minute hour day-of-month month day-of-week`), as Auto Scaling
//! scheduled actions take them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// A parsed expression: its text (fields one space apart) and the set of allowed values of
/// each field. Serialised as its text, which is parsed again when read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    /// Bit `n` set: value `n` allowed.
    sets: [u64; 5],
    /// Whether day-of-month and day-of-week were `*` (cron's rule: when both are restricted, a
    /// day matches if either does).
    dom_any: bool,
    dow_any: bool,
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Cron {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Cron {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Cron::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Cron {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cron::parse(s)
    }
}

fn value(field: usize, s: &str) -> Result<u32, String> {
    let (name, lo, hi) = FIELDS[field];
    let lower = s.to_ascii_lowercase();
    let named = match field {
        3 => MONTHS
            .iter()
            .position(|m| *m == lower)
            .map(|i| i as u32 + 1),
        4 => DAYS.iter().position(|d| *d == lower).map(|i| i as u32),
        _ => None,
    };
    let v = match named {
        Some(v) => v,
        None => s
            .parse::<u32>()
            .map_err(|_| format!("the {name} field has `{s}`, which is not a number"))?,
    };
    if v < lo || v > hi {
        return Err(format!("the {name} field has {v}, outside {lo}–{hi}"));
    }
    Ok(v)
}

fn parse_field(field: usize, s: &str) -> Result<u64, String> {
    let (name, lo, hi) = FIELDS[field];
    let mut set = 0u64;
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => {
                let step: u32 = st.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("the {name} field has step `{st}`; a step is a whole number above 0")
                })?;
                (r, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(field, a)?, value(field, b)?);
            if a > b {
                return Err(format!(
                    "the {name} field has the range {a}-{b}, which runs backwards"
                ));
            }
            (a, b)
        } else if part.contains('/') {
            (value(field, range)?, hi)
        } else {
            let v = value(field, range)?;
            (v, v)
        };
        let mut v = from;
        while v <= to {
            set |= 1 << v;
            v += step;
        }
    }
    if field == 4 && set & (1 << 7) != 0 {
        // 7 is another name for Sunday.
        set = (set & !(1 << 7)) | 1;
    }
    Ok(set)
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "a cron expression has 5 fields (minute hour day-of-month month day-of-week); `{text}` has {}",
                parts.len()
            ));
        }
        let mut sets = [0u64; 5];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() {
                return Err(format!("the {} field is empty", FIELDS[i].0));
            }
            sets[i] = parse_field(i, p)?;
        }
        Ok(Cron {
            text: parts.join(" "),
            sets,
            dom_any: parts[2] == "*",
            dow_any: parts[4] == "*",
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the expression's minute field holds `minute` (0–59): a minute it leaves out never
    /// fires, whatever the hour and day.
    pub fn names_minute(&self, minute: u32) -> bool {
        self.sets[0] & (1 << minute) != 0
    }

    /// Whether the expression fires at this wall-clock minute (`weekday`: 0 = Sunday).
    pub fn matches(&self, minute: u32, hour: u32, day: u32, month: u32, weekday: u32) -> bool {
        let has = |field: usize, v: u32| self.sets[field] & (1 << v) != 0;
        let dom = has(2, day);
        let dow = has(4, weekday);
        let day_ok = match (self.dom_any, self.dow_any) {
            (true, true) => true,
            (true, false) => dow,
            (false, true) => dom,
            (false, false) => dom || dow,
        };
        has(0, minute) && has(1, hour) && has(3, month) && day_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_expressions_parse_and_match() {
        let c = Cron::parse("50 18 * * *").unwrap();
        assert!(c.matches(50, 18, 25, 11, 3));
        assert!(!c.matches(0, 19, 25, 11, 3));
        let weekdays = Cron::parse("0 9 * * MON-FRI").unwrap();
        assert!(weekdays.matches(0, 9, 2, 11, 1));
        assert!(!weekdays.matches(0, 9, 1, 11, 0));
        let every15 = Cron::parse("*/15 * * * *").unwrap();
        assert!(every15.matches(45, 3, 1, 1, 4) && !every15.matches(50, 3, 1, 1, 4));
        let sunday = Cron::parse("0 0 * * 7").unwrap();
        assert!(sunday.matches(0, 0, 1, 11, 0));
        let both = Cron::parse("0 0 1 * 1").unwrap();
        assert!(both.matches(0, 0, 1, 6, 3) && both.matches(0, 0, 9, 6, 1));
    }

    #[test]
    fn an_expression_is_serialised_as_its_text_and_parsed_when_read_back() {
        let c = Cron::parse("50  18 * *   MON-FRI").unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"50 18 * * MON-FRI\"");
        let back: Cron = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert!(back.matches(50, 18, 2, 11, 1));
        for bad in ["\"0 0 * *\"", "\"60 0 * * *\"", "5", "null"] {
            assert!(serde_json::from_str::<Cron>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_expressions_say_which_field() {
        let cases = [
            ("0 0 * *", "a cron expression has 5 fields (minute hour day-of-month month day-of-week); `0 0 * *` has 4"),
            ("60 0 * * *", "the minute field has 60, outside 0–59"),
            ("0 24 * * *", "the hour field has 24, outside 0–23"),
            ("0 0 0 * *", "the day of month field has 0, outside 1–31"),
            ("0 0 * 13 *", "the month field has 13, outside 1–12"),
            ("0 0 * * funday", "the day of week field has `funday`, which is not a number"),
            ("*/0 * * * *", "the minute field has step `0`; a step is a whole number above 0"),
            ("0 5-2 * * *", "the hour field has the range 5-2, which runs backwards"),
        ];
        for (text, expected) in cases {
            assert_eq!(Cron::parse(text).unwrap_err(), expected, "{text}");
        }
    }
}
