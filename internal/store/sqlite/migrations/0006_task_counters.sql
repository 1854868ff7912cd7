-- Running totals kept per task, such as how many values of a data class
-- its results have released (masking.max_per_task).
CREATE TABLE task_counters (
	task  TEXT NOT NULL,
	name  TEXT NOT NULL,
	value INTEGER NOT NULL,
	PRIMARY KEY (task, name)
) STRICT;
