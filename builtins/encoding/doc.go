// Package encoding provides the json and yaml modules.
//
//	json.encode(x)                           compact JSON, dict keys sorted; a secret inside makes the result a secret
//	json.encode_indent(x, prefix="", indent="\t")   indented JSON, same rules
//	json.decode(x, default=?)                parse JSON into dicts, lists, strings, numbers, bools and None
//	json.indent(str, prefix="", indent="\t") re-indent a JSON string
//	yaml.encode(x)                           block-style YAML, dict order kept; a secret inside makes the result a secret
//	yaml.decode(text)                        parse one YAML document (duplicate keys are an error)
//	yaml.decode_all(text)                    parse every document of a YAML stream into a list
//	yaml.set(text, path, value)              the document with value set at path (keys, indexes, "*" for all); a secret text stays a secret
//	sha256(text)                             hex SHA-256 of a string or bytes (not of a secret)
package encoding
