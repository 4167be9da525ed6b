{{/* The release's name prefix, at most 63 characters. */}}
{{- define "clerk-novu.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The services: values key, name (= binary, NATS user suffix) and ports. */}}
{{- define "clerk-novu.components" -}}
receiver: {name: receiver, opsPort: 9090, opsEnv: RECEIVER_OPS_ADDR, webPort: 8080, webEnv: RECEIVER_ADDR}
router: {name: router, opsPort: 8081, opsEnv: ROUTER_OPS_ADDR}
sink: {name: novu-sink, opsPort: 8082, opsEnv: SINK_OPS_ADDR}
{{- end -}}

{{- define "clerk-novu.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "clerk-novu.labels" -}}
{{ include "clerk-novu.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "clerk-novu.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Seconds between SIGTERM and SIGKILL: above the shutdown budget. */}}
{{- define "clerk-novu.grace" -}}
{{- $budget := add (int .Values.shutdownTimeoutSeconds) (int .Values.receiver.preStopSleepSeconds) -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add $budget 10 -}}
{{- else if le (int .Values.terminationGracePeriodSeconds) $budget -}}
{{- fail (printf "terminationGracePeriodSeconds %d must exceed shutdownTimeoutSeconds plus receiver.preStopSleepSeconds (%d), or in-flight work is killed" (int .Values.terminationGracePeriodSeconds) $budget) -}}
{{- else -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* GOMEMLIMIT: 90% of the memory limit, so the GC works harder before the kernel kills. */}}
{{- define "clerk-novu.goMemLimit" -}}
{{- $m := .limits.memory | toString -}}
{{- if hasSuffix "Gi" $m -}}
{{- printf "%dMiB" (div (mul (trimSuffix "Gi" $m | int) 1024 9) 10) -}}
{{- else -}}
{{- printf "%dMiB" (div (mul (trimSuffix "Mi" $m | int) 9) 10) -}}
{{- end -}}
{{- end -}}

{{/* Environment of a NATS client: URL, auth from an existing Secret, TLS, streams. Takes root, auth, inbox. */}}
{{- define "clerk-novu.natsEnv" -}}
{{- $v := .root.Values -}}
- name: NATS_URL
  value: {{ $v.nats.url | quote }}
{{- if .auth.credsKey }}
- name: NATS_CREDS
  value: /etc/clerk-novu/nats/creds
{{- else if .auth.user }}
- name: NATS_USER
  value: {{ .auth.user | quote }}
- name: NATS_PASSWORD_FILE
  value: /etc/clerk-novu/nats/password
{{- end }}
{{- if .inbox }}
- name: NATS_INBOX_PREFIX
  value: {{ .inbox | quote }}
{{- end }}
{{- if $v.nats.tlsSecret }}
- name: NATS_TLS_CA
  value: /etc/clerk-novu/nats-tls/ca.crt
{{- if $v.nats.tlsClientCert }}
- name: NATS_TLS_CERT
  value: /etc/clerk-novu/nats-tls/tls.crt
- name: NATS_TLS_KEY
  value: /etc/clerk-novu/nats-tls/tls.key
{{- end }}
{{- end }}
- name: STREAM_REPLICAS
  value: {{ $v.nats.streamReplicas | quote }}
- name: STREAM_MAX_AGE
  value: {{ $v.streams.maxAge | quote }}
- name: STREAM_DUPLICATE_WINDOW
  value: {{ $v.streams.duplicateWindow | quote }}
- name: STREAM_DLQ_MAX_AGE
  value: {{ $v.streams.dlqMaxAge | quote }}
{{- end -}}

{{/* Volumes of a NATS client (the auth Secret's one key, TLS). Takes root, auth. */}}
{{- define "clerk-novu.natsVolumes" -}}
{{- if or .auth.credsKey .auth.user }}
- name: nats-auth
  secret:
    secretName: {{ .auth.existingSecret | quote }}
    defaultMode: 0440
    items:
      - key: {{ .auth.credsKey | default .auth.passwordKey | quote }}
        path: {{ ternary "creds" "password" (not (empty .auth.credsKey)) }}
{{- end }}
{{- if .root.Values.nats.tlsSecret }}
- name: nats-tls
  secret:
    secretName: {{ .root.Values.nats.tlsSecret | quote }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "clerk-novu.natsMounts" -}}
{{- if or .auth.credsKey .auth.user }}
- name: nats-auth
  mountPath: /etc/clerk-novu/nats
  readOnly: true
{{- end }}
{{- if .root.Values.nats.tlsSecret }}
- name: nats-tls
  mountPath: /etc/clerk-novu/nats-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* A key/value map as an env list, sorted. */}}
{{- define "clerk-novu.envMap" -}}
{{- range $k, $val := . }}
- name: {{ $k }}
  value: {{ $val | toString | quote }}
{{- end }}
{{- end -}}

{{/*
The settings `clerknovu provision` shapes the JetStream resources from
(pkg/runtime/service Env.Resources) that the services read from their own
env: each key set in router.env or sink.env is put into .out (a dict), so the
provisioning Job applies what the router and the sink check at start. The
STREAM_* settings come from the nats and streams values (clerk-novu.natsEnv).
pkg/runtime/service's TestHelmProvisionGetsEveryResourceSetting checks these
lists against what Env.Resources reads. Takes values, out.
*/}}
{{- define "clerk-novu.resourceEnv" -}}
{{- $from := dict
    "router" (list "ROUTES_KV_BUCKET" "ROUTER_ACK_WAIT" "ROUTER_MAX_DELIVER")
    "sink" (list "NOVU_ACK_WAIT" "NOVU_TIMEOUT" "NOVU_MAX_DELIVER") -}}
{{- range $svc, $keys := $from -}}
{{- $env := (get $.values $svc).env | default dict -}}
{{- range $keys -}}
{{- if not (kindIs "invalid" (get $env .)) -}}
{{- $_ := set $.out . (get $env .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
