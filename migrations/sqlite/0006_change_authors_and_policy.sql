-- Everyone who authored or committed a commit of a change since the environment's last applied
-- commit (JSON list of {name, email}), and the rules the change edits (JSON list of spec keys;
-- empty unless it is a policy change). Rows recorded before this migration name only their
-- commit's author, which the store reads as the one author.
ALTER TABLE changes ADD COLUMN authors TEXT NOT NULL DEFAULT '[]';
ALTER TABLE changes ADD COLUMN policy_edits TEXT NOT NULL DEFAULT '[]';
