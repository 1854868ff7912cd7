package sqlclass

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// statementInfo is what a statement type is and does, whatever it contains.
type statementInfo struct {
	kind    string
	effects []effect
	// note replaces the effects in the reason when there are none.
	note string
}

// statements maps parse-tree statement types to their kind and effects.
// Queries (SELECT, INSERT, UPDATE, DELETE, MERGE), COPY, EXPLAIN, SET and
// SHOW are judged by the walker instead. A type missing here is still
// classified, as not read-only, under a kind derived from its name.
var statements = map[string]statementInfo{
	"CreateStmt":                   {kind: "create_table", effects: []effect{changesSchema}},
	"CreateTableAsStmt":            {kind: "create_table_as", effects: []effect{changesSchema, writesData}},
	"AlterTableStmt":               {kind: "alter_table", effects: []effect{changesSchema}},
	"DropStmt":                     {kind: "drop", effects: []effect{changesSchema}},
	"TruncateStmt":                 {kind: "truncate", effects: []effect{writesData}},
	"RenameStmt":                   {kind: "rename", effects: []effect{changesSchema}},
	"CommentStmt":                  {kind: "comment", effects: []effect{changesSchema}},
	"SecLabelStmt":                 {kind: "security_label", effects: []effect{changesSchema}},
	"IndexStmt":                    {kind: "create_index", effects: []effect{changesSchema}},
	"ViewStmt":                     {kind: "create_view", effects: []effect{changesSchema}},
	"CreateSchemaStmt":             {kind: "create_schema", effects: []effect{changesSchema}},
	"CreateSeqStmt":                {kind: "create_sequence", effects: []effect{changesSchema}},
	"AlterSeqStmt":                 {kind: "alter_sequence", effects: []effect{changesSchema}},
	"CreateFunctionStmt":           {kind: "create_function", effects: []effect{changesSchema}},
	"AlterFunctionStmt":            {kind: "alter_function", effects: []effect{changesSchema}},
	"CreateTrigStmt":               {kind: "create_trigger", effects: []effect{changesSchema}},
	"CreateEventTrigStmt":          {kind: "create_event_trigger", effects: []effect{changesSchema}},
	"AlterEventTrigStmt":           {kind: "alter_event_trigger", effects: []effect{changesSchema}},
	"RuleStmt":                     {kind: "create_rule", effects: []effect{changesSchema}},
	"CreatePolicyStmt":             {kind: "create_policy", effects: []effect{changesSchema, changesPrivileges}},
	"AlterPolicyStmt":              {kind: "alter_policy", effects: []effect{changesSchema, changesPrivileges}},
	"GrantStmt":                    {kind: "grant", effects: []effect{changesPrivileges}},
	"GrantRoleStmt":                {kind: "grant_role", effects: []effect{changesPrivileges}},
	"AlterDefaultPrivilegesStmt":   {kind: "alter_default_privileges", effects: []effect{changesPrivileges}},
	"CreateRoleStmt":               {kind: "create_role", effects: []effect{changesPrivileges}},
	"AlterRoleStmt":                {kind: "alter_role", effects: []effect{changesPrivileges}},
	"AlterRoleSetStmt":             {kind: "alter_role_set", effects: []effect{changesSettings}},
	"DropRoleStmt":                 {kind: "drop_role", effects: []effect{changesPrivileges}},
	"DropOwnedStmt":                {kind: "drop_owned", effects: []effect{changesSchema, changesPrivileges}},
	"ReassignOwnedStmt":            {kind: "reassign_owned", effects: []effect{changesPrivileges}},
	"AlterOwnerStmt":               {kind: "alter_owner", effects: []effect{changesPrivileges}},
	"AlterSystemStmt":              {kind: "alter_system", effects: []effect{changesSettings}},
	"AlterDatabaseSetStmt":         {kind: "alter_database_set", effects: []effect{changesSettings}},
	"AlterDatabaseStmt":            {kind: "alter_database", effects: []effect{changesSchema}},
	"AlterDatabaseRefreshCollStmt": {kind: "alter_database", effects: []effect{changesSchema}},
	"CreatedbStmt":                 {kind: "create_database", effects: []effect{changesSchema}},
	"DropdbStmt":                   {kind: "drop_database", effects: []effect{changesSchema}},
	"CreateTableSpaceStmt":         {kind: "create_tablespace", effects: []effect{changesSchema, touchesFiles}},
	"DropTableSpaceStmt":           {kind: "drop_tablespace", effects: []effect{changesSchema}},
	"AlterTableSpaceOptionsStmt":   {kind: "alter_tablespace", effects: []effect{changesSchema}},
	"AlterTableMoveAllStmt":        {kind: "alter_table", effects: []effect{changesSchema}},
	"CreateExtensionStmt":          {kind: "create_extension", effects: []effect{changesSchema, executesCode}},
	"AlterExtensionStmt":           {kind: "alter_extension", effects: []effect{changesSchema, executesCode}},
	"AlterExtensionContentsStmt":   {kind: "alter_extension", effects: []effect{changesSchema}},
	"CreateFdwStmt":                {kind: "create_foreign_data_wrapper", effects: []effect{changesSchema}},
	"AlterFdwStmt":                 {kind: "alter_foreign_data_wrapper", effects: []effect{changesSchema}},
	"CreateForeignServerStmt":      {kind: "create_server", effects: []effect{changesSchema, otherConnections}},
	"AlterForeignServerStmt":       {kind: "alter_server", effects: []effect{changesSchema, otherConnections}},
	"CreateForeignTableStmt":       {kind: "create_foreign_table", effects: []effect{changesSchema, otherConnections}},
	"CreateUserMappingStmt":        {kind: "create_user_mapping", effects: []effect{changesSchema, changesPrivileges}},
	"AlterUserMappingStmt":         {kind: "alter_user_mapping", effects: []effect{changesSchema, changesPrivileges}},
	"DropUserMappingStmt":          {kind: "drop_user_mapping", effects: []effect{changesSchema, changesPrivileges}},
	"ImportForeignSchemaStmt":      {kind: "import_foreign_schema", effects: []effect{changesSchema, otherConnections}},
	"CreateAmStmt":                 {kind: "create_access_method", effects: []effect{changesSchema}},
	"CreatePLangStmt":              {kind: "create_language", effects: []effect{changesSchema, executesCode}},
	"DefineStmt":                   {kind: "define", effects: []effect{changesSchema}},
	"CreateDomainStmt":             {kind: "create_domain", effects: []effect{changesSchema}},
	"AlterDomainStmt":              {kind: "alter_domain", effects: []effect{changesSchema}},
	"CreateOpClassStmt":            {kind: "create_operator_class", effects: []effect{changesSchema}},
	"CreateOpFamilyStmt":           {kind: "create_operator_family", effects: []effect{changesSchema}},
	"AlterOpFamilyStmt":            {kind: "alter_operator_family", effects: []effect{changesSchema}},
	"AlterOperatorStmt":            {kind: "alter_operator", effects: []effect{changesSchema}},
	"AlterTypeStmt":                {kind: "alter_type", effects: []effect{changesSchema}},
	"CompositeTypeStmt":            {kind: "create_type", effects: []effect{changesSchema}},
	"CreateEnumStmt":               {kind: "create_type", effects: []effect{changesSchema}},
	"CreateRangeStmt":              {kind: "create_type", effects: []effect{changesSchema}},
	"AlterEnumStmt":                {kind: "alter_type", effects: []effect{changesSchema}},
	"AlterCollationStmt":           {kind: "alter_collation", effects: []effect{changesSchema}},
	"CreateStatsStmt":              {kind: "create_statistics", effects: []effect{changesSchema}},
	"AlterStatsStmt":               {kind: "alter_statistics", effects: []effect{changesSchema}},
	"AlterObjectDependsStmt":       {kind: "alter_object_depends", effects: []effect{changesSchema}},
	"AlterObjectSchemaStmt":        {kind: "alter_object_schema", effects: []effect{changesSchema}},
	"CreateConversionStmt":         {kind: "create_conversion", effects: []effect{changesSchema}},
	"CreateCastStmt":               {kind: "create_cast", effects: []effect{changesSchema}},
	"CreateTransformStmt":          {kind: "create_transform", effects: []effect{changesSchema}},
	"AlterTSDictionaryStmt":        {kind: "alter_text_search_dictionary", effects: []effect{changesSchema}},
	"AlterTSConfigurationStmt":     {kind: "alter_text_search_configuration", effects: []effect{changesSchema}},
	"CreatePublicationStmt":        {kind: "create_publication", effects: []effect{changesSchema}},
	"AlterPublicationStmt":         {kind: "alter_publication", effects: []effect{changesSchema}},
	"CreateSubscriptionStmt":       {kind: "create_subscription", effects: []effect{changesSchema, otherConnections}},
	"AlterSubscriptionStmt":        {kind: "alter_subscription", effects: []effect{changesSchema, otherConnections}},
	"DropSubscriptionStmt":         {kind: "drop_subscription", effects: []effect{changesSchema, otherConnections}},
	"ClusterStmt":                  {kind: "cluster", effects: []effect{writesData}},
	"VacuumStmt":                   {kind: "vacuum", effects: []effect{writesData}},
	"ReindexStmt":                  {kind: "reindex", effects: []effect{writesData}},
	"RefreshMatViewStmt":           {kind: "refresh_materialized_view", effects: []effect{writesData}},
	"CheckPointStmt":               {kind: "checkpoint", effects: []effect{changesSettings}},
	"DiscardStmt":                  {kind: "discard", effects: []effect{changesSettings}},
	"LockStmt":                     {kind: "lock", effects: []effect{locks}},
	"ConstraintsSetStmt":           {kind: "set_constraints", effects: []effect{controlsTransaction}},
	"TransactionStmt":              {kind: "transaction", effects: []effect{controlsTransaction}},
	"NotifyStmt":                   {kind: "notify", effects: []effect{writesData}},
	"ListenStmt":                   {kind: "listen", note: "changes session state"},
	"UnlistenStmt":                 {kind: "unlisten", note: "changes session state"},
	"LoadStmt":                     {kind: "load", effects: []effect{executesCode, touchesFiles}},
	"DoStmt":                       {kind: "do", effects: []effect{executesCode}},
	"CallStmt":                     {kind: "call", effects: []effect{executesCode}},
	"PrepareStmt":                  {kind: "prepare", effects: []effect{executesCode}},
	"ExecuteStmt":                  {kind: "execute", effects: []effect{executesCode}},
	"DeallocateStmt":               {kind: "deallocate", note: "changes session state"},
	"DeclareCursorStmt":            {kind: "declare", note: "opens a cursor, which outlives the statement"},
	"ClosePortalStmt":              {kind: "close", note: "changes session state"},
	"FetchStmt":                    {kind: "fetch", note: "reads a cursor the text cannot show"},
}

// statementKind refines a statement's kind where one type covers several
// commands.
func statementKind(stmt any, info statementInfo) string {
	switch s := stmt.(type) {
	case *pg_query.VacuumStmt:
		if !s.IsVacuumcmd {
			return "analyze"
		}
	case *pg_query.GrantStmt:
		if !s.IsGrant {
			return "revoke"
		}
	case *pg_query.GrantRoleStmt:
		if !s.IsGrant {
			return "revoke_role"
		}
	case *pg_query.CreateTableAsStmt:
		if s.Objtype == pg_query.ObjectType_OBJECT_MATVIEW {
			return "create_materialized_view"
		}
	}
	return info.kind
}

// snakeKind derives a kind for a statement type the table does not know:
// "AlterFooStmt" becomes "alter_foo".
func snakeKind(typeName string) string {
	name := strings.TrimSuffix(typeName, "Stmt")
	var b strings.Builder
	for i, r := range name {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// label is how reasons name a kind: "create_table" becomes "CREATE TABLE".
func label(kind string) string {
	return strings.ToUpper(strings.ReplaceAll(kind, "_", " "))
}
