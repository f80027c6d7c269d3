//! Times as the team reads them: in a time zone (the environment's, or the one a user chose),
//! with the zone named, recent times also relative ("3 min ago"), and the ticks of a time axis
//! at round local times (every 10 minutes, every 3 hours, every day at midnight), daylight
//! saving included.

use chrono::{DateTime, Datelike, Offset, TimeZone as _, Timelike, Utc};
use chrono_tz::Tz;

use crate::spec::{EnvironmentSpec, TimeZone};

/// The zone an environment's times are shown in: the zone of its first scheduled action (the
/// team's schedules are written in the zone they live in), else of its first change window,
/// else UTC.
pub fn environment_zone(spec: &EnvironmentSpec) -> TimeZone {
    spec.autoscaling_groups
        .iter()
        .flat_map(|g| g.schedule.iter().map(|a| a.timezone))
        .chain(spec.environment.change_windows.iter().map(|w| w.timezone))
        .next()
        .unwrap_or(TimeZone::UTC)
}

/// The zone a page shows times in: the user's own setting when there is one, else the
/// environment's.
pub fn display_zone(user: Option<TimeZone>, environment: TimeZone) -> TimeZone {
    user.unwrap_or(environment)
}

/// A zone by its IANA name; anything else (an unknown or empty name) is UTC. For names read
/// back from the panel's own reports, which only ever hold names that parsed.
pub fn zone_named(name: &str) -> TimeZone {
    name.parse().unwrap_or(TimeZone::UTC)
}

/// `UTC`: the zone of reports from before they named one.
pub fn utc_name() -> String {
    "UTC".into()
}

/// Every IANA zone name this build knows, for a chooser.
pub fn zone_names() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|z| z.name())
}

/// How much of a time to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `2026-12-07 21:33:36`
    Second,
    /// `2026-12-07 21:33`
    Minute,
    /// `12-07 21:33`: in a chart's hover and a table of recent times.
    Short,
    /// `2026-12-07`
    Date,
}

impl Style {
    fn pattern(self) -> &'static str {
        match self {
            Style::Second => "%Y-%m-%d %H:%M:%S",
            Style::Minute => "%Y-%m-%d %H:%M",
            Style::Short => "%m-%d %H:%M",
            Style::Date => "%Y-%m-%d",
        }
    }
}

fn local(t: i64, zone: Tz) -> Option<DateTime<Tz>> {
    DateTime::from_timestamp(t, 0).map(|u| u.with_timezone(&zone))
}

/// Unix seconds as a local time in `zone`, without the zone's name (the page names it once).
pub fn format(t: i64, zone: TimeZone, style: Style) -> String {
    local(t, zone.tz())
        .map(|l| l.format(style.pattern()).to_string())
        .unwrap_or_default()
}

/// The zone as a page names it once: `Asia/Seoul (KST)`, `America/New_York (EST)` in winter
/// and `(EDT)` in summer; `UTC` alone.
pub fn zone_label(zone: TimeZone, at: i64) -> String {
    let abbreviation = local(at, zone.tz())
        .map(|l| l.format("%Z").to_string())
        .unwrap_or_default();
    if abbreviation.is_empty() || abbreviation == zone.name() {
        zone.name().to_owned()
    } else {
        format!("{} ({abbreviation})", zone.name())
    }
}

/// The zone's offset from UTC at `at`, in seconds (`Asia/Seoul`: 32,400).
pub fn offset_secs(zone: TimeZone, at: i64) -> i32 {
    local(at, zone.tz()).map_or(0, |l| l.offset().fix().local_minus_utc())
}

/// How long ago `t` was at `now`, in words: `just now`, `3 min ago`, `5 h ago`, `2 days ago`
/// (`in 3 min` for a time to come), to the nearest unit.
pub fn relative(t: i64, now: i64) -> String {
    let d = now - t;
    let (n, future) = (d.unsigned_abs(), d < 0);
    let amount = if n < 45 {
        return "just now".into();
    } else if n < 90 * 60 {
        format!("{} min", ((n + 30) / 60).max(1))
    } else if n < 36 * 3600 {
        format!("{} h", (n + 1_800) / 3_600)
    } else {
        let days = (n + 43_200) / 86_400;
        format!("{days} day{}", if days == 1 { "" } else { "s" })
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// A tick of a time axis: where, and its label in the axis's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeTick {
    /// Unix seconds.
    pub at: i64,
    pub label: String,
}

/// The spacings a time axis may use, in minutes: each a round local time.
const SPACINGS: [u32; 12] = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1_440, 2_880, 10_080];

/// At most this many ticks along a time axis (a narrow card's labels still fit).
pub const MOST_TIME_TICKS: i64 = 7;

