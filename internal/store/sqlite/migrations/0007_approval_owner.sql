-- An approval binds the caller's full identity (authentication method,
-- tenant and id), not only the principal id that two callers may share.
-- Rows from before have none, and match no new call.
ALTER TABLE approvals ADD COLUMN owner TEXT NOT NULL DEFAULT '';
DROP INDEX approvals_binding;
CREATE INDEX approvals_binding ON approvals (principal, owner, tool, args_digest, policy_version, task, state);
