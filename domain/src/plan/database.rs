//! The database planner: settings of an RDS instance, with what a modification already pending
//! moves it to.

use super::{op, Action, DbSetting, Phases, PlanError};
use crate::observed::ObservedDatabase;
use crate::spec::Database;

pub(super) fn plan_database(
    d: &Database,
    o: &ObservedDatabase,
    p: &mut Phases,
    errors: &mut Vec<PlanError>,
    notes: &mut Vec<String>,
) {
    let resource = format!("database {}", d.identifier);
    // What the database is moving to counts as its value: a modification already pending is
    // neither asked for again nor drift.
    let class = o
        .pending
        .instance_class
        .as_ref()
        .unwrap_or(&o.instance_class);
    let multi_az = o.pending.multi_az.unwrap_or(o.multi_az);
    let storage = o
        .pending
        .allocated_storage_gb
        .unwrap_or(o.allocated_storage_gb);
    let retention = o
        .pending
        .backup_retention_days
        .unwrap_or(o.backup_retention_days);
    if !o.pending_modifications.is_empty() || !o.takes_modifications() {
        let what = if o.pending_modifications.is_empty() {
            String::new()
        } else {
            format!(": {}", o.pending_modifications.join(", "))
        };
        notes.push(format!(
            "{resource} is {}{what}",
            if o.takes_modifications() {
                "pending"
            } else {
                o.status.as_str()
            }
        ));
    }
    let mut settings = Vec::new();
    let mut risks = Vec::new();
    let mut set = |s: DbSetting| settings.push(s);
    if let Some(c) = &d.instance_class {
        if c != class {
            set(DbSetting::InstanceClass {
                before: class.clone(),
                after: c.clone(),
            });
            risks.push(if multi_az {
                "a class change restarts the database: it fails over to the standby (about a minute of errors)".to_owned()
            } else {
                "a class change reboots the database: it is down for several minutes".to_owned()
            });
        }
    }
    if let Some(m) = d.multi_az {
        if m != multi_az {
            set(DbSetting::MultiAz {
                before: multi_az,
                after: m,
            });
            risks.push(if m {
                "adds a standby in a second zone (performance dips while it syncs)".to_owned()
            } else {
                "Multi-AZ off: no standby; a zone failure takes the database down".to_owned()
            });
        }
    }
    if let Some(s) = d.allocated_storage_gb {
        if s < storage {
            errors.push(PlanError {
                resource: resource.clone(),
                message: format!(
                    "allocated storage cannot shrink ({storage} GB → {s} GB); RDS only grows storage"
                ),
            });
        } else if s != storage {
            set(DbSetting::AllocatedStorageGb {
                before: storage,
                after: s,
            });
            risks.push("storage grows in place; no new change to storage for 6 hours".to_owned());
        }
    }
    if let Some(b) = d.backup_retention_days {
        if b != retention {
            set(DbSetting::BackupRetentionDays {
                before: retention,
                after: b,
            });
            if b == 0 {
                risks.push("automated backups off: no point-in-time recovery".to_owned());
            }
        }
    }
    if let Some(dp) = d.deletion_protection {
        if dp != o.deletion_protection {
            set(DbSetting::DeletionProtection {
                before: o.deletion_protection,
                after: dp,
            });
            if !dp {
                risks.push("deletion protection off: the database can be deleted".to_owned());
            }
        }
    }
    if !settings.is_empty() && !o.takes_modifications() {
        // RDS refuses a modification unless the instance is available (InvalidDBInstanceState);
        // one is never piled on another.
        errors.push(PlanError {
            resource,
            message: format!(
                "it is `{}`{}: a new modification waits until it is available again; plan again then",
                o.status,
                if o.pending_modifications.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", o.pending_modifications.join(", "))
                }
            ),
        });
        return;
    }
    if !settings.is_empty() {
        let change = settings
            .iter()
            .map(|s| format!("{} {} → {}", s.field(), s.before(), s.after()))
            .collect::<Vec<_>>()
            .join(", ");
        p.databases.push(op(
            Action::ModifyDatabase {
                identifier: d.identifier.to_string(),
                settings,
            },
            resource,
            change,
            (!risks.is_empty()).then(|| risks.join("; ")),
        ));
    }
}
