-- Reversible masking tokens: the value a token replaced in a result, bound
-- to the principal and task it was issued to. A token resolves only for
-- them and only until it expires.
CREATE TABLE mask_tokens (
	token      TEXT PRIMARY KEY,
	class      TEXT NOT NULL,
	value      TEXT NOT NULL,
	task       TEXT NOT NULL DEFAULT '',
	principal  TEXT NOT NULL,
	created_ns INTEGER NOT NULL, -- Unix nanoseconds, UTC
	expires_ns INTEGER NOT NULL  -- Unix nanoseconds, UTC
) STRICT;

CREATE INDEX mask_tokens_expires ON mask_tokens (expires_ns);
