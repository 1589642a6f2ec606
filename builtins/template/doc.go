// Package template renders Go text/template text from Starlark values.
//
//	template.render(text, data)   render text with data (dicts, lists, structs, scalars); a missing key is an error
//	template.file(path, data, secret=False)  render the file at path, relative to the calling .star file (embedded fallback as for load)
//
// template.file reads only files of the workspace and the embedded ones (an
// absolute path or a ../ escape is refused unless --allow-read allows its
// directory); each read is journaled (a "read" effect of target local with
// the caller's position). The result is a secret when secret=True, when data
// holds a secret, or when the file on disk is not readable by others (mode
// without o+r: secret material). To render a file from elsewhere on the
// control plane, read it with local.read (journaled too) and use
// template.render.
//
// Data converts as: dict → map (string keys), list/tuple → slice, struct →
// map of its fields, None → nil. A secret anywhere in data makes the result a
// secret. Functions available in templates: quote (POSIX shell quoting),
// json, yaml, indent N, nindent N, join SEP, lower, upper, trim, default V.
package template
