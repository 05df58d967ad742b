-- PostgreSQL's ceiling for the very statement GET /Users?filter=userName eq "…" runs: the
-- point select of pgbench_select.sql plus what the server's statement adds — the source's
-- scope, the user's groups aggregated in a subquery, the page's order and limit. pgbench -D users=N.
\set n random(0, :users - 1)
SELECT r.id, r.doc, r.version, r.created_at, r.modified_at,
       (SELECT json_agg(json_build_array(g.id, g.display_name) ORDER BY g.seq)
          FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.member_id = r.id) AS rel
FROM users r
WHERE r.source_id = 1 AND r.user_name_lower = lower('User' || lpad(:n::text, 6, '0') || '@bench.example.com')
ORDER BY r.seq LIMIT 1;
