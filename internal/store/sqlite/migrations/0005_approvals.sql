-- Approval requests: one row per escalated call, bound to the exact call
-- (principal, task, tool, argument digest, policy version). Times are Unix
-- nanoseconds, UTC; 0 or NULL where the event has not happened.
CREATE TABLE approvals (
	id             TEXT PRIMARY KEY,
	principal      TEXT NOT NULL,
	task           TEXT NOT NULL DEFAULT '',
	tool           TEXT NOT NULL,
	upstream       TEXT NOT NULL DEFAULT '',
	args           BLOB,                 -- redacted arguments (JSON); NULL when none
	args_digest    TEXT NOT NULL,
	policy_version TEXT NOT NULL,
	rules          TEXT,                 -- JSON array; NULL when none
	reason         TEXT NOT NULL DEFAULT '',
	approvers      TEXT,                 -- JSON array; NULL when none
	state          TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired', 'used')),
	created_ns     INTEGER NOT NULL,
	expires_ns     INTEGER NOT NULL,
	decided_ns     INTEGER,
	decided_by     TEXT NOT NULL DEFAULT '',
	comment        TEXT NOT NULL DEFAULT '',
	used_ns        INTEGER
) STRICT;

-- The broker's lookups: the exact call in a given state.
CREATE INDEX approvals_binding ON approvals (principal, tool, args_digest, policy_version, task, state);
CREATE INDEX approvals_created ON approvals (created_ns);
