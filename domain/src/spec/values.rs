//! Values of the spec held as what they were parsed to, so code after the loader never parses
//! them again: time zones, capacities and names. Each serialises to the same JSON as the plain
//! value it stands for (a string, or the numbers of its fields) and checks it again when read
//! back, since stored specs and those sent to the pages come back through `Deserialize`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IANA time zone, serialised as its name (`Asia/Seoul`); a name that parses is exactly the
/// name it serialises to again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    pub const UTC: TimeZone = TimeZone(chrono_tz::Tz::UTC);

    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl FromStr for TimeZone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        chrono_tz::Tz::from_str(s)
            .map(TimeZone)
            .map_err(|_| format!("`{s}` is not an IANA time zone (like Asia/Seoul or UTC)"))
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq<str> for TimeZone {
    fn eq(&self, other: &str) -> bool {
        self.name() == other
    }
}

impl PartialEq<&str> for TimeZone {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl Serialize for TimeZone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A text value through `FromStr` (the check) and back through `Display`.
macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::ops::Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<String> for $t {
            fn eq(&self, other: &String) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl PartialEq<$t> for String {
            fn eq(&self, other: &$t) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl PartialEq<$t> for str {
            fn eq(&self, other: &$t) -> bool {
                self == other.as_str()
            }
        }

        impl PartialEq<$t> for &str {
            fn eq(&self, other: &$t) -> bool {
                *self == other.as_str()
            }
        }

        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
    };
}

/// An environment's name: its folder's name, lower-case letters, digits, `-` and `_`, at most
/// 64 characters ([`super::valid_environment_name`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvName(String);

impl EnvName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EnvName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if super::valid_environment_name(s) {
            Ok(EnvName(s.to_owned()))
        } else {
            Err(format!(
                "`{s}` is not an environment's name: lower-case letters, digits, `-` and `_`"
            ))
        }
    }
}

string_serde!(EnvName);

/// The name of an existing AWS resource the spec names (an Auto Scaling group, a DB instance
/// identifier): text that is not blank, as the loader reads it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceName(String);

impl ResourceName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ResourceName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            Err("a name must not be empty".to_owned())
        } else {
            Ok(ResourceName(s.to_owned()))
        }
    }
}

string_serde!(ResourceName);

/// The highest min, max or desired capacity a spec may give.
pub const MAX_CAPACITY: u32 = 10_000;

/// An Auto Scaling group's capacity: min ≤ desired ≤ max, each at most [`MAX_CAPACITY`];
/// `desired: None` leaves the group's own. Serialised as its three fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawCapacity")]
pub struct Capacity {
    min: u32,
    max: u32,
    desired: Option<u32>,
}

#[derive(Deserialize)]
struct RawCapacity {
    min: u32,
    max: u32,
    desired: Option<u32>,
}

impl TryFrom<RawCapacity> for Capacity {
    type Error = String;
    fn try_from(r: RawCapacity) -> Result<Self, String> {
        Capacity::new(r.min, r.max, r.desired)
    }
}

/// What is wrong with the order or range of `min`, `desired` and `max`, for whichever of them
/// are given, each in the loader's words; empty: nothing.
pub fn capacity_problems(min: Option<u32>, desired: Option<u32>, max: Option<u32>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in [("min", min), ("max", max), ("desired", desired)] {
        if let Some(v) = v.filter(|v| *v > MAX_CAPACITY) {
            out.push(format!("{k} {v} is outside 0–{MAX_CAPACITY}"));
        }
    }
    if let (Some(a), Some(b)) = (min, max) {
        if a > b {
            out.push(format!("min {a} is above max {b}"));
        }
    }
    if let (Some(a), Some(d)) = (min, desired) {
        if d < a {
            out.push(format!("desired {d} is below min {a}"));
        }
    }
    if let (Some(d), Some(b)) = (desired, max) {
        if d > b {
            out.push(format!("desired {d} is above max {b}"));
        }
    }
    out
}

impl Capacity {
    pub fn new(min: u32, max: u32, desired: Option<u32>) -> Result<Self, String> {
        let problems = capacity_problems(Some(min), desired, Some(max));
        if problems.is_empty() {
            Ok(Capacity { min, max, desired })
        } else {
            Err(problems.join("; "))
        }
    }

    pub fn min(&self) -> u32 {
        self.min
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    pub fn desired(&self) -> Option<u32> {
        self.desired
    }

    /// The same capacity with another min, checked again.
    pub fn with_min(self, min: u32) -> Result<Self, String> {
        Self::new(min, self.max, self.desired)
    }

    /// The same capacity with another max, checked again.
    pub fn with_max(self, max: u32) -> Result<Self, String> {
        Self::new(self.min, max, self.desired)
    }

    /// The same capacity with another desired, checked again.
    pub fn with_desired(self, desired: Option<u32>) -> Result<Self, String> {
        Self::new(self.min, self.max, desired)
    }
}

/// What a scheduled action sets: at least one of min, max and desired, those given in order
/// (min ≤ desired ≤ max) and each at most [`MAX_CAPACITY`]. Serialised as its three fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawCapacityChange")]
pub struct CapacityChange {
    min: Option<u32>,
    max: Option<u32>,
    desired: Option<u32>,
}

#[derive(Deserialize)]
struct RawCapacityChange {
    min: Option<u32>,
    max: Option<u32>,
    desired: Option<u32>,
}

impl TryFrom<RawCapacityChange> for CapacityChange {
    type Error = String;
    fn try_from(r: RawCapacityChange) -> Result<Self, String> {
        CapacityChange::new(r.min, r.max, r.desired)
    }
}

impl CapacityChange {
    pub fn new(min: Option<u32>, max: Option<u32>, desired: Option<u32>) -> Result<Self, String> {
        let mut problems = capacity_problems(min, desired, max);
        if min.is_none() && max.is_none() && desired.is_none() {
            problems.push("a scheduled action sets at least one of min, max, desired".into());
        }
        if problems.is_empty() {
            Ok(CapacityChange { min, max, desired })
        } else {
            Err(problems.join("; "))
        }
    }

