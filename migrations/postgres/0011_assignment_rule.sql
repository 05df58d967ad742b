-- Issue 17 (who can reach what): which rule made each assignment, and the indexes the access
-- report reads by.
--
-- rule: the key of the rule whose create made the assignment (`assignments.account[0]`); NULL
-- for a foreign assignment (it existed before a rule wanted it) and for rows recorded before
-- this column.
ALTER TABLE aws_assignments ADD COLUMN rule TEXT;

-- One user's report reads the assignments of that user and of its groups by AWS principal id;
-- the primary key starts with (kind, target) and serves only the one-account report.
CREATE INDEX aws_assignments_principal_idx ON aws_assignments (principal_type, principal_id);
-- The one-permission-set report.
CREATE INDEX aws_assignments_permission_set_idx ON aws_assignments (permission_set_arn);
-- Each report row names its permission set, found by ARN (the primary key is by name).
CREATE INDEX aws_access_objects_arn_idx ON aws_access_objects (kind, arn);
-- The whole report is read in windows of users in name order (byte order, as the report sorts:
-- COLLATE "C"), each window found by this index rather than by sorting every user.
CREATE INDEX aws_principals_name_idx ON aws_principals (kind, name COLLATE "C");
