{{/*
The chart's name, cut to 63 characters (a DNS label).
*/}}
{{- define "cohort.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name. Cut to 40 characters, not 63: the longest derived
name is "<prefix>-scheduler-headless" and a StatefulSet's name must leave room for the
controller-revision-hash label (52 characters at most).
*/}}
{{- define "cohort.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"name-version" for the helm.sh/chart label.
*/}}
{{- define "cohort.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select one component's pods. Call with (dict "ctx" $ "component" "broker").
Every value is quoted: a release named "true", "on" or "123" must stay a string label.
*/}}
{{- define "cohort.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cohort.name" .ctx | quote }}
app.kubernetes.io/instance: {{ .ctx.Release.Name | quote }}
app.kubernetes.io/component: {{ .component | quote }}
{{- end }}

{{/*
Every label of one component's resources. Call with (dict "ctx" $ "component" "broker").
*/}}
{{- define "cohort.labels" -}}
helm.sh/chart: {{ include "cohort.chart" .ctx | quote }}
{{ include "cohort.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service | quote }}
app.kubernetes.io/part-of: cohort
{{- end }}

{{/*
Labels of a component's metrics Service: the ServiceMonitor selects on cohort/metrics
and names the scrape job after cohort/metrics-job (cohort-broker, ...), the job names
the alert rules expect. Call with (dict "ctx" $ "component" "broker").
*/}}
{{- define "cohort.metricsServiceLabels" -}}
cohort/metrics: "true"
cohort/metrics-job: {{ printf "cohort-%s" .component | quote }}
{{- end }}

{{/*
The container image. values.schema.json requires a string tag; toString still guards
a number that reaches here some other way (cohort:1.1, never cohort:%!s(float64=1.1)).
*/}}
{{- define "cohort.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}

{{/*
A gRPC probe on a port with the timings of values (startup, readiness or liveness).
Call with (dict "port" 7070 "timings" $b.probes.readiness).
*/}}
{{- define "cohort.grpcProbe" -}}
grpc:
  port: {{ int .port }}
{{- with .timings }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
prometheus.io annotations of a pod. Call with (dict "ctx" $ "port" 9470).
*/}}
{{- define "cohort.scrapeAnnotations" -}}
{{- if .ctx.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/*
The broker's in-cluster gRPC address, HOST:PORT, for the scheduler and executors.
*/}}
{{- define "cohort.brokerAddress" -}}
{{- printf "%s-broker:%d" (include "cohort.fullname" .) (int .Values.broker.service.port) }}
{{- end }}

{{/*
A volumeClaimTemplate, or nothing when persistence is off. Call with the component's
persistence values.
*/}}
{{- define "cohort.volumeClaimTemplate" -}}
- metadata:
    name: data
  spec:
    accessModes: {{- toYaml .accessModes | nindent 6 }}
    {{- if .storageClass }}
    storageClassName: {{ .storageClass | quote }}
    {{- end }}
    resources:
      requests:
        storage: {{ .size | quote }}
{{- end }}
