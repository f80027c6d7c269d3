-- A change's stored plan (domain::change::PlanView) loses its inner `plan` object: a planned
-- one was {"state": "planned", "plan": {"operations": […], "errors": […], "hash": …, "notes":
-- […]}, "read_ms": …, "aws_calls": …} and is now the plan's fields beside `state`, `read_ms`
-- and `aws_calls`, as the API sends it. `unavailable` plans keep their shape.
--
-- json_patch (RFC 7396) copies the plan's keys to the top level; its values are arrays and a
-- string, which a merge patch copies whole (nulls inside the operations included).
UPDATE changes
SET plan = json_patch(json_remove(plan, '$.plan'), plan -> '$.plan')
WHERE plan IS NOT NULL
    AND json_valid(plan)
    AND plan ->> '$.state' = 'planned'
    AND json_type(plan, '$.plan') = 'object';
