-- The sync health and the rules fingerprint; mirrors migrations/postgres/0007 (UUIDs and
-- timestamps as TEXT, as in 0001).
--
-- Issue 14: health an admin can see, and which rules each run used.
--
-- The fingerprint of the rules (filters, protection, mappings, permission sets, assignments,
-- adoption) a run planned with: a CLI run whose rules differ from the serving replicas' last
-- run would be undone by the server's next one, so it refuses unless told otherwise.
ALTER TABLE sync_runs ADD COLUMN rules_fingerprint TEXT;
CREATE INDEX sync_runs_trigger_started_idx ON sync_runs (trigger, started_at);

-- The serving replicas' sync health, shared by every replica and read by `scimbridge status`:
-- the identity store they last reached, and the last failure (until a run succeeds). A failure
-- to reach AWS at all records no run, so it is kept here rather than in sync_runs.
CREATE TABLE sync_health (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    identity_store_id TEXT,
    instance_arn      TEXT,
    region            TEXT,
    connected_at      TEXT,
    -- unreachable: no answer from AWS (connection refused, unknown host, timeout, no
    -- credentials); failing: AWS answered with errors, or a run ended failed, partial or refused
    failure           TEXT CHECK (failure IN ('unreachable', 'failing')),
    error             TEXT,
    error_at          TEXT,
    -- the run that failed (none when AWS could not be reached to start one)
    error_run_id      TEXT
);
