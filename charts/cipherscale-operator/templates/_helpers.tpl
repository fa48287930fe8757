{{/*
Names, labels and small computed values shared by the templates.
*/}}

{{/* The chart's name, at most 63 characters. */}}
{{- define "cipherscale-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, at most 63 characters (a DNS label): the release name alone when it
already contains the chart's name.
*/}}
{{- define "cipherscale-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The chart label: name-version. */}}
{{- define "cipherscale-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "cipherscale-operator.labels" -}}
helm.sh/chart: {{ include "cipherscale-operator.chart" . | quote }}
{{ include "cipherscale-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ include "cipherscale-operator.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/part-of: cipherscale-operator
{{- end }}

{{/* Labels that select the manager pods; never change them (a Deployment's selector is immutable). */}}
{{- define "cipherscale-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cipherscale-operator.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/component: manager
{{- end }}

{{/* The ServiceAccount the manager runs as. */}}
{{- define "cipherscale-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cipherscale-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image tag: image.tag, or the chart's appVersion. */}}
{{- define "cipherscale-operator.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
The image reference, REPOSITORY:TAG: the one `make image` builds and the release workflow
pushes. The templates quote it; values.schema.json also bounds both parts to what registries
accept.
*/}}
{{- define "cipherscale-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "cipherscale-operator.imageTag" .) }}
{{- end }}

{{/* The Secret holding the API key; rendering fails with instructions when it is not set. */}}
{{- define "cipherscale-operator.apiKeySecret" -}}
{{- required (printf "apiKey.existingSecret is required: the chart never holds the API key. Create a Secret holding it in namespace %s, e.g. `kubectl -n %s create secret generic cipherscale-api-key --from-literal=%s=KEY`, annotate it with cipherscale.com/allowed-tenants=ClusterCipherscaleTenant/default, then set --set apiKey.existingSecret=cipherscale-api-key" .Release.Namespace .Release.Namespace .Values.apiKey.key) .Values.apiKey.existingSecret }}
{{- end }}

{{/* Where the API key file is mounted in the container. */}}
{{/*
The manager's RBAC rules on the objects it manages. They are EXACTLY those controller-gen
generates from the +kubebuilder:rbac markers into config/rbac/role.yaml; test/chart checks
that they stay equal. Secrets: get only, one by name (the Secrets tenant objects name); the
operator never lists, watches or caches Secrets. The default tenant's key is mounted by the
kubelet.
*/}}
{{- define "cipherscale-operator.managerRules" -}}
- apiGroups:
    - ""
  resources:
    - namespaces
  verbs:
    - get
    - list
    - watch
- apiGroups:
    - ""
  resources:
    - secrets
  verbs:
    - get
- apiGroups:
    - events.k8s.io
  resources:
    - events
  verbs:
    - create
    - patch
- apiGroups:
    - iam.cipherscale.com
  resources:
    - cipherscalegroupmemberships
    - cipherscaletenants
    - cipherscaleusers
    - clustercipherscaletenants
  verbs:
    - get
    - list
    - patch
    - update
    - watch
- apiGroups:
    - iam.cipherscale.com
  resources:
    - cipherscalegroupmemberships/finalizers
    - cipherscaletenants/finalizers
    - cipherscaleusers/finalizers
    - clustercipherscaletenants/finalizers
  verbs:
    - update
- apiGroups:
    - iam.cipherscale.com
  resources:
    - cipherscalegroupmemberships/status
    - cipherscaletenants/status
    - cipherscaleusers/status
    - clustercipherscaletenants/status
  verbs:
    - get
    - patch
    - update
{{- end }}