/// The spacing (minutes) of a time axis from `start` to `end`: the smallest of [`SPACINGS`]
/// that gives at most [`MOST_TIME_TICKS`] ticks.
pub fn tick_spacing(start: i64, end: i64) -> u32 {
    let span = (end - start).max(0);
    SPACINGS
        .into_iter()
        .find(|m| span / (i64::from(*m) * 60) < MOST_TIME_TICKS)
        .unwrap_or(SPACINGS[SPACINGS.len() - 1])
}

/// Whether a local time falls on a tick of `spacing` minutes: a multiple of the spacing since
/// local midnight; for days, local midnight (every other day counted from 1970-01-01; weeks on
/// Mondays).
fn on_tick(l: &DateTime<Tz>, spacing: u32) -> bool {
    let minute_of_day = l.hour() * 60 + l.minute();
    match spacing {
        1_440 => minute_of_day == 0,
        2_880 => minute_of_day == 0 && l.date_naive().num_days_from_ce() % 2 == 0,
        10_080 => minute_of_day == 0 && l.weekday() == chrono::Weekday::Mon,
        m => minute_of_day.is_multiple_of(m),
    }
}

/// The ticks of a time axis from `start` to `end` (Unix seconds) at round local times of
/// `zone`: `HH:MM`, with the date (`12-07 00:00`) on the first tick and where the day changes;
/// days as `12-07`. A local time that happens twice (the hour daylight saving repeats) has two
/// ticks; one that never happens (the hour it skips) has none.
pub fn time_ticks(start: i64, end: i64, zone: TimeZone) -> Vec<TimeTick> {
    let spacing = tick_spacing(start, end);
    let tz = zone.tz();
    // Every zone's offset is a whole number of quarter hours, so a round local minute of five
    // is a round UTC one: five-minute steps find every tick (8,640 steps for 30 days).
    const STEP: i64 = 300;
    let mut t = start + (STEP - start.rem_euclid(STEP)) % STEP;
    let mut out = Vec::new();
    let mut last_day = None;
    while t <= end {
        if let Some(l) = local(t, tz) {
            if on_tick(&l, spacing) {
                let day = l.date_naive();
                let label = if spacing >= 1_440 {
                    l.format("%m-%d").to_string()
                } else if last_day != Some(day) {
                    l.format("%m-%d %H:%M").to_string()
                } else {
                    l.format("%H:%M").to_string()
                };
                last_day = Some(day);
                out.push(TimeTick { at: t, label });
            }
        }
        t += STEP;
    }
    out
}

/// Unix seconds of a local wall-clock time in `zone` (the earlier one when it happens twice);
/// `None` when it never happens. For tests and the demo's daily curve.
pub fn at_local(zone: TimeZone, y: i32, m: u32, d: u32, h: u32, min: u32) -> Option<i64> {
    zone.tz()
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .earliest()
        .map(|t| t.with_timezone(&Utc).timestamp())
}

/// The local hour of day (0–23) and minute of `t` in `zone`.
pub fn local_hour_minute(t: i64, zone: TimeZone) -> (u32, u32) {
    local(t, zone.tz()).map_or((0, 0), |l| (l.hour(), l.minute()))
}

/// Times as the panel stores and sends them: RFC 3339 in UTC with milliseconds
/// (`2026-12-07T13:33:36.770Z`). In the domain a time is a `DateTime<Utc>`; this text is its
/// form only in the store and in JSON, where `#[serde(with = "crate::time::stored")]` (or
/// `stored::option`) keeps the text the API has always sent.
pub mod stored {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// The stored text of a time.
    pub fn text(t: &DateTime<Utc>) -> String {
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }

