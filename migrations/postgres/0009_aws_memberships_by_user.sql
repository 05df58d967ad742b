-- Issue 16: a change run reads the memberships recorded for the users it changed
-- (store/sql/scope.rs: `WHERE group_id IN (…) OR user_id IN (…)`). The primary key
-- (group_id, user_id) serves the first half only; without this index the second half reads
-- every recorded membership, and a change run's cost would grow with the directory.
CREATE INDEX aws_memberships_user_idx ON aws_memberships (user_id);
