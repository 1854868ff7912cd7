-- Tool pins: the approved definition of each upstream tool and, while the
-- tool is quarantined, the listed definition waiting for an operator.
-- Definitions are kept field by field; schemas are the JSON bytes as the
-- upstream listed them, so a stored definition hashes to its digest.
CREATE TABLE tool_pins (
	upstream              TEXT NOT NULL,
	name                  TEXT NOT NULL,
	state                 TEXT NOT NULL CHECK (state IN ('approved', 'quarantined')),
	digest                TEXT NOT NULL DEFAULT '', -- '' while never approved
	title                 TEXT NOT NULL DEFAULT '',
	description           TEXT NOT NULL DEFAULT '',
	input_schema          BLOB,                     -- NULL when absent
	output_schema         BLOB,
	annotations           BLOB,
	first_seen_ns         INTEGER,                  -- Unix nanoseconds, UTC
	approved_ns           INTEGER,                  -- NULL while never approved
	pending_digest        TEXT NOT NULL DEFAULT '', -- '' when nothing is pending
	pending_title         TEXT NOT NULL DEFAULT '',
	pending_description   TEXT NOT NULL DEFAULT '',
	pending_input_schema  BLOB,
	pending_output_schema BLOB,
	pending_annotations   BLOB,
	findings              TEXT,                     -- JSON array; NULL when none
	PRIMARY KEY (upstream, name)
) STRICT;
