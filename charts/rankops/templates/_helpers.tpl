{{/* Names: <release>-rankops unless the release name already says rankops. */}}
{{- define "rankops.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rankops.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "rankops.labels" -}}
{{ include "rankops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: rankops
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "rankops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rankops.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rankops.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "rankops.alertSecretName" -}}
{{- default (printf "%s-alert-receiver" (include "rankops.fullname" .)) .Values.alertReceiver.existingSecret -}}
{{- end -}}

{{- define "rankops.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "rankops.fullname" .) -}}
{{- end -}}

{{- define "rankops.webhookServiceName" -}}
{{- printf "%s-webhook" (include "rankops.fullname" .) -}}
{{- end -}}

{{/*
The Kubernetes API calls the operator makes, as RBAC rules: the one list the ClusterRole (or
the per-namespace Roles) are made of. tests/unit/test_chart_rbac.py checks them against the
requests the operator made in the integration tests: nothing missing, nothing unused.
*/}}
{{- define "rankops.rules" -}}
# The custom resources: kopf watches RankingModels and keeps its finalizer and progress
# annotations on them; the operator writes only their status and reads QualitySLOs.
- apiGroups: ["rankops.dev"]
  resources: ["rankingmodels"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["rankops.dev"]
  resources: ["rankingmodels/status"]
  verbs: ["patch"]
# QualitySLOs: kopf runs a timer per object (finalizer and annotations); the quality watch
# writes their status and the RankingModels' status.quality.
- apiGroups: ["rankops.dev"]
  resources: ["qualityslos"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["rankops.dev"]
  resources: ["qualityslos/status"]
  verbs: ["patch"]
# The remediation ladder: every pod of a track (cache invalidation), the webhook URL of a
# notification; the alert rules as a PrometheusRule where the Prometheus Operator is installed.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["prometheusrules"]
  verbs: ["get", "create", "patch"]
# Children: created when absent, merge-patched when they drift, listed for pruning;
# Deployments are watched for readiness. Only HTTPRoutes are ever pruned.
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "create", "patch"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# MaintenanceWindows: kopf runs a timer per window (finalizer and annotations); the controller
# writes their status and creates the window's Jobs, watched for completion.
- apiGroups: ["rankops.dev"]
  resources: ["maintenancewindows"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["rankops.dev"]
  resources: ["maintenancewindows/status"]
  verbs: ["patch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create"]
{{- end -}}

{{/* kopf itself: it follows namespaces and CRDs appearing and going (cluster-scoped reads). */}}
{{- define "rankops.frameworkRules" -}}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end -}}

{{/* kopf's peering records: the leader's heartbeat and the standbys' watch. */}}
{{- define "rankops.peeringRules" -}}
{{- if .Values.watchNamespaces }}
- apiGroups: ["kopf.dev"]
  resources: ["kopfpeerings"]
  verbs: ["list", "watch", "patch"]
{{- else }}
- apiGroups: ["kopf.dev"]
  resources: ["clusterkopfpeerings"]
  verbs: ["list", "watch", "patch"]
{{- end }}
{{- end -}}
