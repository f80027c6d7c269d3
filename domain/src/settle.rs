//! Settling: what a step that starts asynchronous work waits for after its call, and whether
//! what AWS describes says the work is done. Real AWS returns from `ModifyDBInstance` at once
//! and keeps the instance `modifying` for minutes; a raised min launches instances that take
//! minutes to be `InService`. The emulator does both at once.

use std::time::Duration;

use crate::observed::ObservedDatabase;
use crate::plan::{Action, CapacityField};

/// What a step waits for after its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The database `available` with no pending modifications.
    Database { identifier: String },
    /// At least `at_least` instances of the group `InService`.
    Capacity { group: String, at_least: u32 },
}

/// Which timeout bounds a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Database,
    Capacity,
}

impl Target {
    /// What a step waits for after `action`, if anything: every database modification; a
    /// group's min or desired capacity that rises, when the environment waits for capacity.
    pub fn of(action: &Action, wait_for_capacity: bool) -> Option<Target> {
        match action {
            Action::ModifyDatabase { identifier, .. } => Some(Target::Database {
                identifier: identifier.clone(),
            }),
            Action::SetCapacity {
                group,
                field: CapacityField::Min | CapacityField::Desired,
                before,
                after,
            } if wait_for_capacity && after > before => Some(Target::Capacity {
                group: group.clone(),
                at_least: *after,
            }),
            _ => None,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Target::Database { .. } => Kind::Database,
            Target::Capacity { .. } => Kind::Capacity,
        }
    }

    /// In words, for the change page: `database petclinic-prod-db available with nothing
    /// pending`.
    pub fn waiting_for(&self) -> String {
        match self {
            Target::Database { identifier } => {
                format!("database {identifier} available with nothing pending")
            }
            Target::Capacity { group, at_least } => {
                format!("{at_least} instance(s) of {group} in service")
            }
        }
    }
}

/// `Ok` when the database is done changing; otherwise what AWS still shows, in words
/// (`modifying: instance_class → db.t3.large`). `storage-optimization` counts as done: RDS
/// enters it after a storage change, serves requests meanwhile and can stay in it for hours.
pub fn database(db: Option<&ObservedDatabase>) -> Result<(), String> {
    let Some(db) = db else {
        return Err("the database is not there".to_owned());
    };
    let status = db.status.as_str();
    let pending = &db.pending_modifications;
    match (status, pending.is_empty()) {
        ("available" | "storage-optimization", true) => Ok(()),
        ("available", false) => Err(format!("available, pending: {}", pending.join(", "))),
        (s, true) => Err(s.to_owned()),
        (s, false) => Err(format!("{s}: {}", pending.join(", "))),
    }
}

/// `Ok` when enough instances are in service; otherwise how many are and how many are still
/// launching.
pub fn capacity(in_service: u32, launching: u32, at_least: u32) -> Result<(), String> {
    if in_service >= at_least {
        Ok(())
    } else {
        Err(format!(
            "{in_service} of {at_least} in service, {launching} launching"
        ))
    }
}

/// The pause before poll `n + 1` (`n` polls made): 1 s, then half as long again each time, at
/// most `max`, so a wait of an hour costs about a hundred describe calls, not thousands.
pub fn poll_delay(n: u32, max: Duration) -> Duration {
    let ms = 1_000.0 * 1.5f64.powi(n.min(40) as i32);
    Duration::from_millis(ms as u64)
        .min(max)
        .max(Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::DbSetting;

    fn db(status: &str, pending: &[&str]) -> ObservedDatabase {
        ObservedDatabase {
            identifier: "petclinic-prod-db".into(),
            instance_class: "db.t3.medium".into(),
            multi_az: true,
            allocated_storage_gb: 20,
            backup_retention_days: 7,
            deletion_protection: true,
            status: status.into(),
            engine: "mysql".into(),
            storage_type: "gp2".into(),
            pending_modifications: pending.iter().map(|s| s.to_string()).collect(),
            pending: Default::default(),
        }
    }

    #[test]
    fn a_database_settles_when_available_with_nothing_pending() {
        assert_eq!(database(Some(&db("available", &[]))), Ok(()));
        assert_eq!(
            database(Some(&db("modifying", &["instance_class → db.t3.large"]))),
            Err("modifying: instance_class → db.t3.large".into())
        );
        assert_eq!(
            database(Some(&db("available", &["multi_az → true"]))),
            Err("available, pending: multi_az → true".into())
        );
        assert_eq!(
            database(Some(&db("rebooting", &[]))),
            Err("rebooting".into())
        );
        assert!(database(None).is_err());
    }

    #[test]
    fn only_rising_capacity_waits_and_only_when_asked() {
        let set = |field, before, after| Action::SetCapacity {
            group: "web".into(),
            field,
            before,
            after,
        };
        let web = |n| {
            Some(Target::Capacity {
                group: "web".into(),
                at_least: n,
            })
        };
        assert_eq!(Target::of(&set(CapacityField::Min, 2, 4), true), web(4));
        assert_eq!(Target::of(&set(CapacityField::Desired, 2, 3), true), web(3));
        assert_eq!(Target::of(&set(CapacityField::Min, 2, 4), false), None);
        assert_eq!(Target::of(&set(CapacityField::Min, 4, 2), true), None);
        assert_eq!(Target::of(&set(CapacityField::Max, 4, 8), true), None);
        let modify = Action::ModifyDatabase {
            identifier: "petclinic-prod-db".into(),
            settings: vec![DbSetting::InstanceClass {
                before: "db.t3.medium".into(),
                after: "db.t3.large".into(),
            }],
        };
        let t = Target::of(&modify, false).unwrap();
        assert_eq!(t.kind(), Kind::Database);
        assert_eq!(
            t.waiting_for(),
            "database petclinic-prod-db available with nothing pending"
        );
        assert_eq!(capacity(4, 0, 4), Ok(()));
        assert_eq!(
            capacity(2, 2, 4),
            Err("2 of 4 in service, 2 launching".into())
        );
    }

    #[test]
    fn polls_back_off_to_a_ceiling() {
        let max = Duration::from_secs(30);
        assert_eq!(poll_delay(0, max), Duration::from_secs(1));
        assert_eq!(poll_delay(1, max), Duration::from_millis(1_500));
        assert_eq!(poll_delay(20, max), max);
        assert_eq!(poll_delay(u32::MAX, max), max);
        // An hour of waiting at most 30 s apart: about 130 polls.
        let (mut t, mut n) = (Duration::ZERO, 0);
        while t < Duration::from_secs(3600) {
            t += poll_delay(n, max);
            n += 1;
        }
        assert!(n < 140, "{n}");
    }
}
