package policy

import (
	"fmt"
	"reflect"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// varKind names one of the structured condition variables.
type varKind uint8

const (
	varPrincipal varKind = iota
	varTool
	varTask
	varRequest
	varResource
	varPrompt
)

var varNames = [...]string{varPrincipal: "principal", varTool: "tool", varTask: "task", varRequest: "request", varResource: "resource", varPrompt: "prompt"}

// inputVar presents one structured variable of an Input to CEL as a map
// from field name to value, reading the Input's fields directly instead of
// building a Go map for each decision.
type inputVar struct {
	in   *Input
	kind varKind
}

var (
	_ traits.Mapper = (*inputVar)(nil)
)

// field returns the native value of a field.
func (v *inputVar) field(name string) (any, bool) {
	in := v.in
	switch v.kind {
	case varPrincipal:
		switch name {
		case "id":
			return in.Principal.ID, true
		case "roles":
			return nonNil(in.Principal.Roles), true
		case "tenant":
			return in.Principal.Tenant, true
		case "clearance":
			return in.Principal.Clearance, true
		case "claims":
			return nonNilMap(in.Principal.Claims), true
		}
	case varTool:
		switch name {
		case "name":
			if in.ToolInfo.Name != "" {
				return in.ToolInfo.Name, true
			}
			return in.Tool, true
		case "server":
			return in.ToolInfo.Server, true
		case "risk":
			return in.ToolInfo.Risk, true
		case "labels":
			return nonNil(in.ToolInfo.Labels), true
		case "annotations":
			return nonNilMap(in.ToolInfo.Annotations), true
		}
	case varTask:
		switch name {
		case "id":
			return in.Task.ID, true
		case "scope":
			return nonNilMap(in.Task.Scope), true
		case "labels":
			return nonNil(in.Task.Labels), true
		case "counters":
			if in.Task.Counters == nil {
				return map[string]int64{}, true
			}
			return in.Task.Counters, true
		}
	case varRequest:
		switch name {
		case "method":
			return in.Method, true
		case "time":
			return in.Request.Time, true
		case "transport":
			return in.Request.Transport, true
		}
	case varResource:
		if name == "uri" {
			return in.Resource, true
		}
	case varPrompt:
		if name == "name" {
			return in.Prompt, true
		}
	}
	return nil, false
}

// asMap builds the whole variable as a Go map, for the rare operations
// (equality, iteration, conversion) that need it.
func (v *inputVar) asMap() map[string]any {
	fields := variableFields[varNames[v.kind]]
	m := make(map[string]any, len(fields))
	for _, f := range fields {
		m[f], _ = v.field(f)
	}
	return m
}

func (v *inputVar) mapper() traits.Mapper {
	return types.NewStringInterfaceMap(types.DefaultTypeAdapter, v.asMap())
}

// Find implements traits.Mapper.
func (v *inputVar) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(key), false
	}
	f, ok := v.field(string(k))
	if !ok {
		return nil, false
	}
	return types.DefaultTypeAdapter.NativeToValue(f), true
}

// Get implements traits.Indexer.
func (v *inputVar) Get(key ref.Val) ref.Val {
	if val, ok := v.Find(key); ok {
		return val
	} else if val != nil {
		return val
	}
	return types.NewErr("no such key: %v", key)
}

// Contains implements traits.Container.
func (v *inputVar) Contains(key ref.Val) ref.Val {
	val, ok := v.Find(key)
	if !ok && val != nil {
		return val
	}
	return types.Bool(ok)
}

// Iterator implements traits.Iterable.
func (v *inputVar) Iterator() traits.Iterator { return v.mapper().Iterator() }

// Size implements traits.Sizer.
func (v *inputVar) Size() ref.Val { return types.Int(len(variableFields[varNames[v.kind]])) }

// ConvertToNative implements ref.Val.
func (v *inputVar) ConvertToNative(typeDesc reflect.Type) (any, error) {
	return v.mapper().ConvertToNative(typeDesc)
}

// ConvertToType implements ref.Val.
func (v *inputVar) ConvertToType(typeVal ref.Type) ref.Val {
	switch typeVal {
	case types.MapType:
		return v
	case types.TypeType:
		return types.MapType
	}
	return types.NewErr("type conversion error from map to %s", typeVal)
}

// Equal implements ref.Val.
func (v *inputVar) Equal(other ref.Val) ref.Val { return v.mapper().Equal(other) }

// Type implements ref.Val.
func (v *inputVar) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (v *inputVar) Value() any { return v.asMap() }

func (v *inputVar) String() string { return fmt.Sprintf("%s%v", varNames[v.kind], v.asMap()) }
