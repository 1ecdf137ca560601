{{/*
Names and labels. Every helper takes the chart's context: in this chart ".", in a parent chart
(index .Subcharts "r2-gateway") — the subchart's own context, so names match the ConfigMap and
Secret this chart renders there.
*/}}
{{- define "r2-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "r2-gateway.fullname" -}}
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

{{- define "r2-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "r2-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "r2-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "r2-gateway.labels" -}}
helm.sh/chart: {{ include "r2-gateway.chart" . }}
{{ include "r2-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ include "r2-gateway.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "r2-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "r2-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "r2-gateway.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "r2-gateway.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "r2-gateway.imageTag" .) }}
{{- end }}

{{/* The port of a host:port string. */}}
{{- define "r2-gateway.portOf" -}}
{{- regexReplaceAll "^.*:" . "" }}
{{- end }}

{{/* Fixed in-container paths. */}}
{{- define "r2-gateway.configDir" -}}/etc/r2-gateway/config{{- end }}
{{- define "r2-gateway.configPath" -}}/etc/r2-gateway/config/config.yaml{{- end }}
{{- define "r2-gateway.tlsDir" -}}/etc/r2-gateway/tls{{- end }}

{{- define "r2-gateway.secretName" -}}
{{- .Values.existingSecret | default (include "r2-gateway.fullname" .) }}
{{- end }}

{{- define "r2-gateway.upstreamEnabled" -}}
{{- if and .Values.config.upstream .Values.config.upstream.endpoint }}true{{ end }}
{{- end }}

{{/* The default store signs with keys from the Secret (not with the AWS chain). */}}
{{- define "r2-gateway.upstreamKeys" -}}
{{- if and (include "r2-gateway.upstreamEnabled" .) (not (.Values.upstreamCredentials | default dict).awsChain) }}true{{ end }}
{{- end }}

{{/* Whether the pod mounts a Secret at all (upstream or store credentials, client keys). */}}
{{- define "r2-gateway.needsSecret" -}}
{{- if or .Values.existingSecret (include "r2-gateway.upstreamKeys" .) .Values.clientKeys .Values.storeCredentials }}true{{ end }}
{{- end }}

{{/* Whether this chart renders the Secret (it never does with existingSecret). */}}
{{- define "r2-gateway.createSecret" -}}
{{- if and (not .Values.existingSecret) (include "r2-gateway.needsSecret" .) }}true{{ end }}
{{- end }}

{{/* The key in the Secret that holds a client key's secret. */}}
{{- define "r2-gateway.clientSecretKey" -}}
{{- .secretKey | default (printf "client-%s" .accessKeyId) }}
{{- end }}

{{/*
The gateway's YAML config: .Values.config as given, plus clientKeys (secret read from the mounted
Secret) and the TLS files. Secrets never appear in it.
*/}}
{{- define "r2-gateway.config" -}}
{{- $c := deepCopy .Values.config }}
{{- $keys := list }}
{{- range ($c.keys | default list) }}
{{- $keys = append $keys . }}
{{- end }}
{{- $mount := trimSuffix "/" .Values.secretMountPath }}
{{- range .Values.clientKeys }}
{{- $k := dict "access_key_id" .accessKeyId "secret_access_key_file" (printf "%s/%s" $mount (include "r2-gateway.clientSecretKey" .)) "permission" .permission }}
{{- if .buckets }}
{{- $_ := set $k "buckets" .buckets }}
{{- end }}
{{- $keys = append $keys $k }}
{{- end }}
{{- $_ := set $c "keys" $keys }}
{{- range $name, $_ := (.Values.storeCredentials | default dict) }}
{{- $store := index ($c.upstreams | default dict) $name | default dict }}
{{- $_ := set $store "access_key_id_file" (printf "%s/store-%s-access-key-id" $mount $name) }}
{{- $_ := set $store "secret_access_key_file" (printf "%s/store-%s-secret-access-key" $mount $name) }}
{{- end }}
{{- if .Values.tls.secretName }}
{{- $tlsDir := include "r2-gateway.tlsDir" . }}
{{- $_ := set $c "tls" (dict "cert" (printf "%s/tls.crt" $tlsDir) "key" (printf "%s/tls.key" $tlsDir) "listen" .Values.tls.listen) }}
{{- end }}
{{- toYaml $c }}
{{- end }}

{{/* Checks the schema cannot express; a failed one stops the render with the reason. */}}
{{- define "r2-gateway.validate" -}}
{{- $upstream := include "r2-gateway.upstreamEnabled" . }}
{{- $drain := int (.Values.config.drain_timeout | default 30) }}
{{- $cred := .Values.upstreamCredentials | default dict }}
{{- if and $cred.awsChain (or $cred.accessKeyId $cred.secretAccessKey (not $upstream)) }}
{{- fail "upstreamCredentials.awsChain: set config.upstream.endpoint and no upstreamCredentials keys" }}
{{- end }}
{{- range $name, $keys := (.Values.storeCredentials | default dict) }}
{{- if not (hasKey ($.Values.config.upstreams | default dict) $name) }}
{{- fail (printf "storeCredentials.%s: no store %s in config.upstreams" $name $name) }}
{{- end }}
{{- if and $.Values.existingSecret (or $keys.accessKeyId $keys.secretAccessKey) }}
{{- fail (printf "storeCredentials.%s: with existingSecret the keys come from store-%s-access-key-id and store-%s-secret-access-key of that Secret" $name $name $name) }}
{{- end }}
{{- if and (not $.Values.existingSecret) (not (and $keys.accessKeyId $keys.secretAccessKey)) }}
{{- fail (printf "storeCredentials.%s: set accessKeyId and secretAccessKey (or existingSecret)" $name) }}
{{- end }}
{{- end }}
{{- if and $upstream (not $cred.awsChain) (not .Values.existingSecret) }}
{{- if not $cred.secretAccessKey }}
{{- fail "config.upstream.endpoint is set: set upstreamCredentials.secretAccessKey (or existingSecret, or upstreamCredentials.awsChain)" }}
{{- end }}
{{- if and (not $cred.accessKeyId) (not .Values.config.upstream.access_key_id) }}
{{- fail "config.upstream.endpoint is set: set upstreamCredentials.accessKeyId (or existingSecret)" }}
{{- end }}
{{- end }}
{{- if and (not $upstream) (or $cred.accessKeyId $cred.secretAccessKey) }}
{{- fail "upstreamCredentials are set but config.upstream.endpoint is not" }}
{{- end }}
{{- range .Values.clientKeys }}
{{- if and $.Values.existingSecret .secretAccessKey }}
{{- fail (printf "clientKeys[%s].secretAccessKey: with existingSecret the secret comes from key %s of that Secret" .accessKeyId (include "r2-gateway.clientSecretKey" .)) }}
{{- end }}
{{- if and (not $.Values.existingSecret) (not .secretAccessKey) }}
{{- fail (printf "clientKeys[%s]: set secretAccessKey (or existingSecret)" .accessKeyId) }}
{{- end }}
{{- end }}
{{- if and (not $upstream) (.Values.standalone) (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}
{{- fail "more than one replica needs config.upstream.endpoint: the embedded in-memory upstream is per pod" }}
{{- end }}
{{- if and (not $upstream) (gt (int (.Values.config.workers | default 1)) 1) }}
{{- fail "config.workers > 1 needs config.upstream.endpoint (the embedded upstream is per process)" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not (include "r2-gateway.metricsEnabled" .)) }}
{{- fail "serviceMonitor.enabled needs config.metrics.enabled" }}
{{- end }}
{{- if and (not .Values.config.listen) (not .Values.tls.secretName) }}
{{- fail "config.listen is empty and tls.secretName is not set: the gateway would listen nowhere" }}
{{- end }}
{{- if hasKey .Values "terminationGracePeriodSeconds" }}
{{- if lt (int .Values.terminationGracePeriodSeconds) (add $drain (int .Values.preStopSleepSeconds)) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed config.drain_timeout + preStopSleepSeconds (%d)" (int .Values.terminationGracePeriodSeconds) (add $drain (int .Values.preStopSleepSeconds))) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "r2-gateway.metricsEnabled" -}}
{{- $m := .Values.config.metrics | default dict }}
{{- if or (not (hasKey $m "enabled")) $m.enabled }}true{{ end }}
{{- end }}

{{/* The port of a separate metrics listener (config.metrics.listen), or nothing. */}}
{{- define "r2-gateway.metricsPort" -}}
{{- $m := .Values.config.metrics | default dict }}
{{- if and (include "r2-gateway.metricsEnabled" .) $m.listen }}
{{- include "r2-gateway.portOf" $m.listen | int }}
{{- end }}
{{- end }}

{{/* The port name probes and the Service use: http, or https when only TLS listens. */}}
{{- define "r2-gateway.probePort" -}}
{{- if .Values.config.listen }}http{{ else }}https{{ end }}
{{- end }}

{{- define "r2-gateway.terminationGracePeriodSeconds" -}}
{{- if hasKey .Values "terminationGracePeriodSeconds" }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- else }}
{{- add (int (.Values.config.drain_timeout | default 30)) (int .Values.preStopSleepSeconds) 10 }}
{{- end }}
{{- end }}

{{/*
The gateway container, as one list item. Used by this chart's Deployment and, through
"r2-gateway.sidecarContainer", by other charts' pods.
*/}}
{{- define "r2-gateway.container" -}}
{{- include "r2-gateway.validate" . }}
{{- $probePort := include "r2-gateway.probePort" . }}
{{- $scheme := ternary "HTTP" "HTTPS" (eq $probePort "http") -}}
- name: r2-gateway
  image: {{ include "r2-gateway.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["serve", "--config", {{ include "r2-gateway.configPath" . | quote }}]
  env:
    # the image sets R2GW_LISTEN, and R2GW_* variables override the config file: keep them equal
    - name: R2GW_LISTEN
      value: {{ .Values.config.listen | quote }}
    {{- if include "r2-gateway.upstreamKeys" . }}
    {{- if or .Values.existingSecret (not .Values.config.upstream.access_key_id) }}
    - name: R2GW_UPSTREAM_ACCESS_KEY_ID
      valueFrom:
        secretKeyRef:
          name: {{ include "r2-gateway.secretName" . }}
          key: upstream-access-key-id
    {{- end }}
    - name: R2GW_UPSTREAM_SECRET_ACCESS_KEY_FILE
      value: {{ printf "%s/upstream-secret-access-key" (trimSuffix "/" .Values.secretMountPath) | quote }}
    {{- end }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    {{- if .Values.config.listen }}
    - name: http
      containerPort: {{ include "r2-gateway.portOf" .Values.config.listen | int }}
      protocol: TCP
    {{- end }}
    {{- if .Values.tls.secretName }}
    - name: https
      containerPort: {{ include "r2-gateway.portOf" .Values.tls.listen | int }}
      protocol: TCP
    {{- end }}
    {{- if include "r2-gateway.metricsPort" . }}
    - name: metrics
      containerPort: {{ include "r2-gateway.metricsPort" . }}
      protocol: TCP
    {{- end }}
  startupProbe:
    httpGet:
      path: /healthz
      port: {{ $probePort }}
      scheme: {{ $scheme }}
    {{- toYaml .Values.probes.startup | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: {{ $probePort }}
      scheme: {{ $scheme }}
    {{- toYaml .Values.probes.liveness | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ $probePort }}
      scheme: {{ $scheme }}
    {{- toYaml .Values.probes.readiness | nindent 4 }}
  {{- if gt (int .Values.preStopSleepSeconds) 0 }}
  lifecycle:
    preStop:
      exec:
        command: ["sleep", {{ .Values.preStopSleepSeconds | int | toString | quote }}]
  {{- end }}
  {{- with .Values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: r2-gateway-config
      mountPath: {{ include "r2-gateway.configDir" . }}
      readOnly: true
    {{- if include "r2-gateway.needsSecret" . }}
    - name: r2-gateway-secrets
      mountPath: {{ .Values.secretMountPath }}
      readOnly: true
    {{- end }}
    {{- if .Values.tls.secretName }}
    - name: r2-gateway-tls
      mountPath: {{ include "r2-gateway.tlsDir" . }}
      readOnly: true
    {{- end }}
    - name: r2-gateway-tmp
      mountPath: /tmp
{{- end }}

{{/*
For another chart's pod: the gateway container (a list item). With sidecar.native (the default) it
carries restartPolicy: Always and goes under initContainers (Kubernetes >= 1.29); otherwise under
containers. Context: (index .Subcharts "r2-gateway"). See README.md.
*/}}
{{- define "r2-gateway.sidecarContainer" -}}
{{- include "r2-gateway.container" . }}
{{- if .Values.sidecar.native }}
  restartPolicy: Always
{{- end }}
{{- end }}

{{/* The volumes the gateway container mounts (list items). Context as for the container. */}}
{{- define "r2-gateway.volumes" -}}
- name: r2-gateway-config
  configMap:
    name: {{ include "r2-gateway.fullname" . }}
{{- if include "r2-gateway.needsSecret" . }}
- name: r2-gateway-secrets
  secret:
    secretName: {{ include "r2-gateway.secretName" . }}
    defaultMode: {{ .Values.secretDefaultMode | int }}
{{- end }}
{{- if .Values.tls.secretName }}
- name: r2-gateway-tls
  secret:
    secretName: {{ .Values.tls.secretName }}
    defaultMode: {{ .Values.secretDefaultMode | int }}
{{- end }}
- name: r2-gateway-tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- end }}

{{- define "r2-gateway.sidecarVolumes" -}}
{{- include "r2-gateway.volumes" . }}
{{- end }}

{{/* Pod annotations that roll the pods when the config or the chart-made Secret changes. */}}
{{- define "r2-gateway.checksums" -}}
checksum/config: {{ include "r2-gateway.config" . | sha256sum }}
{{- if include "r2-gateway.createSecret" . }}
checksum/secret: {{ toJson (list .Values.upstreamCredentials .Values.clientKeys .Values.storeCredentials) | sha256sum }}
{{- end }}
{{- end }}
