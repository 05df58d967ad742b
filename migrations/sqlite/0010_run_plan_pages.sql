-- Issue 16: the plan of a large dry run (or of a run the delete guard refused), in pages, so
-- that neither the run record nor the process ever holds it whole. A plan of at most 5,000
-- actions stays inline in the run's report (`sync_runs.report -> plan`); a larger one is here,
-- and the report says how many pages it has (`plan_pages`). See the PostgreSQL migration of
-- the same number for why `actions` is text.
--
-- actions: one page of at most 1,000 described actions, a JSON array, in plan order. (A rowid
-- table: a page is hundreds of kilobytes, far past what WITHOUT ROWID suits.)
--
-- A run's pages go with its record: retention deletes them first, in its small batches; the
-- cascade is only there so that no page outlives its run.
CREATE TABLE run_plan_pages (
    run_id   TEXT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    page     INTEGER NOT NULL CHECK (page >= 0),
    actions  TEXT NOT NULL,
    PRIMARY KEY (run_id, page)
);
