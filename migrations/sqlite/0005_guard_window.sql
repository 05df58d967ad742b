-- The delete guard's window: what each real run deleted and removed in AWS, and whether it was
-- forced. A run is judged together with the runs of the last [sync] guard_window (since the
-- last forced run, whose deletes an admin accepted), so spacing deletes out does not get
-- around the guard.
ALTER TABLE sync_runs ADD COLUMN forced BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE sync_runs ADD COLUMN deleted_principals BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_runs ADD COLUMN removed_memberships BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_runs ADD COLUMN removed_assignments BIGINT NOT NULL DEFAULT 0;
