-- Everyone who authored or committed a commit of a change, and the rules the change edits.
ALTER TABLE changes ADD COLUMN authors TEXT NOT NULL DEFAULT '[]';
ALTER TABLE changes ADD COLUMN policy_edits TEXT NOT NULL DEFAULT '[]';
