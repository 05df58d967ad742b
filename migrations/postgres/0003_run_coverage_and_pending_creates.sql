-- What the admin API reports (the change-journal head each finished run covered: changes after
-- it are "pending"; the audit log read by time) and the creates in flight.
ALTER TABLE sync_runs ADD COLUMN journal_head BIGINT;
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- A create in flight: written before CreateUser / CreateGroup and removed once the principal is
-- recorded. A row left behind means the process died in between; the next run looks the name
-- up in AWS and records what it finds as created by the bridge, so the principal is neither
-- orphaned (the IdP may rename it meanwhile) nor created twice.
CREATE TABLE aws_pending_creates (
    kind        TEXT NOT NULL CHECK (kind IN ('User', 'Group')),
    resource_id UUID NOT NULL,
    name        TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, resource_id)
);
