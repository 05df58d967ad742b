-- Fills the pgbench ceiling database (schema from migrations/postgres/0001_scim_core.sql) with
-- the same users the benchmark loads into scimbridge: one source, :users users with the same
-- userNames and document shape, one change_journal row each. psql -v users=N.

-- The user document bench.py and scim.lua send (pgbench would take the colons of the URNs for
-- variables, so the insert script calls this; a one-expression SQL function is inlined).
CREATE FUNCTION bench_doc(name text, n text) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object(
    'schemas', jsonb_build_array('urn:ietf:params:scim:schemas:core:2.0:User',
                                 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'),
    'userName', name, 'externalId', 'ext-' || name,
    'name', jsonb_build_object('givenName', 'Given', 'familyName', 'Family' || n,
                               'formatted', 'Given Family' || n),
    'displayName', 'Given Family' || n, 'title', 'Engineer', 'active', true,
    'emails', jsonb_build_array(jsonb_build_object('value', name, 'type', 'work', 'primary', true)),
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
      jsonb_build_object('employeeNumber', n, 'department', 'Engineering', 'costCenter', 'CC-42'))
$$;

-- A time-ordered id, like the server's UUIDv7.
CREATE FUNCTION bench_id() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
          || substr(md5(random()::text), 1, 20))::uuid
$$;

INSERT INTO sources (name) VALUES ('bench');
INSERT INTO users (id, source_id, user_name, user_name_lower, external_id, display_name, active, doc,
                   created_at, modified_at)
SELECT bench_id(), 1, name, lower(name), 'ext-' || name, 'Given Family' || n, true,
       bench_doc(name, n::text), now(), now()
FROM (SELECT n, 'user' || lpad(n::text, 6, '0') || '@bench.example.com' AS name
      FROM generate_series(0, :users - 1) AS n) AS s;
INSERT INTO change_journal (at, source_id, resource_type, resource_id, action)
SELECT created_at, source_id, 'User', id, 'create' FROM users ORDER BY seq;
VACUUM ANALYZE;
