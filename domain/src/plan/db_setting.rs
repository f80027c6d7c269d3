//! A database setting to change, with its values typed by the setting, so the RDS adapter
//! hands them to the SDK as they are. Serialised as before they were typed: the setting's name
//! and both values as text (`{"field":"multi_az","before":"false","after":"true"}`); read back,
//! the text is parsed by the setting it names.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A setting's value: a yes/no, a whole number or text. Written as text (`true`, `20`,
/// `db.t3.medium`), as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbValue {
    Bool(bool),
    Whole(u32),
    Text(String),
}

impl fmt::Display for DbValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbValue::Bool(b) => write!(f, "{b}"),
            DbValue::Whole(n) => write!(f, "{n}"),
            DbValue::Text(t) => f.write_str(t),
        }
    }
}

impl Serialize for DbValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DbValue {
    /// Text alone does not say its kind: `true`/`false` are yes/no, digits a whole number,
    /// anything else text. [`DbSetting`] reads its values by the setting instead.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "true" => DbValue::Bool(true),
            "false" => DbValue::Bool(false),
            _ => match s.parse::<u32>() {
                Ok(n) if n.to_string() == s => DbValue::Whole(n),
                _ => DbValue::Text(s),
            },
        })
    }
}

/// One database setting to change: which one, and its value before and after, each of the
/// setting's own type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "StoredDbSetting", try_from = "StoredDbSetting")]
pub enum DbSetting {
    InstanceClass { before: String, after: String },
    MultiAz { before: bool, after: bool },
    AllocatedStorageGb { before: u32, after: u32 },
    BackupRetentionDays { before: u32, after: u32 },
    DeletionProtection { before: bool, after: bool },
}

impl DbSetting {
    /// The setting's name in the spec: `instance_class`, `multi_az`, `allocated_storage_gb`,
    /// `backup_retention_days`, `deletion_protection`.
    pub fn field(&self) -> &'static str {
        match self {
            DbSetting::InstanceClass { .. } => "instance_class",
            DbSetting::MultiAz { .. } => "multi_az",
            DbSetting::AllocatedStorageGb { .. } => "allocated_storage_gb",
            DbSetting::BackupRetentionDays { .. } => "backup_retention_days",
            DbSetting::DeletionProtection { .. } => "deletion_protection",
        }
    }

    pub fn before(&self) -> DbValue {
        self.values().0
    }

    pub fn after(&self) -> DbValue {
        self.values().1
    }

    fn values(&self) -> (DbValue, DbValue) {
        use DbValue::{Bool, Text, Whole};
        match self {
            DbSetting::InstanceClass { before, after } => {
                (Text(before.clone()), Text(after.clone()))
            }
            DbSetting::MultiAz { before, after }
            | DbSetting::DeletionProtection { before, after } => (Bool(*before), Bool(*after)),
            DbSetting::AllocatedStorageGb { before, after }
            | DbSetting::BackupRetentionDays { before, after } => (Whole(*before), Whole(*after)),
        }
    }
}

/// A setting as stored: its name and its values as text.
#[derive(Serialize, Deserialize)]
struct StoredDbSetting {
    field: String,
    before: String,
    after: String,
}

impl From<DbSetting> for StoredDbSetting {
    fn from(s: DbSetting) -> Self {
        StoredDbSetting {
            field: s.field().to_owned(),
            before: s.before().to_string(),
            after: s.after().to_string(),
        }
    }
}

impl TryFrom<StoredDbSetting> for DbSetting {
    type Error = String;
    fn try_from(s: StoredDbSetting) -> Result<Self, String> {
        fn boolean(field: &str, v: &str) -> Result<bool, String> {
            match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(format!("`{field}` is true or false, not `{v}`")),
            }
        }
        fn whole(field: &str, v: &str) -> Result<u32, String> {
            v.parse()
                .map_err(|_| format!("`{field}` is a whole number, not `{v}`"))
        }
        let f = s.field.as_str();
        Ok(match f {
            "instance_class" => DbSetting::InstanceClass {
                before: s.before,
                after: s.after,
            },
            "multi_az" => DbSetting::MultiAz {
                before: boolean(f, &s.before)?,
                after: boolean(f, &s.after)?,
            },
            "allocated_storage_gb" => DbSetting::AllocatedStorageGb {
                before: whole(f, &s.before)?,
                after: whole(f, &s.after)?,
            },
            "backup_retention_days" => DbSetting::BackupRetentionDays {
                before: whole(f, &s.before)?,
                after: whole(f, &s.after)?,
            },
            "deletion_protection" => DbSetting::DeletionProtection {
                before: boolean(f, &s.before)?,
                after: boolean(f, &s.after)?,
            },
            _ => return Err(format!("`{f}` is not a database setting tierdeck manages")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_serialise_as_their_text_and_read_back_by_the_setting() {
        let cases = [
            (
                DbSetting::InstanceClass {
                    before: "db.t3.medium".into(),
                    after: "db.t3.large".into(),
                },
                r#"{"field":"instance_class","before":"db.t3.medium","after":"db.t3.large"}"#,
            ),
            (
                DbSetting::MultiAz {
                    before: false,
                    after: true,
                },
                r#"{"field":"multi_az","before":"false","after":"true"}"#,
            ),
            (
                DbSetting::AllocatedStorageGb {
                    before: 20,
                    after: 50,
                },
                r#"{"field":"allocated_storage_gb","before":"20","after":"50"}"#,
            ),
            (
                DbSetting::BackupRetentionDays {
                    before: 7,
                    after: 0,
                },
                r#"{"field":"backup_retention_days","before":"7","after":"0"}"#,
            ),
            (
                DbSetting::DeletionProtection {
                    before: true,
                    after: false,
                },
                r#"{"field":"deletion_protection","before":"true","after":"false"}"#,
            ),
        ];
        for (setting, json) in cases {
            assert_eq!(serde_json::to_string(&setting).unwrap(), json);
            assert_eq!(serde_json::from_str::<DbSetting>(json).unwrap(), setting);
        }
        let s = DbSetting::AllocatedStorageGb {
            before: 20,
            after: 50,
        };
        assert_eq!(
            (s.field(), s.before().to_string(), s.after().to_string()),
            ("allocated_storage_gb", "20".into(), "50".into())
        );
    }

    #[test]
    fn a_stored_setting_with_a_value_of_the_wrong_kind_is_refused() {
        for bad in [
            r#"{"field":"multi_az","before":"false","after":"yes"}"#,
            r#"{"field":"allocated_storage_gb","before":"20","after":"-5"}"#,
            r#"{"field":"backup_retention_days","before":"x","after":"7"}"#,
            r#"{"field":"deletion_protection","before":"1","after":"true"}"#,
            r#"{"field":"engine","before":"mysql","after":"postgres"}"#,
            r#"{"field":"multi_az","before":false,"after":true}"#,
        ] {
            assert!(serde_json::from_str::<DbSetting>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_value_is_its_text() {
        for (v, text) in [
            (DbValue::Bool(true), "true"),
            (DbValue::Whole(35), "35"),
            (DbValue::Text("db.r6g.large".into()), "db.r6g.large"),
        ] {
            assert_eq!(v.to_string(), text);
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<DbValue>(&json).unwrap(), v);
        }
    }
}
