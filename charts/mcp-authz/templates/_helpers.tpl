{{/* The chart's name. */}}
{{- define "mcp-authz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of the release's resources. */}}
{{- define "mcp-authz.fullname" -}}
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

{{/* Labels on every resource. */}}
{{- define "mcp-authz.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "mcp-authz.selectorLabels" . }}
app.kubernetes.io/part-of: mcp-authz
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels that select mcp-authz's pods. */}}
{{- define "mcp-authz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcp-authz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The labels that select the Envoy pods (mode envoy). */}}
{{- define "mcp-authz.envoySelectorLabels" -}}
app.kubernetes.io/name: {{ include "mcp-authz.name" . }}-envoy
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The image reference: by digest when one is given. */}}
{{- define "mcp-authz.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Service's cluster-local name. */}}
{{- define "mcp-authz.serviceHost" -}}
{{ include "mcp-authz.fullname" . }}.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}

{{/* Fails on a mode the chart does not know. */}}
{{- define "mcp-authz.mode" -}}
{{- if not (has .Values.mode (list "istio" "envoy" "none")) }}
{{- fail (printf "mode %q: want istio, envoy or none" .Values.mode) }}
{{- end }}
{{- .Values.mode }}
{{- end }}
