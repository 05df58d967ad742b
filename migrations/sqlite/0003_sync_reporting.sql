-- What the admin API reports: the change-journal head each finished run covered (changes after
-- it are "pending"), and the audit log read by time.
ALTER TABLE sync_runs ADD COLUMN journal_head BIGINT;
CREATE INDEX audit_log_at_idx ON audit_log (at);
