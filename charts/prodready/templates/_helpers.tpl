{{/* The chart name, or nameOverride. */}}
{{- define "prodready.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, else the release name when it already
contains the chart name (`helm install prodready …` gives `prodready`), else
`<release>-<chart>`.
*/}}
{{- define "prodready.fullname" -}}
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

{{/* The labels that select the operator pods (immutable in a Deployment). */}}
{{- define "prodready.selectorLabels" -}}
app.kubernetes.io/name: {{ include "prodready.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Kubernetes' recommended labels, on every object of the release. */}}
{{- define "prodready.labels" -}}
{{ include "prodready.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: prodready
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "prodready.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "prodready.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: repository@digest when a digest is given, else repository:tag. */}}
{{- define "prodready.image" -}}
{{- if eq .Values.image.tag "latest" }}
{{- fail "image.tag: `latest` is not a version: the image would change under running pods (PR-SC-005); set a release tag or image.digest" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Service in front of the metrics and webhook ports. */}}
{{- define "prodready.serviceName" -}}
{{- include "prodready.fullname" . }}
{{- end }}

{{/* The Secret holding the webhook's serving certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "prodready.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "prodready.fullname" .) }}
{{- end }}

{{/* The DNS names the apiserver may use to reach the webhook Service. */}}
{{- define "prodready.webhookDNSNames" -}}
{{- $service := include "prodready.serviceName" . }}
{{- $namespace := .Release.Namespace }}
{{- list $service (printf "%s.%s" $service $namespace) (printf "%s.%s.svc" $service $namespace) (printf "%s.%s.svc.cluster.local" $service $namespace) | toJson }}
{{- end }}

{{/* Where the webhook certificate is mounted in the operator container. */}}
{{- define "prodready.webhookCertDir" -}}
/etc/prodready/webhook
{{- end }}

{{/* Where the rules configuration is mounted in the operator container. */}}
{{- define "prodready.rulesConfigDir" -}}
/etc/prodready/rules
{{- end }}

{{/* The user name the apiserver gives the operator's ServiceAccount token. */}}
{{- define "prodready.serviceAccountUsername" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "prodready.serviceAccountName" .) }}
{{- end }}

{{/* The ValidatingAdmissionPolicy (and its binding) confining the operator's ServiceAccount. */}}
{{- define "prodready.operatorPolicyName" -}}
{{- printf "%s-operator" (include "prodready.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A CEL string expression of the RE2 pattern matching any of a list of allow-list globs, as
rules/grants.py reads them: `*` any run of characters but a star, `?` one such character,
`[*]` a literal star, `{namespace}` the request's namespace. Call with (list $globs).
*/}}
{{- define "prodready.celGlobPattern" -}}
{{- $patterns := list }}
{{- range (index . 0) }}
{{- if contains "'" . }}
{{- fail (printf "allowed.*: %q: a pattern cannot contain a quote" .) }}
{{- end }}
{{- $patterns = append $patterns (regexQuoteMeta . | replace "\\[\\*\\]" "\x01" | replace "\\*" "[^*]*" | replace "\\?" "[^*]" | replace "\x01" "\\*") }}
{{- end }}
{{- printf "r'^(?:%s)$'" (join "|" $patterns) | replace "\\{namespace\\}" "' + variables.targetNamespace + r'" }}
{{- end }}

{{/*
The pod's and the container's securityContext from values. With podSecurityContext.runAsUser
null (OpenShift: restricted-v2 assigns IDs from the namespace's range and refuses fixed
ones), no runAsUser, runAsGroup or fsGroup is rendered anywhere.
*/}}
{{- define "prodready.assignedIDs" -}}
{{- not (hasKey .Values.podSecurityContext "runAsUser") | ternary "true" "" }}
{{- end }}

{{- define "prodready.podSecurityContext" -}}
{{- $context := deepCopy .Values.podSecurityContext }}
{{- if include "prodready.assignedIDs" . }}
{{- $context = omit $context "runAsUser" "runAsGroup" "fsGroup" }}
{{- end }}
{{- toYaml $context }}
{{- end }}

{{- define "prodready.containerSecurityContext" -}}
{{- $context := deepCopy .Values.securityContext }}
{{- if include "prodready.assignedIDs" . }}
{{- $context = omit $context "runAsUser" "runAsGroup" }}
{{- end }}
{{- toYaml $context }}
{{- end }}

{{/* Whether the operator provisions the webhook certificate itself ("true" or ""). */}}
{{- define "prodready.operatorCertificate" -}}
{{- and .Values.webhook.enabled (eq .Values.webhook.certificate "operator") | ternary "true" "" }}
{{- end }}

{{/* Whether cert-manager issues the webhook certificate ("true" or ""). */}}
{{- define "prodready.certManagerCertificate" -}}
{{- and .Values.webhook.enabled (eq .Values.webhook.certificate "cert-manager") | ternary "true" "" }}
{{- end }}
