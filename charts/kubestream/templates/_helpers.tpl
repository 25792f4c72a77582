{{/*
Names and labels shared by every template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "kubestream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: <release>-<chart>, or just the release name
when it already contains the chart name; truncated to 63 characters, the
longest DNS label.
*/}}
{{- define "kubestream.fullname" -}}
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

{{/* Name of the operator's Deployment, Service, RBAC objects and NetworkPolicy. */}}
{{- define "kubestream.operatorName" -}}
{{- printf "%s-operator" (include "kubestream.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "kubestream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubestream.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image, tagged with appVersion unless image.tag says otherwise; `latest`
is refused: the operator and a restarted pod could run different code.
*/}}
{{- define "kubestream.image" -}}
{{- if eq .Values.image.tag "latest" }}
{{- fail "image.tag: \"latest\" is refused; name a release (empty means the chart's appVersion)" }}
{{- end }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Labels on every object of the release. */}}
{{- define "kubestream.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "kubestream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubestream
{{- end }}

{{/*
Selector of the operator pods. The component label keeps it from matching job
pods, which the operator labels with app.kubernetes.io/name=kubestream and
app.kubernetes.io/instance=<job>, the same keys as a release of this chart.
*/}}
{{- define "kubestream.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kubestream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
RBAC rules for the objects the operator manages in a namespace, from
deploy/rbac/operator.yaml (tests/chart checks they stay equal).
*/}}
{{- define "kubestream.namespacedRules" -}}
# The jobs it reconciles, their status, and the finalizer it sets.
- apiGroups: [kubestream.io]
  resources: [streamingjobs]
  verbs: [get, list, watch, patch, update]
- apiGroups: [kubestream.io]
  resources: [streamingjobs/status]
  verbs: [get, patch, update]
- apiGroups: [kubestream.io]
  resources: [streamingjobs/finalizers]
  verbs: [update]
# Driver and executor pods: watched to react quickly, created and deleted.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
# The other children are read by name, created, and (ConfigMap, claim) patched.
- apiGroups: [""]
  resources: [secrets, configmaps, services, serviceaccounts, persistentvolumeclaims]
  verbs: [get, create, patch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, create, patch]
# Events for every transition (the operator's and kopf's).
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# kopf: peering between replicas of a namespaced operator.
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, create, patch]
{{- end }}

{{/* RBAC rules that only exist cluster-wide: kopf's discovery of CRDs and namespaces. */}}
{{- define "kubestream.discoveryRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
