// Package template renders Go text/template text from Starlark values.
//
//	template.render(text, data)   render text with data (dicts, lists, structs, scalars); a missing key is an error
//	template.file(path, data)     render the file at path, relative to the calling .star file (embedded fallback as for load)
//
// Data converts as: dict → map (string keys), list/tuple → slice, struct →
// map of its fields, None → nil. A secret anywhere in data makes the result a
// secret. Functions available in templates: quote (POSIX shell quoting),
// json, yaml, indent N, nindent N, join SEP, lower, upper, trim, default V.
package template
