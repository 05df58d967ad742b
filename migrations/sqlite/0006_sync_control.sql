-- Sync control (issue 14): a pause every replica obeys, and the destructive actions a run held
-- for an admin's approval ([sync] approve_destructive).

-- At most one row: sync is paused while it exists. Kept in the database, so the pause holds for
-- every replica and survives restarts.
CREATE TABLE sync_pause (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    paused_at   TEXT NOT NULL,
    reason      TEXT,
    -- "cli", or "admin:<token id>"
    paused_by   TEXT NOT NULL
);

-- One row per run that held destructive actions (deletes, membership removals, assignment
-- deletes). An approval lets exactly these actions go, and only while they are still planned.
CREATE TABLE sync_holds (
    run_id         TEXT PRIMARY KEY REFERENCES sync_runs (id) ON DELETE CASCADE,
    held_at        TEXT NOT NULL,
    -- pending | approved | applied | superseded
    state          TEXT NOT NULL,
    -- the held actions' keys (what an approval lets go), and how the report shows them
    action_keys    TEXT NOT NULL,
    actions        TEXT NOT NULL,
    approved_at    TEXT,
    approved_by    TEXT,
    -- the run that applied the approved actions, or whose own hold superseded this one
    closed_at      TEXT,
    closed_by_run  TEXT
);
CREATE INDEX sync_holds_open_idx ON sync_holds (state) WHERE state IN ('pending', 'approved');
