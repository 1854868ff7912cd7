// Package postgres holds Warden's end-to-end tests of database least
// privilege: the example read-only policy (examples/postgres) deciding the
// SQL corpora, Warden in front of the built-in PostgreSQL connector and in
// front of a third-party database server, defense in depth with the SQL
// rules switched off, task scope through row-level security, and the cost
// of the whole path against a direct driver call. The tests start a real
// PostgreSQL (internal/testpg) and judge by the database's state, never by
// what a client was told.
package postgres