    pub fn min(&self) -> Option<u32> {
        self.min
    }

    pub fn max(&self) -> Option<u32> {
        self.max
    }

    pub fn desired(&self) -> Option<u32> {
        self.desired
    }

    /// The same change with another min, checked again.
    pub fn with_min(self, min: Option<u32>) -> Result<Self, String> {
        Self::new(min, self.max, self.desired)
    }

    /// The same change with another max, checked again.
    pub fn with_max(self, max: Option<u32>) -> Result<Self, String> {
        Self::new(self.min, max, self.desired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip<T>(v: &T, expected: serde_json::Value)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug,
    {
        assert_eq!(serde_json::to_value(v).unwrap(), expected);
        let back: T = serde_json::from_value(expected).unwrap();
        assert_eq!(&back, v);
    }

    #[test]
    fn a_time_zone_is_its_name() {
        let tz: TimeZone = "Asia/Seoul".parse().unwrap();
        assert_eq!(tz.tz(), chrono_tz::Asia::Seoul);
        assert_eq!(tz.to_string(), "Asia/Seoul");
        round_trip(&tz, json!("Asia/Seoul"));
        round_trip(&TimeZone::UTC, json!("UTC"));
        // Every name chrono-tz knows serialises to the text it was parsed from.
        for z in chrono_tz::TZ_VARIANTS {
            let t: TimeZone = z.name().parse().unwrap();
            assert_eq!(t.name(), z.name());
        }
        for bad in [
            json!("Asia/Busan"),
            json!("asia/seoul"),
            json!(""),
            json!(9),
        ] {
            assert!(
                serde_json::from_value::<TimeZone>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            "Asia/Busan".parse::<TimeZone>().unwrap_err(),
            "`Asia/Busan` is not an IANA time zone (like Asia/Seoul or UTC)"
        );
    }

    #[test]
    fn names_are_their_text_and_checked_when_read_back() {
        let env: EnvName = "prod".parse().unwrap();
        round_trip(&env, json!("prod"));
        assert_eq!(env, "prod");
        assert_eq!(&*env, "prod");
        for bad in ["Prod", "", "a/b", "prod env"] {
            assert!(
                serde_json::from_value::<EnvName>(json!(bad)).is_err(),
                "{bad}"
            );
        }
        let group: ResourceName = "petclinic-prod-web".parse().unwrap();
        round_trip(&group, json!("petclinic-prod-web"));
        assert_eq!(group.to_string(), "petclinic-prod-web");
        for bad in ["", "  "] {
            assert!(
                serde_json::from_value::<ResourceName>(json!(bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_capacity_is_ordered_and_keeps_its_fields() {
        let c = Capacity::new(2, 8, Some(4)).unwrap();
        round_trip(&c, json!({"min": 2, "max": 8, "desired": 4}));
        round_trip(
            &Capacity::new(2, 8, None).unwrap(),
            json!({"min": 2, "max": 8, "desired": null}),
        );
        assert_eq!(
            Capacity::new(5, 3, Some(9)).unwrap_err(),
            "min 5 is above max 3; desired 9 is above max 3"
        );
        for bad in [
            json!({"min": 5, "max": 3, "desired": null}),
            json!({"min": 2, "max": 8, "desired": 1}),
            json!({"min": 2, "max": 80000, "desired": null}),
            json!({"min": 2, "desired": null}),
        ] {
            assert!(
                serde_json::from_value::<Capacity>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_spec_reads_back_as_it_was_and_a_stored_bad_value_is_refused() {
        let spec = crate::spec::fixtures::prod();
        let json = serde_json::to_value(&spec).unwrap();
        let group = &json["autoscaling_groups"][0];
        assert_eq!(
            (&group["min"], &group["max"], &group["desired"]),
            (&json!(2), &json!(8), &json!(2))
        );
        assert_eq!(group["schedule"][3]["desired"], json!(null));
        assert_eq!(group["schedule"][3]["timezone"], json!("Asia/Seoul"));
        assert_eq!(group["schedule"][3]["cron"], json!("0 19 * * *"));
        let back: crate::spec::EnvironmentSpec = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, spec);
        let edits: [(&str, serde_json::Value); 5] = [
            ("/autoscaling_groups/0/max", json!(1)),
            ("/autoscaling_groups/0/schedule/3/min", json!(9)),
            (
                "/autoscaling_groups/0/schedule/3/timezone",
                json!("Asia/Busan"),
            ),
            ("/autoscaling_groups/0/schedule/3/cron", json!("0 19 * *")),
            ("/environment/name", json!("Prod")),
        ];
        for (at, v) in edits {
            let mut bad = json.clone();
            *bad.pointer_mut(at).unwrap() = v;
            assert!(
                serde_json::from_value::<crate::spec::EnvironmentSpec>(bad).is_err(),
                "{at}"
            );
        }
    }

    #[test]
    fn a_capacity_change_sets_something_in_order() {
        let c = CapacityChange::new(Some(3), None, Some(4)).unwrap();
        round_trip(&c, json!({"min": 3, "max": null, "desired": 4}));
        assert_eq!((c.min(), c.max(), c.desired()), (Some(3), None, Some(4)));
        for bad in [
            json!({"min": null, "max": null, "desired": null}),
            json!({"min": 4, "max": 3, "desired": null}),
            json!({"min": null, "max": 3, "desired": 4}),
        ] {
            assert!(
                serde_json::from_value::<CapacityChange>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
