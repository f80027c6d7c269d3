//! The `databases` section (database.yaml).

use super::fields::{boolean, item_path, parsed, text, Cx, Fields};
use crate::spec::model::*;
use crate::spec::yaml::Node;

pub(super) fn database(cx: &mut Cx, node: &Node, index: usize) -> Option<Database> {
    let allowed = [
        "identifier",
        "instance_class",
        "multi_az",
        "allocated_storage_gb",
        "backup_retention_days",
        "deletion_protection",
    ];
    let path = item_path("databases", node, "identifier", index);
    let f = Fields::new(cx, node, &path, &allowed)?;
    let identifier = f.read_required(cx, "identifier", parsed);
    let instance_class = f.get("instance_class").and_then(|n| {
        let c = text(cx, n, &f.sub("instance_class"))?;
        if !c.starts_with("db.") || c.split('.').count() != 3 {
            cx.err(
                n.pos,
                format!(
                    "`{}`: `{c}` is not an instance class like db.t3.medium",
                    f.sub("instance_class")
                ),
            );
            return None;
        }
        Some(c)
    });
    let multi_az = f.read(cx, "multi_az", boolean);
    let storage = f.uint(cx, "allocated_storage_gb", 20, 65_536);
    let backup = f.uint(cx, "backup_retention_days", 0, 35);
    let protection = f.read(cx, "deletion_protection", boolean);
    Some(Database {
        identifier: identifier?,
        instance_class,
        multi_az,
        allocated_storage_gb: storage,
        backup_retention_days: backup,
        deletion_protection: protection,
        loc: cx.loc(node.pos),
    })
}
