-- Issue 16: the SCIM resources changed and not yet covered by a successful real sync run (the
-- "dirty set" change runs are triggered by and plan from). See the PostgreSQL migration of the
-- same number for why this is not a cursor over change_journal.seq: SQLite has one writer at a
-- time, so its journal rows do appear in seq order, but both databases keep the same design.
--
-- mark: the seq of the resource's newest journal row (a second change to a resource bumps it);
-- marked_at: that row's time (the scheduler's debounce counts from the newest one). A run
-- removes a row only if its mark is still the one the run read (compare-and-delete).
CREATE TABLE sync_pending (
    resource_type TEXT NOT NULL CHECK (resource_type IN ('User', 'Group')),
    resource_id   TEXT NOT NULL,
    source_id     INTEGER NOT NULL,
    mark          INTEGER NOT NULL,
    marked_at     TEXT NOT NULL,
    PRIMARY KEY (resource_type, resource_id)
);

-- Every journal row marks its resource, in the journal row's transaction: a user's or group's
-- create, replace, patch, delete or adopt, and `member_deleted` on each group a deleted user or
-- group was taken out of.
CREATE TRIGGER change_journal_marks_pending AFTER INSERT ON change_journal
BEGIN
    INSERT INTO sync_pending (resource_type, resource_id, source_id, mark, marked_at)
    VALUES (NEW.resource_type, NEW.resource_id, NEW.source_id, NEW.seq, NEW.at)
    ON CONFLICT (resource_type, resource_id) DO UPDATE
        SET source_id = excluded.source_id, mark = excluded.mark, marked_at = excluded.marked_at;
END;

-- What the journal holds beyond the head the finished runs covered at upgrade time is pending
-- too, so that a change run right after the upgrade (`scimbridge sync`) misses nothing.
INSERT INTO sync_pending (resource_type, resource_id, source_id, mark, marked_at)
SELECT j.resource_type, j.resource_id, j.source_id, j.seq, j.at
FROM change_journal j
WHERE j.seq > (SELECT COALESCE(MAX(journal_head), 0) FROM sync_runs)
  AND j.seq = (SELECT MAX(k.seq) FROM change_journal k
               WHERE k.resource_type = j.resource_type AND k.resource_id = j.resource_id);
