-- Issue 16: the SCIM resources changed and not yet covered by a successful real sync run (the
-- "dirty set" change runs are triggered by and plan from).
--
-- Why not a cursor over change_journal.seq: PostgreSQL takes a row's seq inside its
-- transaction, so a transaction holding seq 10 can commit after seq 11 is visible, and a
-- reader that moved its cursor to 11 skips 10 for good. A row here is instead written in the
-- same transaction as the journal row (by the trigger below, so no write path can forget it and
-- replicas of an older version mark too), and it is removed only by a run that read it, and only
-- if its mark is still the one that run read (compare-and-delete): a change committed while a
-- run ran, whatever its seq, stays pending for the next run.
--
-- mark: the seq of the resource's newest journal row (a second change to a resource bumps it);
-- first_mark: the seq of the resource's oldest journal row since it became pending (a change run
-- reads the resource's journal rows from there, to know what kind of change it was: a
-- membership change of a group, or a change of its nesting);
-- marked_at: that row's time (the scheduler's debounce counts from the newest one).
CREATE TABLE sync_pending (
    resource_type TEXT NOT NULL CHECK (resource_type IN ('User', 'Group')),
    resource_id   UUID NOT NULL,
    source_id     BIGINT NOT NULL,
    mark          BIGINT NOT NULL,
    first_mark    BIGINT NOT NULL,
    marked_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (resource_type, resource_id)
);

-- Every journal row marks its resource: a user's or group's create, replace, patch, delete or
-- adopt, and `member_deleted` on each group a deleted user or group was taken out of (its
-- memberships in the bridge's record must go, and a nested group's removal changes the users
-- its parents reach).
CREATE FUNCTION sync_pending_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sync_pending (resource_type, resource_id, source_id, mark, first_mark, marked_at)
    VALUES (NEW.resource_type, NEW.resource_id, NEW.source_id, NEW.seq, NEW.seq, NEW.at)
    ON CONFLICT (resource_type, resource_id) DO UPDATE
        SET source_id = EXCLUDED.source_id, mark = EXCLUDED.mark,
            first_mark = LEAST(sync_pending.first_mark, EXCLUDED.first_mark),
            marked_at = EXCLUDED.marked_at;
    RETURN NULL;
END
$$;

CREATE TRIGGER change_journal_marks_pending AFTER INSERT ON change_journal
    FOR EACH ROW EXECUTE FUNCTION sync_pending_mark();

-- What the journal holds beyond the head the finished runs covered at upgrade time is pending
-- too, so that a change run right after the upgrade (`scimbridge sync`) misses nothing. (The
-- serving scheduler's start-up run is a full run anyway, and covers what a head cursor may have
-- skipped before.)
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
