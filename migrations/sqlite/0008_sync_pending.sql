-- Issue 16: the SCIM resources changed and not yet covered by a successful real sync run (the
-- "dirty set" change runs are triggered by and plan from). See the PostgreSQL migration of the
-- same number for why this is not a cursor over change_journal.seq: SQLite has one writer at a
-- time, so its journal rows do appear in seq order, but both databases keep the same design.
--
-- mark: the seq of the resource's newest journal row (a second change to a resource bumps it);
-- first_mark: the seq of the resource's oldest journal row since it became pending (a change run
-- reads the resource's journal rows from there, to know what kind of change it was: a
-- membership change of a group, or a change of its nesting);
-- marked_at: that row's time (the scheduler's debounce counts from the newest one). A run
-- removes a row only if its mark is still the one the run read (compare-and-delete).
CREATE TABLE sync_pending (
    resource_type TEXT NOT NULL CHECK (resource_type IN ('User', 'Group')),
    resource_id   TEXT NOT NULL,
    source_id     INTEGER NOT NULL,
    mark          INTEGER NOT NULL,
    first_mark    INTEGER NOT NULL,
    marked_at     TEXT NOT NULL,
    PRIMARY KEY (resource_type, resource_id)
);

-- Every journal row marks its resource, in the journal row's transaction: a user's or group's
-- create, replace, patch, delete or adopt, and `member_deleted` on each group a deleted user or
-- group was taken out of.
CREATE TRIGGER change_journal_marks_pending AFTER INSERT ON change_journal
BEGIN
    INSERT INTO sync_pending (resource_type, resource_id, source_id, mark, first_mark, marked_at)
    VALUES (NEW.resource_type, NEW.resource_id, NEW.source_id, NEW.seq, NEW.seq, NEW.at)
    ON CONFLICT (resource_type, resource_id) DO UPDATE
        SET source_id = excluded.source_id, mark = excluded.mark,
            first_mark = MIN(sync_pending.first_mark, excluded.first_mark),
            marked_at = excluded.marked_at;
END;

-- What the journal holds beyond the head the finished runs covered at upgrade time is pending
-- too, so that a change run right after the upgrade (`scimbridge sync`) misses nothing.
INSERT INTO sync_pending (resource_type, resource_id, source_id, mark, first_mark, marked_at)
SELECT j.resource_type, j.resource_id, j.source_id, j.seq,
       (SELECT MIN(f.seq) FROM change_journal f
        WHERE f.resource_type = j.resource_type AND f.resource_id = j.resource_id
          AND f.seq > (SELECT COALESCE(MAX(journal_head), 0) FROM sync_runs)),
       j.at
FROM change_journal j
WHERE j.seq > (SELECT COALESCE(MAX(journal_head), 0) FROM sync_runs)
  AND j.seq = (SELECT MAX(k.seq) FROM change_journal k
               WHERE k.resource_type = j.resource_type AND k.resource_id = j.resource_id);
