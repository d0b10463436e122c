{{/*
The chart's name, cut to 63 characters (a DNS label).
*/}}
{{- define "cohort.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name. Cut to 40 characters, not 63: the longest derived
name is "<prefix>-scheduler-headless" and a StatefulSet's name must leave room for the
controller-revision-hash label (52 characters at most). Helm allows a release name that
starts with a digit ("123"), but a Service name must start with a letter (DNS-1035):
such a prefix gets a "c" in front.
*/}}
{{- define "cohort.fullname" -}}
{{- $full := "" }}
{{- if .Values.fullnameOverride }}
{{- $full = .Values.fullnameOverride }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- $full = .Release.Name }}
{{- else }}
{{- $full = printf "%s-%s" .Release.Name $name }}
{{- end }}
{{- end }}
{{- if regexMatch "^[0-9]" $full }}
{{- $full = printf "c%s" $full }}
{{- end }}
{{- $full | trunc 40 | trimSuffix "-" }}
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
Call with (dict "port" 7070 "timings" $b.probes.readiness "tls" .Values.tls.enabled).
*/}}
{{- define "cohort.grpcProbe" -}}
{{- if .tls -}}
# kubelet's gRPC probe speaks no TLS: with TLS on, the port is probed by TCP.
tcpSocket:
  port: {{ int .port }}
{{- else -}}
grpc:
  port: {{ int .port }}
{{- end }}
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
The broker's in-cluster gRPC address, HOST:PORT, for the scheduler, executors, console
and helm test. A replicated group's is the headless Service: its name resolves to every
replica (not-ready ones included), of which only the leader listens, so a client's
channel connects to the leader and, when it goes, to the next one (README, "A replicated
broker group").
*/}}
{{- define "cohort.brokerAddress" -}}
{{- if gt (int .Values.broker.replicas) 1 }}
{{- printf "%s-broker-headless:%d" (include "cohort.fullname" .) (int .Values.broker.service.port) }}
{{- else }}
{{- printf "%s-broker:%d" (include "cohort.fullname" .) (int .Values.broker.service.port) }}
{{- end }}
{{- end }}

{{/*
The replicas a replicated broker group starts with, for --replicas: ID=HOST:PORT of the
first broker.replication.initialReplicas StatefulSet pods (ordinal + 1 = its
--replica-pod-name id) by their DNS names under the headless Service, at the raft port.
It does not follow broker.replicas, so that scaling never changes the pods' arguments
(no rolling restart) and every group forms from the same configuration; the pods beyond
it join by themselves (cohort.brokerJoinArgs).
*/}}
{{- define "cohort.brokerPeers" -}}
{{- $name := printf "%s-broker" (include "cohort.fullname" .) }}
{{- $peers := list }}
{{- range $i := until (int .Values.broker.replication.initialReplicas) }}
{{- $peers = append $peers (printf "%d=%s-%d.%s-headless.%s.svc:%d" (add1 $i) $name $i $name $.Release.Namespace (int $.Values.broker.replication.raftPort)) }}
{{- end }}
{{- join "," $peers }}
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

{{/*
The flags that let a broker pod beyond the starting group join it by itself: its own raft
address (its pod name under the headless Service) and the replicas' health ports to ask
the leader through (the headless Service's name resolves to every replica).
*/}}
{{- define "cohort.brokerJoinArgs" -}}
{{- $headless := printf "%s-broker-headless.%s.svc" (include "cohort.fullname" .) .Release.Namespace }}
- --replica-address=$(POD_NAME).{{ $headless }}:{{ int .Values.broker.replication.raftPort }}
- --join-through={{ $headless }}:{{ int .Values.broker.replication.healthPort }}
{{- end }}

{{/*
Trust on the wire (README "Security"). The Secret holding tls.crt, tls.key and ca.crt:
tls.existingSecret, or the one cert-manager writes for the chart's Certificate.
*/}}
{{- define "cohort.tlsSecretName" -}}
{{- if .Values.tls.existingSecret }}{{ .Values.tls.existingSecret }}{{ else }}{{ include "cohort.fullname" . }}-tls{{ end }}
{{- end }}

