// Package jsonstr is the string layer shared by Warden's strict JSON
// parsers: the grammar of a JSON string (RFC 8259, in UTF-8), its
// unescaping as encoding/json unescapes it, and the case folding that finds
// keys equal but for case. Each parser keeps its own values, objects, arrays
// and numbers, whose outputs and errors differ.
package jsonstr
