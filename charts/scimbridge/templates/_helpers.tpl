{{/* Names and labels, as `helm create` makes them. */}}

{{- define "scimbridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "scimbridge.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "scimbridge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "scimbridge.labels" -}}
helm.sh/chart: {{ include "scimbridge.chart" . }}
{{ include "scimbridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "scimbridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scimbridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "scimbridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "scimbridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Database mode: "postgres" when a URL or an existing Secret is given, else "sqlite". */}}
{{- define "scimbridge.databaseMode" -}}
{{- if or .Values.database.url .Values.database.existingSecret -}}postgres{{- else -}}sqlite{{- end -}}
{{- end }}

{{/* The Secret and key holding DATABASE_URL in postgres mode. */}}
{{- define "scimbridge.databaseSecretName" -}}
{{- .Values.database.existingSecret | default (printf "%s-database" (include "scimbridge.fullname" .)) }}
{{- end }}

{{- define "scimbridge.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}url{{ end }}
{{- end }}

{{/* The Secret of source tokens, or "" when no tokens are configured. */}}
{{- define "scimbridge.tokensSecretName" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else if .Values.auth.tokens }}
{{- printf "%s-tokens" (include "scimbridge.fullname" .) }}
{{- end }}
{{- end }}

{{/* Paths inside the container: the server's side of the contract (docs/deploy.md). */}}
{{- define "scimbridge.configPath" -}}/etc/scimbridge/scimbridge.toml{{- end }}
{{- define "scimbridge.tokensDir" -}}/etc/scimbridge/tokens{{- end }}
{{- define "scimbridge.dataDir" -}}/var/lib/scimbridge{{- end }}

{{/*
The configuration the ConfigMap renders: .Values.config plus what the chart owns
(`auth.tokens_dir` when tokens are mounted).
*/}}
{{- define "scimbridge.effectiveConfig" -}}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- if include "scimbridge.tokensSecretName" . }}
{{- $auth := deepCopy (get $config "auth" | default dict) }}
{{- $_ := set $auth "tokens_dir" (include "scimbridge.tokensDir" .) }}
{{- $_ := set $config "auth" $auth }}
{{- end }}
{{- toJson $config }}
{{- end }}
