{{/* Where the serving pods live: the watched namespaces, else any. */}}
{{- define "rankops.monitoringNamespaces" -}}
{{- $namespaces := .Values.monitoring.namespaces | default .Values.watchNamespaces -}}
namespaceSelector:
{{- if $namespaces }}
  matchNames:
    {{- toYaml $namespaces | nindent 4 }}
{{- else }}
  any: true
{{- end }}
{{- end -}}
