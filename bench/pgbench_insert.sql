-- PostgreSQL's ceiling for what POST /Users writes: one transaction inserting a users row (the
-- same columns and document shape, a time-ordered id like the server's UUIDv7) and its
-- change_journal row. Run by bench/bench.py with pgbench -M prepared; bench_doc and bench_id
-- come from pgbench_fill.sql.
BEGIN;
WITH v AS (SELECT bench_id() AS id),
     u AS (SELECT v.id, 'pgb-' || v.id || '@bench.example.com' AS name FROM v)
INSERT INTO users (id, source_id, user_name, user_name_lower, external_id, display_name, active, doc,
                   created_at, modified_at)
SELECT u.id, 1, u.name, lower(u.name), 'ext-' || u.name, 'Given Family' || :client_id::text, true,
       bench_doc(u.name, :client_id::text), now(), now()
FROM u
RETURNING id AS uid \gset
INSERT INTO change_journal (at, source_id, token_id, resource_type, resource_id, action, detail)
VALUES (now(), 1, NULL, 'User', :uid, 'create', NULL);
COMMIT;
