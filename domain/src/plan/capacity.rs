//! The capacity planner: min, max and desired of an autoscaling group, stepped in the safe order.

use super::{op, Action, CapacityField, Operation, Phases};
use crate::observed::ObservedGroup;
use crate::spec::AutoscalingGroup;

/// Plans the capacity of `g` against `o`. `enforce_desired` is whether the change itself edits
/// the group's desired.
pub(super) fn plan_capacity(
    g: &AutoscalingGroup,
    o: &ObservedGroup,
    enforce_desired: bool,
    p: &mut Phases,
) {
    // The autoscaler owns desired between min and max unless this change sets it.
    let desired = if o.autoscaled() && !enforce_desired {
        None
    } else {
        g.capacity.desired()
    };
    capacity_steps(
        o,
        g.capacity.min(),
        g.capacity.max(),
        desired,
        &mut p.capacity,
    );
}

/// Capacity steps from the observed triple to the wanted one, in the safe order: raise max,
/// lower min, set desired, raise min, lower max. Every intermediate triple stays valid.
fn capacity_steps(
    g: &ObservedGroup,
    min: u32,
    max: u32,
    desired: Option<u32>,
    out: &mut Vec<Operation>,
) {
    let resource = format!("autoscaling group {}", g.name);
    let step = |field: CapacityField, before: u32, after: u32, risk: Option<String>| {
        op(
            Action::SetCapacity {
                group: g.name.clone(),
                field,
                before,
                after,
            },
            resource.clone(),
            format!("{field} {before} → {after}"),
            risk,
        )
    };
    // What desired becomes: as asked, else the current one pushed into the new range.
    let target_desired = desired.unwrap_or_else(|| g.desired.clamp(min, max));
    if max > g.max {
        out.push(step(CapacityField::Max, g.max, max, None));
    }
    if min < g.min {
        out.push(step(CapacityField::Min, g.min, min, None));
    }
    if target_desired != g.desired {
        let risk = if target_desired < g.in_service {
            Some(format!(
                "lower capacity: {} of the {} running instances will be terminated",
                g.in_service - target_desired,
                g.in_service
            ))
        } else if target_desired > g.in_service {
            Some(format!(
                "launches {} instance(s)",
                target_desired - g.in_service
            ))
        } else {
            None
        };
        let risk = if desired.is_none() {
            risk.map(|r| format!("{r} (desired moved into the new range)"))
        } else {
            risk
        };
        out.push(step(
            CapacityField::Desired,
            g.desired,
            target_desired,
            risk,
        ));
    }
    if min > g.min {
        out.push(step(CapacityField::Min, g.min, min, None));
    }
    if max < g.max {
        // Instances above the new desired are already gone by the desired step.
        let risk = (max < g.in_service.min(target_desired)).then(|| {
            format!("lower capacity: the group cannot keep more than {max} instances; running ones above that are terminated")
        });
        out.push(step(CapacityField::Max, g.max, max, risk));
    }
}
