{{/*
Rules on combinations of values, each failing the render with a message that names the values
to change. values.schema.json states most of them too, and Helm checks the schema first; these
keep holding where the schema is skipped (`--skip-schema-validation`, tools that ignore it), and
charts/scimbridge/tests/check_chart.py checks both layers.
*/}}
{{- define "scimbridge.validate" -}}
{{- $v := .Values -}}
{{- if not (regexMatch "^[1-9][0-9]*$" (toString $v.replicaCount)) -}}
{{- fail (printf "replicaCount must be a whole number of at least 1, not %q." (toString $v.replicaCount)) -}}
{{- end -}}
{{- if and (eq (include "scimbridge.databaseMode" .) "sqlite") (gt (int $v.replicaCount) 1) -}}
{{- fail (printf "replicaCount is %v, but no database is configured, so scimbridge keeps its data in SQLite on one volume, which allows exactly one replica (strategy Recreate). Set database.url or database.existingSecret (PostgreSQL) to run more replicas, or set replicaCount: 1." $v.replicaCount) -}}
{{- end -}}
{{- if and $v.database.url $v.database.existingSecret -}}
{{- fail "database.url and database.existingSecret are both set: choose one." -}}
{{- end -}}
{{- if and $v.database.url (not (regexMatch "^postgres(ql)?://" $v.database.url)) -}}
{{- fail "database.url must be a PostgreSQL URL (postgres://…). For SQLite leave database.url and database.existingSecret empty: the chart then keeps the file on a volume." -}}
{{- end -}}
{{- if and $v.auth.tokens $v.auth.existingSecret -}}
{{- fail "auth.tokens and auth.existingSecret are both set: choose one." -}}
{{- end -}}
{{- $config := $v.config | default dict -}}
{{- if hasKey ($config.database | default dict) "url" -}}
{{- fail "config.database.url: set database.url (or database.existingSecret) instead; the chart passes the URL from a Secret as DATABASE_URL." -}}
{{- end -}}
{{- if hasKey ($config.server | default dict) "listen" -}}
{{- fail "config.server.listen: the chart sets the listen address (0.0.0.0:8080, the container port); remove it." -}}
{{- end -}}
{{- if hasKey ($config.server | default dict) "metrics_listen" -}}
{{- fail "config.server.metrics_listen: the chart sets it from metrics.port; set that instead." -}}
{{- end -}}
{{- if eq (int $v.metrics.port) 8080 -}}
{{- fail "metrics.port must differ from 8080, the SCIM port." -}}
{{- end -}}
{{- if hasKey ($config.auth | default dict) "tokens_dir" -}}
{{- fail "config.auth.tokens_dir: the chart sets it when auth.tokens or auth.existingSecret is set; remove it." -}}
{{- end -}}
{{- if and $v.ingress.enabled (not $v.ingress.hosts) -}}
{{- fail "ingress.enabled needs at least one entry in ingress.hosts." -}}
{{- end -}}
{{- end -}}
