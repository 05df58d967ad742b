-- Permission sets and account / application assignments (issue: assignments from rules).
--
-- Permission sets and applications the bridge knows: the permission sets it manages (declared in
-- [[permission_sets]]: what it last pushed, and whether a change still has to be provisioned to
-- the accounts) and the name -> ARN of those the rules only reference (a cache, verified on full
-- runs); applications whose assignment configuration it set.
CREATE TABLE aws_access_objects (
    kind            TEXT NOT NULL CHECK (kind IN ('permission_set', 'application')),
    name            TEXT NOT NULL,
    arn             TEXT NOT NULL,
    managed         BOOLEAN NOT NULL,
    -- JSON text: the shape last pushed (managed permission sets; an application's settings)
    pushed          TEXT NOT NULL,
    needs_provision BOOLEAN NOT NULL,
    PRIMARY KEY (kind, name)
);

-- Assignments, keyed by what AWS keys them by: the target (account id or application ARN), the
-- permission set ARN ('' for applications) and the AWS principal (so a principal renamed in
-- place keeps its rows). `state`: 'creating' / 'deleting' are written before the request and
-- carry AWS's request id once it answers (a row left so by a dead process is looked up by the
-- next run); 'created' rows are the bridge's own and the only ones it ever deletes; 'foreign'
-- rows existed before a rule wanted them and are never deleted.
CREATE TABLE aws_assignments (
    kind               TEXT NOT NULL CHECK (kind IN ('account', 'application')),
    target             TEXT NOT NULL,
    permission_set_arn TEXT NOT NULL,
    principal_type     TEXT NOT NULL CHECK (principal_type IN ('USER', 'GROUP')),
    principal_id       TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('creating', 'created', 'foreign', 'deleting')),
    request_id         TEXT,
    PRIMARY KEY (kind, target, permission_set_arn, principal_type, principal_id)
);
