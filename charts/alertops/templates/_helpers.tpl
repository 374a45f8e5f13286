{{/* Chart name, cut to the 63 characters of a DNS label. */}}
{{- define "alertops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix; leaves room for the longest suffix ("-controller", "-leader-election"). */}}
{{- define "alertops.fullname" -}}
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

{{- define "alertops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "alertops.labels" -}}
helm.sh/chart: {{ include "alertops.chart" . }}
app.kubernetes.io/name: {{ include "alertops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: alertops
{{- end }}

{{/* Selector labels of one component: call with (dict "root" $ "component" "controller"). */}}
{{- define "alertops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "alertops.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The chart's image: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "alertops.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The image of the workloads the controller creates: the chart's own unless overridden. */}}
{{- define "alertops.workloadImage" -}}
{{- default (include "alertops.image" .) .Values.controller.workloadImage }}
{{- end }}

{{- define "alertops.controllerServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-controller" (include "alertops.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "alertops.interactServiceAccountName" -}}
{{- if .Values.interact.serviceAccount.create }}
{{- default (printf "%s-interact" (include "alertops.fullname" .)) .Values.interact.serviceAccount.name }}
{{- else }}
{{- required "interact.serviceAccount.name is required when interact.serviceAccount.create is false" .Values.interact.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The cluster id. No default: two clusters left at a default (the release name is usually
     "alertops" everywhere) would own, and delete, each other's AWS resources. */}}
{{- define "alertops.clusterId" -}}
{{- if not .Values.clusterId }}
{{- fail "clusterId is required: set it to an id unique among the Kubernetes clusters sharing this AWS account (1-32 lowercase letters, digits or dashes, e.g. --set clusterId=prod-eu-1). It names and tags every AWS resource alertops owns and must not change after the first install." }}
{{- end }}
{{- .Values.clusterId }}
{{- end }}

{{/* The allowed namespaces: watchNamespace alone when set, else workloads.namespaces. */}}
{{- define "alertops.allowedNamespaces" -}}
{{- if .Values.watchNamespace }}
{{- list .Values.watchNamespace | toJson }}
{{- else }}
{{- .Values.workloads.namespaces | uniq | toJson }}
{{- end }}
{{- end }}

{{/* topologySpreadConstraints of one component, with its selector filled in where left out:
     call with (dict "root" $ "component" "controller" "constraints" list). */}}
{{- define "alertops.topologySpread" -}}
{{- $selector := include "alertops.selectorLabels" (dict "root" .root "component" .component) | fromYaml }}
{{- range .constraints }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" $selector) }}
{{- end }}
- {{ toYaml $c | nindent 2 | trim }}
{{- end }}
{{- end }}

{{- define "alertops.leaseName" -}}
{{- default (printf "%s-controller" (include "alertops.fullname" .)) .Values.controller.leaseName }}
{{- end }}

{{/* The Secret holding the button-signing key: the chart's own, or actionKey.existingSecret. */}}
{{- define "alertops.actionKeySecretName" -}}
{{- default (printf "%s-action-key" (include "alertops.fullname" .)) .Values.actionKey.existingSecret }}
{{- end }}

{{- define "alertops.actionKeySecretKey" -}}
{{- if .Values.actionKey.existingSecret }}{{ .Values.actionKey.existingSecretKey }}{{ else }}key{{ end }}
{{- end }}

{{/* Environment shared by the controller and the interaction server: only variables both
     subcommands declare (tests/integration/chart_env.rs checks every ALERTOPS_ variable). */}}
{{- define "alertops.commonEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: ALERTOPS_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- with .Values.slack.apiBase }}
- name: ALERTOPS_SLACK_API_BASE
  value: {{ . | quote }}
{{- end }}
- name: ALERTOPS_WORKLOAD_IMAGE
  value: {{ include "alertops.workloadImage" . | quote }}
- name: ALERTOPS_WORKLOAD_IMAGE_PULL_POLICY
  value: {{ .Values.image.pullPolicy | quote }}
- name: ALERTOPS_WORKLOAD_SERVICE_ACCOUNT
  value: {{ .Values.workloads.serviceAccount.name | quote }}
{{- with .Values.aws.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.aws.endpointUrl }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.aws.rateLimits }}
{{- $limits := list }}
{{- range $api, $rate := . }}
{{- $limits = append $limits (printf "%s=%v" $api $rate) }}
{{- end }}
- name: ALERTOPS_AWS_RATE_LIMITS
  value: {{ join "," $limits | quote }}
{{- end }}
{{- end }}

{{/* Preferred anti-affinity that spreads one component's replicas across nodes. */}}
{{- define "alertops.spreadAffinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "alertops.selectorLabels" . | nindent 12 }}
{{- end }}
