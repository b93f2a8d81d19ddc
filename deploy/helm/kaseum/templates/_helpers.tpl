{{/*
Shared templates. Every per-service template (identity.yaml, tickets.yaml, ...)
calls "kaseum.service" with a context dict:
  root      the chart's root context (.)
  name      the service name, which is also its values block and its Service name
  protocol  "grpc" (default) or "http"
  command   the container command (default: python -m <name>)
*/}}

{{/* The gRPC services, in the order their *_ADDR variables are written. */}}
{{- define "kaseum.grpcServices" -}}
identity tickets consent rights analytics
{{- end }}

{{- define "kaseum.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The region, checked: every name and subject is built from it. */}}
{{- define "kaseum.region" -}}
{{- $region := required "region is required: one release serves exactly one region (e.g. --set region=uk)" .Values.region -}}
{{- if not (regexMatch "^[a-z]{2,8}$" $region) -}}
{{- fail (printf "region %q must be 2 to 8 lower-case letters (the services refuse anything else)" $region) -}}
{{- end -}}
{{- $region -}}
{{- end }}

{{/* The node label value that marks this region's nodes. */}}
{{- define "kaseum.regionNodeValue" -}}
{{- default (include "kaseum.region" .) .Values.placement.regionValue -}}
{{- end }}

{{/* "true" when this region peers with others for analytics (asks or answers), else empty. */}}
{{- define "kaseum.analyticsPeering" -}}
{{- with .Values.analyticsPeering -}}
{{- if or .peers .ingressFrom -}}true{{- end -}}
{{- end -}}
{{- end }}

{{/* ANALYTICS_PEERS: "eu=host:port,us=host:port", each entry checked. */}}
{{- define "kaseum.analyticsPeers" -}}
{{- $region := include "kaseum.region" . -}}
{{- $entries := list -}}
{{- range $peer := .Values.analyticsPeering.peers -}}
{{- if not (regexMatch "^[a-z]{2,8}$" ($peer.region | default "")) -}}
{{- fail (printf "analyticsPeering.peers: region %q must be 2 to 8 lower-case letters" ($peer.region | default "")) -}}
{{- end -}}
{{- if eq $peer.region $region -}}
{{- fail (printf "analyticsPeering.peers: %q is this release's own region" $peer.region) -}}
{{- end -}}
{{- if not (regexMatch "^[^\\s:@/]+:[0-9]{1,5}$" ($peer.address | default "")) -}}
{{- fail (printf "analyticsPeering.peers: address %q of %s must be host:port" ($peer.address | default "") $peer.region) -}}
{{- end -}}
{{- $entries = append $entries (printf "%s=%s" $peer.region $peer.address) -}}
{{- end -}}
{{- join "," $entries -}}
{{- end }}

{{/* A service's values block, or a failure naming the missing block. */}}
{{- define "kaseum.values" -}}
{{- $svc := index .root.Values .name -}}
{{- if not $svc -}}
{{- fail (printf "values block %q is missing" .name) -}}
{{- end -}}
{{- toYaml $svc -}}
{{- end }}

{{/* Selector labels; ctx: root, name, component. */}}
{{- define "kaseum.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component | default "server" }}
{{- end }}

{{/* Common labels; ctx: root, name, component. */}}
{{- define "kaseum.labels" -}}
helm.sh/chart: {{ include "kaseum.chart" .root }}
{{ include "kaseum.selectorLabels" . }}
app.kubernetes.io/part-of: kaseum
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
kaseum.io/region: {{ include "kaseum.region" .root }}
{{- end }}

{{/* The image reference; ctx: root, name. Tags default to the chart's appVersion. */}}
{{- define "kaseum.image" -}}
{{- $svc := index .root.Values .name -}}
{{- $img := .root.Values.image -}}
{{- $tag := $svc.image.tag | default $img.tag | default .root.Chart.AppVersion -}}
{{- $repo := required (printf "%s.image.repository is required" .name) $svc.image.repository -}}
{{- if $img.registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" $img.registry) $repo $tag -}}
{{- else -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end }}

{{/* host:port a service is reached at; ctx: root, name. */}}
{{- define "kaseum.addr" -}}
{{- $svc := index .root.Values .name -}}
{{- printf "%s:%d" .name (int $svc.port) -}}
{{- end }}

{{/* A secretKeyRef env entry; ctx: env, ref (existingSecret, key), what. */}}
{{- define "kaseum.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "%s: existingSecret is required (the name of a Secret that already exists)" .what) .ref.existingSecret | quote }}
      key: {{ required (printf "%s: key is required" .what) .ref.key | quote }}
{{- end }}

{{/* The environment every container of a service gets; ctx: root, name, protocol. */}}
{{- define "kaseum.env" -}}
{{- $root := .root -}}
{{- $svc := index $root.Values .name -}}
- name: REGION
  value: {{ include "kaseum.region" $root | quote }}
- name: NATS_URL
  value: {{ required "nats.url is required" $root.Values.nats.url | quote }}
{{- range $callee := splitList " " (include "kaseum.grpcServices" $root) }}
- name: {{ printf "%s_ADDR" (upper $callee) }}
  value: {{ include "kaseum.addr" (dict "root" $root "name" $callee) | quote }}
{{- end }}
{{- if eq .protocol "http" }}
- name: GATEWAY_PORT
  value: {{ $svc.port | quote }}
{{- else }}
- name: GRPC_BIND
  value: {{ printf "0.0.0.0:%d" (int $svc.port) | quote }}
{{- with $root.Values.governance }}
- name: TRANSFER_SAFEGUARDS_FILE
  value: "/etc/kaseum/governance/safeguards.json"
- name: HOSTING_PROVIDERS
  value: {{ toJson .hostingProviders | quote }}
- name: RETENTION_PURGE_INTERVAL_SECONDS
  value: {{ .retention.purgeIntervalSeconds | quote }}
- name: RETENTION_BATCH_SIZE
  value: {{ .retention.batchSize | quote }}
- name: RETENTION_BATCH_PAUSE_SECONDS
  value: {{ .retention.batchPauseSeconds | quote }}
{{- end }}
{{- end }}
{{- include "kaseum.secretEnv" (dict "env" "KASEUM_SERVICE_SECRET" "ref" $root.Values.serviceSecret "what" "serviceSecret") | nindent 0 }}
{{- if $svc.database }}
{{- include "kaseum.secretEnv" (dict "env" (printf "DATABASE_URL_%s" (upper .name)) "ref" $svc.database "what" (printf "%s.database" .name)) | nindent 0 }}
{{- end }}
{{- if $svc.signingKey }}
{{- include "kaseum.secretEnv" (dict "env" "IDENTITY_SIGNING_KEY" "ref" $svc.signingKey "what" (printf "%s.signingKey" .name)) | nindent 0 }}
{{- end }}
{{- if and (eq .name "consent") $root.Values.mail }}
{{- with $root.Values.mail }}
- name: PUBLIC_BASE_URL
  value: {{ .publicBaseUrl | quote }}
- name: MAIL_FROM
  value: {{ .from | quote }}
- name: SMTP_HOST
  value: {{ .smtp.host | quote }}
- name: SMTP_PORT
  value: {{ .smtp.port | quote }}
- name: SMTP_STARTTLS
  value: {{ .smtp.starttls | default false | quote }}
{{- $secret := .credentials.existingSecret }}
- name: SMTP_USERNAME
  valueFrom:
    secretKeyRef: {name: {{ $secret | quote }}, key: SMTP_USERNAME, optional: true}
- name: SMTP_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret | quote }}, key: SMTP_PASSWORD, optional: true}
- name: SUPPRESSION_KEY
  valueFrom:
    secretKeyRef: {name: {{ $secret | quote }}, key: SUPPRESSION_KEY}
{{- end }}
{{- end }}
{{- if and (eq .name "analytics") (include "kaseum.analyticsPeering" $root) }}
{{- with $root.Values.analyticsPeering }}
- name: ANALYTICS_PEERS
  value: {{ include "kaseum.analyticsPeers" $root | quote }}
{{- include "kaseum.secretEnv" (dict "env" "ANALYTICS_PEER_SECRET" "ref" .peerSecret "what" "analyticsPeering.peerSecret") | nindent 0 }}
{{- end }}
{{- end }}
{{- if $root.Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $root.Values.otel.endpoint | quote }}
{{- end }}
- name: LOG_LEVEL
  value: {{ $root.Values.logLevel | default "INFO" | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "kaseum-%s" .name | quote }}
- name: PYTHONUNBUFFERED
  value: "1"
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
{{- with $svc.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Scheduling: region pinning, spreading, tolerations; ctx: root, name, component. */}}
{{- define "kaseum.placement" -}}
{{- $root := .root -}}
{{- $svc := index $root.Values .name -}}
{{- $p := $root.Values.placement -}}
{{- $label := required "placement.regionLabel is required" $p.regionLabel -}}
{{- $value := include "kaseum.regionNodeValue" $root -}}
{{- if eq $p.mode "affinity" }}
{{- if ($svc.affinity | default dict).nodeAffinity }}
{{- fail (printf "%s.affinity.nodeAffinity cannot be combined with placement.mode=affinity: use nodeSelector" .name) }}
{{- end }}
{{- with $svc.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - key: {{ $label | quote }}
              operator: In
              values:
                - {{ $value | quote }}
  {{- with $svc.affinity }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- else if eq $p.mode "nodeSelector" }}
nodeSelector:
  {{- toYaml (merge (dict $label $value) ($svc.nodeSelector | default dict)) | nindent 2 }}
{{- with $svc.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- else }}
{{- fail (printf "placement.mode must be nodeSelector or affinity, not %q" $p.mode) }}
{{- end }}
{{- with $svc.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if and $p.spreadAcrossZones (ne (.component | default "server") "migrate") }}
topologySpreadConstraints:
  {{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: 1
    topologyKey: {{ $key }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "kaseum.selectorLabels" (dict "root" $root "name" $.name) | nindent 8 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by servers and migration jobs; ctx: root, name, component. */}}
{{- define "kaseum.podCommon" -}}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- include "kaseum.placement" . | trim | nindent 0 }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  - name: governance
    configMap:
      name: kaseum-governance
{{- end }}

{{/* NetworkPolicy egress rules every pod of a service needs; ctx: root, name. */}}
{{- define "kaseum.baseEgress" -}}
{{- $root := .root -}}
{{- $svc := index $root.Values .name -}}
- to:
    {{- toYaml $root.Values.networkPolicy.dnsPeers | nindent 4 }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- if and (eq .name "consent") $root.Values.mail }}
- ports:
    - protocol: TCP
      port: {{ $root.Values.mail.smtp.port }}
  {{- with $root.Values.mail.networkPolicyPeers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- if $svc.database }}
{{- $peers := $svc.database.networkPolicyPeers | default $root.Values.database.networkPolicyPeers }}
- ports:
    - protocol: TCP
      port: {{ $root.Values.database.port }}
  {{- with $peers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Deployment, Service, NetworkPolicy, PodDisruptionBudget, HPA and migration Job of one service. */}}
{{- define "kaseum.service" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $protocol := .protocol | default "grpc" -}}
{{- $_ := include "kaseum.values" . -}}
{{- $svc := index $root.Values $name -}}
{{- $port := int $svc.port -}}
{{- $ctx := dict "root" $root "name" $name "protocol" $protocol -}}
{{- $command := .command | default (list "python" "-m" $name) -}}
{{- $grpcNames := splitList " " (include "kaseum.grpcServices" $root) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "kaseum.labels" $ctx | nindent 4 }}
spec:
  {{- if not $svc.autoscaling.enabled }}
  replicas: {{ $svc.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "kaseum.selectorLabels" $ctx | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "kaseum.labels" $ctx | nindent 8 }}
      annotations:
        # Restart on a change of safeguards: they are read at start-up.
        checksum/governance: {{ include "kaseum.governanceFile" $root | sha256sum }}
        {{- with $svc.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- include "kaseum.podCommon" $ctx | nindent 6 }}
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ $name }}
          image: {{ include "kaseum.image" $ctx | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            {{- toYaml $command | nindent 12 }}
          ports:
            - name: {{ $protocol }}
              containerPort: {{ $port }}
              protocol: TCP
          env:
            {{- include "kaseum.env" $ctx | nindent 12 }}
          {{- if eq $protocol "http" }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: {{ $protocol }}
            {{- toYaml $root.Values.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: {{ $protocol }}
            {{- toYaml $root.Values.probes.readiness | nindent 12 }}
          {{- else }}
          livenessProbe:
            grpc:
              port: {{ $port }}
            {{- toYaml $root.Values.probes.liveness | nindent 12 }}
          readinessProbe:
            grpc:
              port: {{ $port }}
            {{- toYaml $root.Values.probes.readiness | nindent 12 }}
          {{- end }}
          resources:
            {{- required (printf "%s.resources is required" $name) $svc.resources | toYaml | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: governance
              mountPath: /etc/kaseum/governance
              readOnly: true
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "kaseum.labels" $ctx | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "kaseum.selectorLabels" $ctx | nindent 4 }}
  ports:
    - name: {{ $protocol }}
      port: {{ $port }}
      targetPort: {{ $protocol }}
      protocol: TCP
      appProtocol: {{ eq $protocol "http" | ternary "http" "kubernetes.io/h2c" }}
{{- if $root.Values.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $name }}
  labels:
    {{- include "kaseum.labels" $ctx | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "kaseum.selectorLabels" $ctx | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  ingress:
    {{- if eq $protocol "http" }}
    - from:
        {{- required (printf "%s.ingressFrom is required when networkPolicy.enabled" $name) $svc.ingressFrom | toYaml | nindent 8 }}
      ports:
        - protocol: TCP
          port: {{ $port }}
    {{- else }}
    {{- $callers := list }}
    {{- range $caller := append $grpcNames "gateway" }}
    {{- if has $name ((index $root.Values $caller).calls | default list) }}
    {{- $callers = append $callers $caller }}
    {{- end }}
    {{- end }}
    {{- if $callers }}
    - from:
        {{- range $caller := $callers }}
        - podSelector:
            matchLabels:
              {{- include "kaseum.selectorLabels" (dict "root" $root "name" $caller) | nindent 14 }}
        {{- end }}
      ports:
        - protocol: TCP
          port: {{ $port }}
    {{- end }}
    {{- if and (eq $name "analytics") $root.Values.analyticsPeering }}
    {{- with $root.Values.analyticsPeering.ingressFrom }}
    # Peer regions' analytics services, asking for this region's released cells.
    - from:
        {{- toYaml . | nindent 8 }}
      ports:
        - protocol: TCP
          port: {{ $port }}
    {{- end }}
    {{- end }}
    {{- end }}
  egress:
    {{- include "kaseum.baseEgress" $ctx | nindent 4 }}
    - to:
        {{- required "nats.networkPolicyPeers is required when networkPolicy.enabled" $root.Values.nats.networkPolicyPeers | toYaml | nindent 8 }}
      ports:
        - protocol: TCP
          port: {{ $root.Values.nats.port }}
    {{- range $callee := $svc.calls | default list }}
    {{- if not (has $callee $grpcNames) }}
    {{- fail (printf "%s.calls: %q is not a gRPC service" $name $callee) }}
    {{- end }}
    - to:
        - podSelector:
            matchLabels:
              {{- include "kaseum.selectorLabels" (dict "root" $root "name" $callee) | nindent 14 }}
      ports:
        - protocol: TCP
          port: {{ (index $root.Values $callee).port }}
    {{- end }}
    {{- if and (eq $name "analytics") $root.Values.analyticsPeering }}
    {{- $_ := include "kaseum.analyticsPeers" $root }}
    {{- range $peer := $root.Values.analyticsPeering.peers }}
    # The {{ $peer.region }} region's analytics service (cross-region aggregates).
    - ports:
        - protocol: TCP
          port: {{ splitList ":" $peer.address | last | int }}
      {{- with $peer.networkPolicyPeers }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- end }}
    {{- if $root.Values.otel.endpoint }}
    - ports:
        - protocol: TCP
          port: {{ $root.Values.otel.port }}
      {{- with $root.Values.otel.networkPolicyPeers }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
{{- end }}
{{- if and $root.Values.podDisruptionBudget.enabled (or $svc.autoscaling.enabled (gt (int $svc.replicas) 1)) }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "kaseum.labels" $ctx | nindent 4 }}
spec:
  maxUnavailable: {{ $root.Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "kaseum.selectorLabels" $ctx | nindent 6 }}
{{- end }}
{{- if $svc.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  labels:
    {{- include "kaseum.labels" $ctx | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ $svc.autoscaling.minReplicas }}
  maxReplicas: {{ $svc.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $svc.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- if and $svc.database $root.Values.migrations.enabled }}
{{- include "kaseum.migrationJob" $ctx | trim | nindent 0 }}
{{- end }}
{{- end }}

{{/*
The migration Job of one service: a pre-install/pre-upgrade hook running
`python -m <name> migrate`. Its NetworkPolicy is a hook too, created just
before it (lower weight) and removed once the hooks succeed, so the Job can
reach DNS and its database even on a first install into a namespace that
denies egress by default.
*/}}
{{- define "kaseum.migrationJob" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $m := $root.Values.migrations -}}
{{- $ctx := dict "root" $root "name" $name "protocol" .protocol "component" "migrate" -}}
{{- if $root.Values.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $name }}-migrate
  labels:
    {{- include "kaseum.labels" $ctx | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  podSelector:
    matchLabels:
      {{- include "kaseum.selectorLabels" $ctx | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  ingress: []
  egress:
    {{- include "kaseum.baseEgress" $ctx | nindent 4 }}
{{- end }}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $name }}-migrate
  labels:
    {{- include "kaseum.labels" $ctx | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "0"
    # Kept after it finishes (for its logs) until the next upgrade or the TTL.
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  backoffLimit: {{ $m.backoffLimit }}
  activeDeadlineSeconds: {{ $m.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: {{ $m.ttlSecondsAfterFinished }}
  template:
    metadata:
      labels:
        {{- include "kaseum.labels" $ctx | nindent 8 }}
    spec:
      {{- include "kaseum.podCommon" $ctx | nindent 6 }}
      restartPolicy: Never
      containers:
        - name: migrate
          image: {{ include "kaseum.image" $ctx | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            - python
            - -m
            - {{ $name }}
            - migrate
          env:
            {{- include "kaseum.env" $ctx | nindent 12 }}
          resources:
            {{- toYaml $m.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
{{- end }}

{{/* The transfer safeguards document (servicekit/transfers.py reads it). */}}
{{- define "kaseum.governanceFile" -}}
{{- toJson (dict "safeguards" .Values.governance.safeguards "recipients" .Values.governance.recipients) -}}
{{- end }}
