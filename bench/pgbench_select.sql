-- PostgreSQL's ceiling for GET /Users?filter=userName eq "…": an indexed case-insensitive point
-- select on the lowered userName, returning what the server reads. pgbench -D users=N.
\set n random(0, :users - 1)
SELECT id, doc, version, created_at, modified_at FROM users
WHERE user_name_lower = lower('User' || lpad(:n::text, 6, '0') || '@bench.example.com');