{{/*
The ServiceAccount every Cohort pod runs as.
*/}}
{{- define "cohort.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ default (include "cohort.fullname" .) .Values.serviceAccount.name }}{{ else }}{{ default "default" .Values.serviceAccount.name }}{{ end }}
{{- end }}

{{/*
A server's security flags: TLS (mTLS with tls.requireClientCert) or an explicit
--insecure, since the pods listen on 0.0.0.0; the token file with auth on.
*/}}
{{- define "cohort.serverSecurityArgs" -}}
{{- if .Values.auth.enabled }}
{{- if not .Values.tls.enabled }}
{{- fail "auth.enabled needs tls.enabled: bearer tokens must not cross the network in plaintext" }}
{{- end }}
{{- end }}
{{- if .Values.tls.enabled }}
- --tls-cert=/etc/cohort/tls/tls.crt
- --tls-key=/etc/cohort/tls/tls.key
- --tls-reload-interval={{ .Values.tls.reloadInterval }}
{{- if .Values.tls.requireClientCert }}
- --tls-client-ca=/etc/cohort/tls/ca.crt
{{- end }}
{{- else }}
- --insecure
{{- end }}
{{- if .Values.auth.enabled }}
- --auth-tokens=/etc/cohort/auth/tokens
{{- end }}
{{- end }}

{{/*
Flags of a service that calls the broker. Call with (dict "ctx" $ "token" "scheduler-token").
*/}}
{{- define "cohort.brokerClientArgs" -}}
{{- if .ctx.Values.tls.enabled }}
- --broker-tls-ca=/etc/cohort/tls/ca.crt
{{- if .ctx.Values.tls.requireClientCert }}
- --broker-tls-cert=/etc/cohort/tls/tls.crt
- --broker-tls-key=/etc/cohort/tls/tls.key
{{- end }}
{{- end }}
{{- if .ctx.Values.auth.enabled }}
- --broker-token-file=/etc/cohort/auth/{{ .token }}
{{- end }}
{{- end }}

{{/*
volumeMounts and volumes of the TLS and token Secrets (nothing when both are off).
Secret volumes are updated in place by the kubelet; the services re-read them.
*/}}
{{/*
The Secret holding a replicated broker group's shared secret (--replica-secret-file):
broker.replication.secret.existingSecret, or the one the chart makes.
*/}}
{{- define "cohort.replicationSecretName" -}}
{{- .Values.broker.replication.secret.existingSecret | default (printf "%s-broker-replication" (include "cohort.fullname" .)) }}
{{- end }}

{{- define "cohort.securityVolumeMounts" -}}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/cohort/tls
  readOnly: true
{{- end }}
{{- if .Values.auth.enabled }}
- name: auth
  mountPath: /etc/cohort/auth
  readOnly: true
{{- end }}
{{- end }}

{{- define "cohort.securityVolumes" -}}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "cohort.tlsSecretName" . }}
{{- end }}
{{- if .Values.auth.enabled }}
- name: auth
  secret:
    secretName: {{ required "auth.existingSecret is required with auth.enabled" .Values.auth.existingSecret }}
{{- end }}
{{- end }}

{{/*
cohortctl's environment and mounts in the helm test pod (COHORT_TLS_*, COHORT_TOKEN_FILE).
*/}}
{{- define "cohort.testClientEnv" -}}
{{- if or .Values.tls.enabled .Values.auth.enabled }}
env:
  {{- if .Values.tls.enabled }}
  - name: COHORT_TLS_CA
    value: /etc/cohort/tls/ca.crt
  {{- if .Values.tls.requireClientCert }}
  - name: COHORT_TLS_CERT
    value: /etc/cohort/tls/tls.crt
  - name: COHORT_TLS_KEY
    value: /etc/cohort/tls/tls.key
  {{- end }}
  {{- end }}
  {{- if .Values.auth.enabled }}
  - name: COHORT_TOKEN_FILE
    value: /etc/cohort/auth/client-token
  {{- end }}
volumeMounts:
  {{- include "cohort.securityVolumeMounts" . | trim | nindent 2 }}
{{- end }}
{{- end }}
