-- Task grants: what an application issues to bound one agent task. Only the
-- SHA-256 of a grant token's secret is kept. A derived grant names its
-- parent; every call through it is charged to the whole chain.
CREATE TABLE grants (
	id          TEXT PRIMARY KEY,
	principal   TEXT NOT NULL,
	tools       TEXT NOT NULL,             -- JSON array of names and globs
	scope       TEXT,                      -- JSON object of strings; NULL when empty
	budget      INTEGER NOT NULL,          -- most calls; 0 is unlimited
	rate        INTEGER NOT NULL,          -- calls per minute; 0 is unlimited
	expires_ns  INTEGER NOT NULL,          -- Unix nanoseconds, UTC
	created_ns  INTEGER NOT NULL,          -- Unix nanoseconds, UTC
	revoked_ns  INTEGER,                   -- Unix nanoseconds, UTC; NULL while not revoked
	parent      TEXT REFERENCES grants (id),
	depth       INTEGER NOT NULL,
	labels      TEXT,                      -- JSON array of strings; NULL when empty
	used        INTEGER NOT NULL DEFAULT 0,
	secret_hash TEXT NOT NULL,             -- "sha256:<hex>" of the token's secret
	rate_tat_ns INTEGER NOT NULL DEFAULT 0 -- rate limiter state (Unix ns); 0 before the first call
) STRICT;

CREATE INDEX grants_principal ON grants (principal);
CREATE INDEX grants_parent ON grants (parent);