    /// A stored time read back (any RFC 3339 time, brought to UTC).
    pub fn parse(text: &str) -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("`{text}` is not a stored time: {e}"))
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&text(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    /// The same for an optional time (`null` when there is none).
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::text(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| super::parse(&text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Stamped {
        #[serde(with = "super::stored")]
        at: DateTime<Utc>,
        #[serde(with = "super::stored::option", default)]
        until: Option<DateTime<Utc>>,
    }

    #[test]
    fn stored_times_keep_their_text_in_json_and_refuse_what_is_not_a_time() {
        let at = super::stored::parse("2026-12-07T13:33:36.770Z").unwrap();
        let json = serde_json::to_string(&Stamped { at, until: None }).unwrap();
        assert_eq!(json, r#"{"at":"2026-12-07T13:33:36.770Z","until":null}"#);
        // Whole seconds keep their milliseconds, and an offset is brought to UTC.
        let back: Stamped = serde_json::from_str(
            r#"{"at":"2026-12-07T22:33:36+09:00","until":"2026-12-07T13:33:36Z"}"#,
        )
        .unwrap();
        assert_eq!(super::stored::text(&back.at), "2026-12-07T13:33:36.000Z");
        assert_eq!(back.until.map(|t| t.timestamp()), Some(back.at.timestamp()));
        let e = serde_json::from_str::<Stamped>(r#"{"at":"yesterday"}"#).unwrap_err();
        assert!(
            e.to_string().contains("`yesterday` is not a stored time"),
            "{e}"
        );
    }

    use super::*;

    fn zone(name: &str) -> TimeZone {
        name.parse().unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        at_local(TimeZone::UTC, y, m, d, h, min).unwrap()
    }

    #[test]
    fn times_read_in_the_zone_asked_for() {
        // 2026-12-07 12:34:56 UTC.
        let t = utc(2026, 12, 7, 12, 34) + 56;
        let cases = [
            ("UTC", Style::Second, "2026-12-07 12:34:56"),
            ("Asia/Seoul", Style::Minute, "2026-12-07 21:34"),
            ("Asia/Seoul", Style::Short, "12-07 21:34"),
            ("America/New_York", Style::Minute, "2026-12-07 07:34"),
            ("Asia/Kathmandu", Style::Minute, "2026-12-07 18:19"),
            ("Pacific/Auckland", Style::Date, "2026-12-08"),
        ];
        for (name, style, want) in cases {
            assert_eq!(format(t, zone(name), style), want, "{name} {style:?}");
        }
    }

    #[test]
    fn the_zone_is_named_with_its_abbreviation_of_the_season() {
        let winter = utc(2026, 1, 15, 12, 0);
        let summer = utc(2026, 7, 15, 12, 0);
        let cases = [
            ("Asia/Seoul", winter, "Asia/Seoul (KST)"),
            ("Asia/Seoul", summer, "Asia/Seoul (KST)"),
            ("America/New_York", winter, "America/New_York (EST)"),
            ("America/New_York", summer, "America/New_York (EDT)"),
            ("Europe/Berlin", summer, "Europe/Berlin (CEST)"),
            ("UTC", summer, "UTC"),
        ];
        for (name, at, want) in cases {
            assert_eq!(zone_label(zone(name), at), want);
        }
        assert_eq!(offset_secs(zone("Asia/Seoul"), winter), 9 * 3600);
        assert_eq!(offset_secs(zone("America/New_York"), summer), -4 * 3600);
    }

    #[test]
    fn recent_times_read_as_how_long_ago() {
        let now = 1_000_000;
        let cases = [
            (now, "just now"),
            (now - 44, "just now"),
            (now - 45, "1 min ago"),
            (now - 3 * 60 - 20, "3 min ago"),
            (now - 89 * 60, "89 min ago"),
            (now - 90 * 60, "2 h ago"),
            (now - 5 * 3600 - 59, "5 h ago"),
            (now - 3 * 3600 + 12, "3 h ago"),
            (now - 36 * 3600, "2 days ago"),
            (now - 5 * 86_400 - 3_600, "5 days ago"),
            (now + 3 * 60, "in 3 min"),
        ];
        for (t, want) in cases {
            assert_eq!(relative(t, now), want, "{} s", now - t);
        }
    }

    #[test]
    fn stored_times_parse_and_bad_ones_do_not() {
        let unix = |t: &str| stored::parse(t).ok().map(|t| t.timestamp());
        assert_eq!(unix("1970-01-02T00:00:00.000Z"), Some(86_400));
        assert_eq!(unix("1970-01-01T09:00:00+09:00"), Some(0));
        assert_eq!(unix("yesterday"), None);
    }

    #[test]
    fn the_spacing_grows_with_the_range() {
        let cases = [
            (3_600, 10),
            (6 * 3_600, 60),
            (24 * 3_600, 360),
            (7 * 86_400, 2_880),
            (30 * 86_400, 10_080),
            (90 * 86_400, 10_080),
        ];
        for (span, minutes) in cases {
            assert_eq!(tick_spacing(0, span), minutes, "span {span} s");
        }
    }

    fn labels(ticks: &[TimeTick]) -> Vec<&str> {
        ticks.iter().map(|t| t.label.as_str()).collect()
    }

    #[test]
    fn an_hour_ticks_every_ten_minutes_with_the_date_once() {
        let seoul = zone("Asia/Seoul");
        let start = at_local(seoul, 2026, 12, 7, 20, 55).unwrap();
        let ticks = time_ticks(start, start + 3_600, seoul);
        assert_eq!(
            labels(&ticks),
            ["12-07 21:00", "21:10", "21:20", "21:30", "21:40", "21:50"]
        );
        assert_eq!(ticks[0].at, start + 300);
    }

    #[test]
    fn ranges_from_an_hour_to_thirty_days_tick_at_round_local_times() {
        // (zone, range start local, span, tick labels)
        let seoul = zone("Asia/Seoul");
        let kathmandu = zone("Asia/Kathmandu");
        type Case = (
            TimeZone,
            (i32, u32, u32, u32, u32),
            i64,
            &'static [&'static str],
        );
        let cases: [Case; 5] = [
            (
                kathmandu,
                (2026, 12, 7, 8, 55),
                3_600,
                &["12-07 09:00", "09:10", "09:20", "09:30", "09:40", "09:50"],
            ),
            (
                seoul,
                (2026, 12, 7, 16, 20),
                6 * 3_600,
                &["12-07 17:00", "18:00", "19:00", "20:00", "21:00", "22:00"],
            ),
            (
                seoul,
                (2026, 12, 7, 22, 0),
                24 * 3_600,
                &["12-08 00:00", "06:00", "12:00", "18:00"],
            ),
            (
                seoul,
                (2026, 12, 1, 12, 0),
                7 * 86_400,
                &["12-02", "12-04", "12-06", "12-08"],
            ),
            (
                seoul,
                (2026, 11, 7, 12, 0),
                30 * 86_400,
                &["11-09", "11-16", "11-23", "11-30", "12-07"],
            ),
        ];
        for (z, (y, m, d, h, min), span, want) in cases {
            let start = at_local(z, y, m, d, h, min).unwrap();
            let ticks = time_ticks(start, start + span, z);
            assert_eq!(labels(&ticks), want, "{z} from {y}-{m}-{d} {h}:{min}");
            for t in &ticks {
                assert!((start..=start + span).contains(&t.at));
                let (hour, minute) = local_hour_minute(t.at, z);
                let spacing = tick_spacing(start, start + span);
                assert_eq!(
                    (hour * 60 + minute) % spacing.min(1_440),
                    0,
                    "round local time"
                );
            }
        }
    }

    #[test]
    fn daylight_saving_repeats_and_skips_local_hours() {
        let ny = zone("America/New_York");
        // 2026-11-01: clocks go back at 02:00 EDT to 01:00 EST; 01:00 happens twice.
        let start = at_local(ny, 2026, 11, 1, 0, 0).unwrap();
        let ticks = time_ticks(start, start + 5 * 3_600, ny);
        assert_eq!(
            labels(&ticks),
            ["11-01 00:00", "01:00", "01:00", "02:00", "03:00", "04:00"]
        );
        assert_eq!(ticks[2].at - ticks[1].at, 3_600, "an hour apart in UTC");
        // 2026-03-08: clocks go forward at 02:00 EST to 03:00 EDT; 02:00 never happens.
        let start = at_local(ny, 2026, 3, 8, 0, 0).unwrap();
        let ticks = time_ticks(start, start + 5 * 3_600, ny);
        assert_eq!(
            labels(&ticks),
            ["03-08 00:00", "01:00", "03:00", "04:00", "05:00", "06:00"]
        );
        // Berlin's 30 days over the change in October: still at local midnight on Mondays.
        let berlin = zone("Europe/Berlin");
        let start = at_local(berlin, 2026, 10, 10, 0, 0).unwrap();
        let ticks = time_ticks(start, start + 30 * 86_400, berlin);
        assert_eq!(labels(&ticks), ["10-12", "10-19", "10-26", "11-02"]);
        for t in &ticks {
            assert_eq!(local_hour_minute(t.at, berlin), (0, 0));
        }
        assert_eq!(
            ticks[2].at - ticks[1].at,
            7 * 86_400 + 3_600,
            "the week of the change is an hour longer"
        );
        // Seoul has no daylight saving: the same week is exactly seven days.
        let seoul = zone("Asia/Seoul");
        let ticks = time_ticks(start, start + 30 * 86_400, seoul);
        assert!(ticks.windows(2).all(|w| w[1].at - w[0].at == 7 * 86_400));
    }

    #[test]
    fn an_environment_shows_its_schedules_zone_else_its_windows_else_utc() {
        let mut spec = crate::spec::fixtures::prod();
        assert_eq!(environment_zone(&spec).name(), "Asia/Seoul");
        for g in &mut spec.autoscaling_groups {
            g.schedule.clear();
        }
        let windows = spec.environment.change_windows.first().map(|w| w.timezone);
        assert_eq!(
            environment_zone(&spec),
            windows.unwrap_or(TimeZone::UTC),
            "the change window's zone"
        );
        spec.environment.change_windows.clear();
        assert_eq!(environment_zone(&spec), TimeZone::UTC);
        let ny = zone("America/New_York");
        assert_eq!(display_zone(Some(ny), TimeZone::UTC), ny);
        assert_eq!(display_zone(None, TimeZone::UTC), TimeZone::UTC);
        assert_eq!(zone_named("Asia/Seoul").name(), "Asia/Seoul");
        assert_eq!(zone_named("Mars/Olympus"), TimeZone::UTC);
    }
}
