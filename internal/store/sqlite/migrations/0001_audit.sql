-- The audit log: one row per record, every field in its own column, so that
-- the record Verify hashes is exactly the one queries return. JSON-valued
-- fields are kept as text, byte for byte.
CREATE TABLE audit_records (
	seq            INTEGER PRIMARY KEY,
	v              INTEGER NOT NULL,
	time_ns        INTEGER NOT NULL, -- Unix nanoseconds, UTC
	kind           TEXT NOT NULL,
	request_id     TEXT NOT NULL DEFAULT '',
	decision_id    TEXT NOT NULL DEFAULT '',
	session        TEXT NOT NULL DEFAULT '',
	task           TEXT NOT NULL DEFAULT '',
	principal      TEXT NOT NULL DEFAULT '',
	method         TEXT NOT NULL DEFAULT '',
	tool           TEXT NOT NULL DEFAULT '',
	args           TEXT,             -- JSON; NULL when absent
	decision       TEXT NOT NULL DEFAULT '',
	rules          TEXT,             -- JSON array of strings
	reason         TEXT NOT NULL DEFAULT '',
	policy_version TEXT NOT NULL DEFAULT '',
	approval_id    TEXT NOT NULL DEFAULT '',
	credential_id  TEXT NOT NULL DEFAULT '',
	upstream       TEXT NOT NULL DEFAULT '',
	latency_us     INTEGER NOT NULL DEFAULT 0,
	status         TEXT NOT NULL DEFAULT '',
	masked         TEXT,             -- JSON array of strings
	labels         TEXT,             -- JSON array of strings
	shadow         INTEGER NOT NULL DEFAULT 0,
	extra          TEXT,             -- JSON object
	checkpoint     TEXT,             -- JSON object, kind "checkpoint" only
	prev           TEXT NOT NULL,
	hash           TEXT NOT NULL
) STRICT;

CREATE INDEX audit_records_principal ON audit_records (principal, seq);
CREATE INDEX audit_records_tool ON audit_records (tool, seq);
CREATE INDEX audit_records_time ON audit_records (time_ns);

-- Append-only: Warden never changes or removes a record. (Someone with the
-- file can drop these triggers; the hash chain is what detects that.)
CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN
	SELECT RAISE(ABORT, 'audit records are append-only');
END;
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN
	SELECT RAISE(ABORT, 'audit records are append-only');
END;

-- Public keys that sign audit checkpoints, by key id.
CREATE TABLE audit_keys (
	key_id     TEXT PRIMARY KEY,
	public_key BLOB NOT NULL,
	created_ns INTEGER NOT NULL
) STRICT;
