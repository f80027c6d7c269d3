-- A rollout step's state (JSON: domain::rollout::RolloutState): the refresh AWS runs by its id,
-- the stage and the bake's end, written before and after each AWS call so a restarted process
-- re-attaches to it.
ALTER TABLE apply_steps ADD COLUMN rollout TEXT;
-- An operator's request to a running rollout (continue, cancel, rollback), and who asked; the
-- rollout step takes it at its next poll and clears it.
ALTER TABLE apply_steps ADD COLUMN command TEXT;
ALTER TABLE apply_steps ADD COLUMN command_by TEXT;
