{{/*
YAML → TOML for the ConfigMap. `include "scimbridge.toml" $map` renders a whole document.

A table is written as its plain keys first (`key = value`: strings, numbers, booleans, arrays,
inline tables), then its sub-tables (`[a.b]`), then its arrays of tables (`[[a.b]]`): TOML reads
every `key = value` after a header as part of that header's table, so the order matters. A list
whose items are all maps is an array of tables; any other list is an inline array. A key left
empty in YAML (null) is skipped, as TOML has no null. Map keys come out sorted (Go templates
range over maps in key order). checks: charts/scimbridge/tests/check_chart.py parses the output
with Python's tomllib and compares it with the values.
*/}}
{{- define "scimbridge.toml" -}}
{{- include "scimbridge.toml.table" (dict "table" . "path" list) -}}
{{- end -}}

{{/* One table's body: {"table": map, "path": [keys leading to it]}. */}}
{{- define "scimbridge.toml.table" -}}
{{- $path := .path -}}
{{- range $key, $value := .table -}}
{{- if not (or (kindIs "invalid" $value) (kindIs "map" $value) (include "scimbridge.toml.isTableArray" $value)) -}}
{{- printf "%s = %s\n" (include "scimbridge.toml.key" $key) (include "scimbridge.toml.value" $value) -}}
{{- end -}}
{{- end -}}
{{- range $key, $value := .table -}}
{{- if kindIs "map" $value -}}
{{- $sub := append $path $key -}}
{{- $body := include "scimbridge.toml.table" (dict "table" $value "path" $sub) -}}
{{- /* A table holding only sub-tables needs no header of its own ([a.b] defines a). */ -}}
{{- if not (hasPrefix "\n" $body) -}}
{{- printf "\n[%s]\n" (include "scimbridge.toml.path" $sub) -}}
{{- end -}}
{{- $body -}}
{{- end -}}
{{- end -}}
{{- range $key, $value := .table -}}
{{- if include "scimbridge.toml.isTableArray" $value -}}
{{- $sub := append $path $key -}}
{{- range $item := $value -}}
{{- printf "\n[[%s]]\n" (include "scimbridge.toml.path" $sub) -}}
{{- include "scimbridge.toml.table" (dict "table" $item "path" $sub) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "true" for a non-empty list whose items are all maps (an array of tables). */}}
{{- define "scimbridge.toml.isTableArray" -}}
{{- if and (kindIs "slice" .) (gt (len .) 0) -}}
{{- $tables := true -}}
{{- range . -}}{{- if not (kindIs "map" .) -}}{{- $tables = false -}}{{- end -}}{{- end -}}
{{- if $tables -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* An inline value: string, number, boolean, array or inline table. */}}
{{- define "scimbridge.toml.value" -}}
{{- if kindIs "string" . -}}
{{- include "scimbridge.toml.string" . -}}
{{- else if kindIs "bool" . -}}
{{- ternary "true" "false" . -}}
{{- else if kindIs "float64" . -}}
{{- /* YAML numbers arrive as floats: whole ones are TOML integers (u64 settings need them). */ -}}
{{- if and (eq (floor .) .) (lt . 1e15) (gt . -1e15) -}}
{{- printf "%d" (int64 .) -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- else if or (kindIs "int" .) (kindIs "int64" .) (kindIs "int32" .) (kindIs "uint64" .) -}}
{{- printf "%d" . -}}
{{- else if eq (typeOf .) "json.Number" -}}
{{- toString . -}}
{{- else if kindIs "slice" . -}}
{{- $items := list -}}
{{- range . -}}
{{- if kindIs "invalid" . -}}
{{- fail "config: an array holds an empty (null) item; TOML has no null" -}}
{{- end -}}
{{- $items = append $items (include "scimbridge.toml.value" .) -}}
{{- end -}}
{{- printf "[%s]" (join ", " $items) -}}
{{- else if kindIs "map" . -}}
{{- $pairs := list -}}
{{- range $k, $v := . -}}
{{- if not (kindIs "invalid" $v) -}}
{{- $pairs = append $pairs (printf "%s = %s" (include "scimbridge.toml.key" $k) (include "scimbridge.toml.value" $v)) -}}
{{- end -}}
{{- end -}}
{{- if $pairs -}}{{- printf "{ %s }" (join ", " $pairs) -}}{{- else -}}{}{{- end -}}
{{- else -}}
{{- fail (printf "config: cannot write a %s value as TOML" (typeOf .)) -}}
{{- end -}}
{{- end -}}

{{/*
A TOML basic string. JSON's string escapes (\" \\ \n \t \uXXXX …) are all valid in TOML; Go's
JSON also escapes < > & as \u003c … for HTML, which is turned back for readability unless the
string holds a backslash (then a literal "\u003c" in it could be mangled). DEL is escaped
because TOML forbids it raw.
*/}}
{{- define "scimbridge.toml.string" -}}
{{- $s := toJson . -}}
{{- if not (contains "\\" .) -}}
{{- $s = $s | replace "\\u003c" "<" | replace "\\u003e" ">" | replace "\\u0026" "&" -}}
{{- end -}}
{{- $s | replace "\u007f" "\\u007f" -}}
{{- end -}}

{{/* A key: bare when it can be, else quoted. */}}
{{- define "scimbridge.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{- . -}}{{- else -}}{{- include "scimbridge.toml.string" . -}}{{- end -}}
{{- end -}}

{{/* A dotted table name from a list of keys. */}}
{{- define "scimbridge.toml.path" -}}
{{- $keys := list -}}
{{- range . -}}{{- $keys = append $keys (include "scimbridge.toml.key" .) -}}{{- end -}}
{{- join "." $keys -}}
{{- end -}}
