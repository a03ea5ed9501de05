"""The checklist inside the apiserver: a ReadinessPolicy as a ValidatingAdmissionPolicy.

Kubernetes (1.30 and later) evaluates CEL in the apiserver itself, with no webhook hop:
what is compiled here keeps denying while the operator is down. Pure: the policy objects
in, the `admissionregistration.k8s.io/v1` objects out (`policy_objects`); the operator
applies them (`audit.vap_sync`), `prodready admission-policy` prints them.

**Which rules.** A built-in rule runs in the apiserver when it needs only the object
itself and has a CEL translation here (`TRANSLATIONS`) that says exactly what its Python
check says for a failure: the differential test (tests/e2e/test_vap_differential.py)
sends fuzzed and corpus workloads through both. Rules that read other objects (Services,
PDBs, HPAs, Secrets, ConfigMaps a variable may come from, monitors) stay with the webhook
and the audit. Every custom rule of the policy runs there too, its expression and
messageExpression as written. `placement()` says where each built-in rule runs, for
docs/admission.md.

**Which severity.** Only a rule that is an error for *every* workload the policy decides
for is compiled: its policy severity (or its default) is error, and it does not depend
on the environment — a `prod_only` rule, or one relaxed in dev, is compiled only when
the policy's `environment.value` is prod (then no workload can be anything else). Warning
rules are not compiled: the webhook returns them as admission warnings, and the VAP's
Warn action would only repeat them. `disabled` rules are left out.

**Which workloads.** The binding matches what the policy selects (namespaceSelector,
objectSelector) and the VAP's match conditions keep what the policy decides for: not a
workload an earlier policy selects (strictest mode first, then by name, as
`rules.policy.resolve`), not (for an Audit policy) one in a namespace labelled
`prodready.io/enforce`. As the webhook, a Pod or ReplicaSet its controller owns, an object
being deleted, and an UPDATE that leaves `spec` as it was are left alone (the webhook
still judges those metadata-only updates: it lets them through unless they fail a rule the
old object did not).

**Exemptions.** A policy exemption (namespace, name, kind and image globs) becomes part
of the rule's expression; a glob with a `[...]` class is not translated, and the rules it
exempts are then left to the webhook for that policy (`VapPlan.left_to_webhook` says so).
The `prodready.io/exempt` annotation counts for a rule where the policy lets it (an error
rule: `annotationExemptions.allow: All` or the rule listed in
`annotationExemptions.rules`) with a reason of its own, parsed as
`rules.policy.exemption_reasons` does. An active ReadinessException becomes a condition
on the rules it excepts (its namespace, names, kinds and label selector); exceptions are
dynamic, so the operator regenerates the VAP when one changes or expires: while the
operator is down, a new exception is not honoured by the VAP (it denies, stricter than the
webhook) and one that expires keeps applying until the operator is back.

Policies are cluster-scoped: only who may create them (cluster admins) decides what the
generated VAP enforces, and a VAP can only deny or warn, never grant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from prodready.api.enforcement import AnnotationAllowance, Mode
from prodready.api.labels import ANNOTATION_EXEMPT, ANNOTATION_EXEMPT_REASON
from prodready.api.resource import ADMITTED_WORKLOAD_RESOURCES
from prodready.api.sensitive import (
    DEFAULT as DEFAULT_SENSITIVE_NAMES,
    SensitiveNames,
    sensitive_names,
)
from prodready.rules.checks.health import _DEPENDENCY_NAME as _DEPENDENCY_NAME_PATTERN
from prodready.rules.context import DEPENDENCIES_KEY, WORKLOAD_KINDS
from prodready.rules.model import Environment, Severity
from prodready.rules.policy import (
    ENFORCE_LABEL,
    EXCEPTION_KIND,
    POLICY_KIND,
    CompiledException,
    CompiledPolicy,
    PolicyError,
    compile_exception,
    compile_policy,
)
from prodready.rules.registry import RULES, Rule
from prodready.rules.selectors import Selector

__all__ = [
    "API_VERSION",
    "BINDING_KIND",
    "MANAGED_BY_LABEL",
    "MAX_DECIDED_TEXT",
    "NAME_PREFIX",
    "POLICY_LABEL",
    "PYTHON_WHITESPACE",
    "SECRET_PATTERNS",
    "TRANSLATIONS",
    "VAP_KIND",
    "CustomRuleSource",
    "Placement",
    "Translation",
    "VapPlan",
    "cel_string",
    "glob_regex",
    "placement",
    "placement_table",
    "plan_policy",
    "policy_objects",
    "vap_name",
]

API_VERSION: Final = "admissionregistration.k8s.io/v1"
VAP_KIND: Final = "ValidatingAdmissionPolicy"
BINDING_KIND: Final = "ValidatingAdmissionPolicyBinding"
NAME_PREFIX: Final = "prodready-"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
POLICY_LABEL: Final = "prodready.io/readiness-policy"

# An unowned ReplicaSet is judged as the Deployment it could have been (webhook.admission).
_JUDGED_AS: Final = {"ReplicaSet": "StatefulSet"}

# What a translation reads, computed once per request (the VAP's `variables`).
_VARIABLES: Final[tuple[tuple[str, str], ...]] = (
    (
        "podSpec",
        "object.kind == 'Pod' ? (has(object.spec) ? object.spec : {}) : "
        "object.kind == 'CronJob' ? "
        "(has(object.spec.jobTemplate.spec) && has(object.spec.jobTemplate.spec.template.spec) "
        "? object.spec.jobTemplate.spec.template.spec : {}) : "
        "(has(object.spec.template) && has(object.spec.template.spec) "
        "? object.spec.template.spec : {})",
    ),
    (
        "containers",
        "has(variables.podSpec.containers) ? variables.podSpec.containers : []",
    ),
    (
        "allContainers",
        "(has(variables.podSpec.initContainers) ? variables.podSpec.initContainers : []) "
        "+ variables.containers",
    ),
    (
        "podSecurity",
        "has(variables.podSpec.securityContext) ? variables.podSpec.securityContext : {}",
    ),
    (
        "labels",
        "has(object.metadata.labels) ? object.metadata.labels : {}",
    ),
    (
        "annotations",
        "has(object.metadata.annotations) ? object.metadata.annotations : {}",
    ),
    (
        "templateAnnotations",
        "object.kind == 'Pod' ? {} : object.kind == 'CronJob' ? "
        "(has(object.spec.jobTemplate.spec) && has(object.spec.jobTemplate.spec.template.metadata)"
        " && has(object.spec.jobTemplate.spec.template.metadata.annotations) "
        "? object.spec.jobTemplate.spec.template.metadata.annotations : {}) : "
        "(has(object.spec.template) && has(object.spec.template.metadata) "
        "&& has(object.spec.template.metadata.annotations) "
        "? object.spec.template.metadata.annotations : {})",
    ),
    ("name", "has(object.metadata.name) ? object.metadata.name : ''"),
)

# rules.context's serving port names, anchored for CEL's unanchored `matches`.
_SERVING_PORT: Final = r"^(?:(https?|web|grpcs?|h2c?|http2|api|www)(-.*)?|.*-(https?|grpc))$"


def cel_string(text: str) -> str:
    """`text` as a CEL string literal (JSON's escapes are CEL's)."""
    return json.dumps(text, ensure_ascii=False)


def _cel_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(cel_string(item) for item in items) + "]"


@dataclass(frozen=True, kw_only=True)
class Translation:
    """A built-in rule in CEL: true when the workload passes (the VAP convention).

    `expression` and `message` read the `variables` above; `partial` names what of the
    rule stays with the webhook (None: all of it runs in the apiserver).
    """

    rule_id: str
    expression: str
    message: str
    partial: str | None = None


def _serves(port: str) -> str:
    name = f"{port}.name.lowerAscii()"
    pattern = cel_string(_SERVING_PORT)
    return f"(has({port}.name) && !{name}.contains('metric') && {name}.matches({pattern}))"


def _has_probe(container: str, probe: str) -> str:
    return f"(has({container}.{probe}) && size({container}.{probe}) > 0)"


def _serving(container: str) -> str:
    return f"(has({container}.ports) && {container}.ports.exists(p, {_serves('p')}))"


def _resources_set(c: str) -> str:
    return (
        f"(has({c}.resources) && has({c}.resources.requests) && 'cpu' in {c}.resources.requests "
        f"&& 'memory' in {c}.resources.requests && has({c}.resources.limits) "
        f"&& 'memory' in {c}.resources.limits)"
    )


def _pinned(c: str) -> str:
    # rules.checks.security.split_image: a digest after the first '@'; else a tag after
    # the first ':' of the reference's last path segment, neither empty nor latest.
    reference = f"{c}.image.split('@')[0]"
    last = f"{reference}.split('/')[size({reference}.split('/')) - 1]"
    tag = f"({last}.indexOf(':') < 0 ? '' : {last}.substring({last}.indexOf(':') + 1))"
    return (
        f"(has({c}.image) && {c}.image.trim() != '' && "
        f"({c}.image.matches('^[^@]*@.') || ({tag} != '' && {tag} != 'latest')))"
    )


def _hardened(c: str) -> str:
    # rules.checks.security.hardened_security_context; -1 stands for "not set".
    sc = f"{c}.securityContext"
    pod = "variables.podSecurity"
    user = f"(has({sc}.runAsUser) ? {sc}.runAsUser : has({pod}.runAsUser) ? {pod}.runAsUser : -1)"
    non_root = (
        f"(has({sc}.runAsNonRoot) ? ({sc}.runAsNonRoot ? 1 : 0) : "
        f"has({pod}.runAsNonRoot) ? ({pod}.runAsNonRoot ? 1 : 0) : -1)"
    )
    return (
        f"(has({sc}) && {user} != 0 && ({non_root} == 1 || ({user} > 0 && {non_root} != 0)) "
        f"&& !(has({sc}.privileged) && {sc}.privileged) "
        f"&& has({sc}.allowPrivilegeEscalation) && !{sc}.allowPrivilegeEscalation "
        f"&& has({sc}.readOnlyRootFilesystem) && {sc}.readOnlyRootFilesystem "
        f"&& has({sc}.capabilities) && has({sc}.capabilities.drop) "
        f"&& {sc}.capabilities.drop.exists(d, d.upperAscii() == 'ALL'))"
    )


# rules.checks.resources: where data lives, and what scratch space is (searched, as there).
_DATA_PATH: Final = (
    r"^/(var/lib|var/opt|bitnami|srv)(/|$)"
    r"|(^|/)(data|db|database|pgdata|storage|uploads|mysql|postgresql|redis|mongodb)(/|$)"
)
_SCRATCH_PATH: Final = r"^/(tmp|var/tmp|run|var/run|cache|var/cache|dev/shm)(/|$)|(^|/)(cache|tmp)$"


def _data_on_pod_volumes(c: str) -> str:
    path = "m.mountPath"
    ephemeral = "(has(v.emptyDir) || has(v.hostPath))"
    stateful_scratch = (
        f"(object.kind == 'StatefulSet' && has(v.emptyDir) "
        f"&& !{path}.matches({cel_string(_SCRATCH_PATH)}))"
    )
    return (
        f"(!has({c}.volumeMounts) || !has(variables.podSpec.volumes) || {c}.volumeMounts.all(m, "
        f"variables.podSpec.volumes.all(v, v.name != m.name || !{ephemeral} || "
        f"!({path}.matches({cel_string(_DATA_PATH)}) || {stateful_scratch}))))"
    )


def _names_of(failing: str, containers: str = "variables.containers") -> str:
    return f"{containers}.filter(c, !{failing}).map(c, c.name).join(', ')"


# -- PR-HC-003: probes are health checks with sane timings ---------------------------------

# Python's `str.strip()` whitespace (str.isspace), spelled as characters: Go's `\s` and
# CEL's trim() know fewer. A unit test keeps it equal to Python's.
PYTHON_WHITESPACE: Final = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WS: Final = f"[{PYTHON_WHITESPACE}]"
_NOT_WS_OR_SEMICOLON: Final = f"[^{PYTHON_WHITESPACE};]"
# Python's `\w` (str patterns) is exactly letters, numbers and `_` (a unit test checks).
_WORD: Final = r"\p{L}\p{N}_"


def _stripped_in(words: Iterable[str]) -> str:
    """RE2: the string, stripped as Python strips, is one of `words`."""
    return f"^{_WS}*(" + "|".join(re.escape(w) for w in words) + f"){_WS}*$"


# rules.checks.health._is_no_op, part by part (its parts are stripped).
_SHELL_PART: Final = _stripped_in(
    ("sh", "bash", "ash", "dash", "zsh", "/bin/sh", "/bin/bash", "/bin/ash")
)
_DASH_C_PART: Final = _stripped_in(("-c", "-ec", "-ce"))
_NO_OP_WORDS: Final = ("true", "/bin/true", "/usr/bin/true", ":", "exit 0", "exit", "")
_NO_OP_PART: Final = _stripped_in(_NO_OP_WORDS)
# A script that is a no-op once stripped, its trailing ';' removed and stripped again.
_NO_OP_SCRIPT: Final = (
    f"^{_WS}*(" + "|".join(re.escape(w) for w in _NO_OP_WORDS) + f"){_WS}*;*{_WS}*$"
)
# A script that, so trimmed, starts with "echo ": something after "echo " survives the
# trimming (a character that is neither blank nor ';', or a ';' a blank separates from the
# trailing ones).
_ECHO_SCRIPT: Final = f"^{_WS}*echo (?s:.*)({_NOT_WS_OR_SEMICOLON}|;{_WS}+;)"
_ECHO_COMMAND: Final = f"^{_WS}*(?s:.*/)?echo{_WS}*$"


def _no_op(probe: str) -> str:
    command = f"(has({probe}.exec.command) ? {probe}.exec.command : [])"
    return (
        f"(size({command}) == 0 || ((size({command}) >= 3 "
        f"&& {command}[0].matches({cel_string(_SHELL_PART)}) "
        f"&& {command}[1].matches({cel_string(_DASH_C_PART)})) "
        f"? ({command}[2].matches({cel_string(_NO_OP_SCRIPT)}) "
        f"|| {command}[2].matches({cel_string(_ECHO_SCRIPT)})) "
        f": ((size({command}) == 1 && {command}[0].matches({cel_string(_NO_OP_PART)})) "
        f"|| (size({command}) == 2 && {command}[0].matches({cel_string(_stripped_in(['exit']))}) "
        f"&& {command}[1].matches({cel_string(_stripped_in(['0']))})) "
        f"|| {command}[0].matches({cel_string(_ECHO_COMMAND)}))))"
    )


def _checks_health(probe: str) -> str:
    # rules.checks.health._handler_problem: httpGet or grpc; an exec that is no no-op.
    return f"(has({probe}.httpGet) || has({probe}.grpc) || (has({probe}.exec) && !{_no_op(probe)}))"


def _period(probe: str) -> str:
    return f"(has({probe}.periodSeconds) ? {probe}.periodSeconds : 10)"


def _sane_probes(c: str) -> str:
    live, ready = f"{c}.livenessProbe", f"{c}.readinessProbe"
    has_live, has_ready = _has_probe(c, "livenessProbe"), _has_probe(c, "readinessProbe")
    return (
        f"(!({has_live} || {has_ready}) || ("
        f"(!{has_live} || {_checks_health(live)}) && (!{has_ready} || {_checks_health(ready)}) "
        f"&& !({has_live} && {has_ready} && {_period(ready)} > {_period(live)}) "
        f"&& !({has_live} && !(has({live}.initialDelaySeconds) && {live}.initialDelaySeconds != 0) "
        f"&& !{_has_probe(c, 'startupProbe')})))"
    )


# -- PR-HC-004: dependencies are checked by readiness, not liveness --------------------------

# rules.checks.health._DEPENDENCY_NAME, as it is (the name upper-cased: names are ASCII).
_DEPENDENCY_NAME: Final = _DEPENDENCY_NAME_PATTERN.pattern
# rules.checks.health._DEPENDENCY_PATH with Python's Unicode `\b` spelled out.
_DEPENDENCY_PATH: Final = (
    f"(?i)ready|readiness|deps|dependenc|database|(^|[^{_WORD}])db([^{_WORD}]|$)"
)
# The dependencies annotation in the shapes decided in the apiserver: a JSON array of
# objects whose keys and values are strings without escapes (what the renderer writes,
# with any JSON whitespace). Such a value declares a dependency when one of its objects
# has the key "name" (every value is a string, so the last "name" is one).
_JSON_WS: Final = "[ \\t\\n\\r]*"
_JSON_STRING: Final = '"[^"\\\\\\x00-\\x1f]*"'
_JSON_PAIR: Final = f"{_JSON_STRING}{_JSON_WS}:{_JSON_WS}{_JSON_STRING}"
_JSON_OBJECT: Final = (
    f"\\{{{_JSON_WS}({_JSON_PAIR}({_JSON_WS},{_JSON_WS}{_JSON_PAIR})*)?{_JSON_WS}\\}}"
)
_DECIDED_DEPENDENCIES: Final = (
    f"^{_JSON_WS}\\[{_JSON_WS}({_JSON_OBJECT}({_JSON_WS},{_JSON_WS}{_JSON_OBJECT})*)?"
    f"{_JSON_WS}\\]{_JSON_WS}$"
)
_NAME_KEY: Final = f'[{{,]{_JSON_WS}"name"{_JSON_WS}:'
# Longer values are left to the webhook (the apiserver prices a regex by the text's size).
MAX_DECIDED_TEXT: Final = 4096


def _declares(annotations: str) -> str:
    key = cel_string(DEPENDENCIES_KEY)
    value = f"{annotations}[{key}]"
    return (
        f"({key} in {annotations} && size({value}) <= {MAX_DECIDED_TEXT} "
        f"&& {value}.matches({cel_string(_DECIDED_DEPENDENCIES)}) "
        f"&& {value}.matches({cel_string(_NAME_KEY)}))"
    )


def _same_check(first: str, second: str) -> str:
    # rules.checks.health._same_check: the first handler either has decides.
    terms = "false"
    for handler in reversed(("httpGet", "grpc", "exec", "tcpSocket")):
        a, b = f"{first}.{handler}", f"{second}.{handler}"
        terms = f"((has({a}) || has({b})) ? (has({a}) && has({b}) && {a} == {b}) : {terms})"
    return terms


def _dependencies_left_to_readiness(c: str) -> str:
    live, ready = f"{c}.livenessProbe", f"{c}.readinessProbe"
    has_live = _has_probe(c, "livenessProbe")
    depends = (
        f"((has({c}.env) && {c}.env.exists(e, e.name.upperAscii().matches("
        f"{cel_string(_DEPENDENCY_NAME)}))) || {_declares('variables.annotations')} "
        f"|| {_declares('variables.templateAnnotations')})"
    )
    live_path = (
        f"({has_live} && has({live}.httpGet) && has({live}.httpGet.path) "
        f"&& {live}.httpGet.path.matches({cel_string(_DEPENDENCY_PATH)}))"
    )
    return (
        f"(!{_serving(c)} || !{depends} || ({_has_probe(c, 'readinessProbe')} "
        f"&& !({has_live} && {_same_check(live, ready)}) && !{live_path}))"
    )


# -- PR-LG-003: no sensitive-looking variable carries a literal value -------------------------

# rules.subject: a value of only $(VAR) references is not a secret (Python's `$` also
# matches before a final newline).
_ONLY_REFERENCES: Final = r"^(\$\([A-Za-z_][A-Za-z0-9_]*\))+\n?$"
# rules.subject._URL_WITH_PASSWORD with Python's `\s`.
_URL_WITH_PASSWORD: Final = (
    f"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@{PYTHON_WHITESPACE}:]*:[^/?#@{PYTHON_WHITESPACE}]+@"
)
_NOT_WORD: Final = f"[^{_WORD}]"
_NOT_WORD_OR_DASH: Final = f"[^{_WORD}-]"
# rules.secrets.PATTERNS in RE2: a look-behind (look-ahead) is a character of the excluded
# class or the start (end) of the text, which finds the same values; `\w` and `\d` are
# Python's (Unicode); an upper bound that cannot matter within MAX_DECIDED_TEXT is dropped.
SECRET_PATTERNS: Final[tuple[tuple[str, str], ...]] = (
    ("private key", r"--- ?BEGIN ([A-Z0-9]+ ){0,4}PRIVATE KEY"),
    ("AWS access key", r"(^|[^A-Z0-9])(AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}([^A-Z0-9]|$)"),
    (
        "Google API key",
        f"(^|{_NOT_WORD_OR_DASH})AIza[0-9A-Za-z_-]{{35}}({_NOT_WORD_OR_DASH}|$)",
    ),
    (
        "GitHub token",
        f"(^|{_NOT_WORD})(gh[pousr]_[A-Za-z0-9]{{36}}|github_pat_[A-Za-z0-9_]{{82}})"
        f"({_NOT_WORD}|$)",
    ),
    ("GitLab token", f"(^|{_NOT_WORD})glpat-[A-Za-z0-9_-]{{20}}({_NOT_WORD_OR_DASH}|$)"),
    ("Slack token", f"(^|{_NOT_WORD})xox[abposr]-[A-Za-z0-9-]{{10}}"),
    (
        "Slack webhook URL",
        rf"https://hooks\.slack\.com/services/T[A-Z0-9]{{6,12}}/B[A-Z0-9]{{6,12}}/[{_WORD}]{{20}}",
    ),
    ("Stripe secret key", f"(^|{_NOT_WORD})[sr]k_live_[A-Za-z0-9]{{20}}"),
    (
        "OpenAI or Anthropic API key",
        f"(^|{_NOT_WORD_OR_DASH})sk-(proj-)?[A-Za-z0-9_-]{{20,200}}T3BlbkFJ"
        f"|(^|{_NOT_WORD_OR_DASH})sk-ant-api\\p{{Nd}}\\p{{Nd}}-[A-Za-z0-9_-]{{80}}",
    ),
    ("npm token", f"(^|{_NOT_WORD})npm_[A-Za-z0-9]{{36}}({_NOT_WORD}|$)"),
    ("SendGrid API key", rf"(^|{_NOT_WORD})SG\.[A-Za-z0-9_-]{{22}}\.[A-Za-z0-9_-]{{43}}"),
    ("Azure storage account key", r"AccountKey=[A-Za-z0-9+/]{80}"),
    (
        "signed JWT",
        f"(^|{_NOT_WORD_OR_DASH})eyJ[A-Za-z0-9_-]{{8,}}\\.eyJ[A-Za-z0-9_-]{{8,}}"
        r"\.[A-Za-z0-9_-]{16}",
    ),
)
_SECRET_VALUE: Final = "|".join(f"({pattern})" for _, pattern in SECRET_PATTERNS)


def _literal_secret(e: str, names: SensitiveNames) -> str:
    """CEL: the env entry `e` carries a literal secret (`RuleSettings.secret_reason`)."""
    value = f"{e}.value"
    return (
        f"(!has({e}.valueFrom) && has({value}) && size({value}) > 0 "
        f"&& !{value}.matches({cel_string(_ONLY_REFERENCES)}) && (({names.cel(f'{e}.name')}) "
        f"|| (size({value}) <= {MAX_DECIDED_TEXT} && ({value}.matches("
        f"{cel_string(_URL_WITH_PASSWORD)}) || {value}.matches({cel_string(_SECRET_VALUE)})))))"
    )


def _no_literal_secrets(c: str, names: SensitiveNames) -> str:
    return f"(!has({c}.env) || !{c}.env.exists(e, {_literal_secret('e', names)}))"


def _literal_secrets_translation(names: SensitiveNames) -> Translation:
    return Translation(
        rule_id="PR-LG-003",
        expression=f"variables.allContainers.all(c, {_no_literal_secrets('c', names)})",
        message="'container(s) ' + "
        + _names_of(_no_literal_secrets("c", names), "variables.allContainers")
        + " + ' carry a literal value in a sensitive-looking variable or a literal secret; "
        "reference a Secret with valueFrom.secretKeyRef'",
        partial=f"a literal value longer than {MAX_DECIDED_TEXT} characters is judged in the "
        "apiserver by its variable's name only; the secret shapes in it are left to the "
        "webhook and the audit",
    )


TRANSLATIONS: Final[Mapping[str, Translation]] = {
    t.rule_id: t
    for t in (
        Translation(
            rule_id="PR-HC-001",
            expression=f"variables.containers.all(c, {_has_probe('c', 'livenessProbe')})",
            message="'container(s) ' + "
            + _names_of(_has_probe("c", "livenessProbe"))
            + " + ' run continuously but have no livenessProbe'",
        ),
        Translation(
            rule_id="PR-HC-002",
            expression="variables.containers.all(c, !"
            + _serving("c")
            + f" || {_has_probe('c', 'readinessProbe')})",
            message="'container(s) ' + "
            + _names_of(f"(!{_serving('c')} || {_has_probe('c', 'readinessProbe')})")
            + " + ' serve traffic but have no readinessProbe'",
            partial="a container that serves only because a Service selects it (no port "
            "named for HTTP or gRPC) is judged by the webhook and the audit",
        ),
        Translation(
            rule_id="PR-HC-003",
            expression=f"variables.containers.all(c, {_sane_probes('c')})",
            message="'container(s) ' + "
            + _names_of(_sane_probes("c"))
            + " + ' have a probe that is not an HTTP or gRPC health check (a bare TCP check, "
            "an exec no-op), readiness checked less often than liveness, or a liveness probe "
            "with no initialDelaySeconds and no startupProbe'",
        ),
        Translation(
            rule_id="PR-HC-004",
            expression=f"variables.containers.all(c, {_dependencies_left_to_readiness('c')})",
            message="'container(s) ' + "
            + _names_of(_dependencies_left_to_readiness("c"))
            + " + ' depend on a database or service but no readinessProbe checks it, or their "
            "livenessProbe checks it too (the same check, or a dependency endpoint)'",
            partial="a container that serves only because a Service selects it, and a "
            f"{DEPENDENCIES_KEY} annotation that is not a JSON array of objects of plain "
            f"strings (as the renderer writes it) or is longer than {MAX_DECIDED_TEXT} "
            "characters, are judged by the webhook and the audit",
        ),
        _literal_secrets_translation(DEFAULT_SENSITIVE_NAMES),
        Translation(
            rule_id="PR-RS-001",
            expression=f"variables.allContainers.all(c, {_resources_set('c')})",
            message="'container(s) ' + "
            + _names_of(_resources_set("c"), "variables.allContainers")
            + " + ' lack a CPU or memory request or a memory limit'",
        ),
        Translation(
            rule_id="PR-RS-003",
            expression=f"variables.allContainers.all(c, {_data_on_pod_volumes('c')})",
            message="'container(s) ' + "
            + _names_of(_data_on_pod_volumes("c"), "variables.allContainers")
            + " + ' keep data on an emptyDir or hostPath volume, which does not outlive the "
            "pod'",
        ),
        Translation(
            rule_id="PR-SC-004",
            expression=f"variables.allContainers.all(c, {_hardened('c')})",
            message="'container(s) ' + "
            + _names_of(_hardened("c"), "variables.allContainers")
            + " + ' may run as root, escalate privileges, write their root filesystem or "
            "keep Linux capabilities'",
        ),
        Translation(
            rule_id="PR-SC-005",
            expression=f"variables.allContainers.all(c, {_pinned('c')})",
            message="'container(s) ' + "
            + _names_of(_pinned("c"), "variables.allContainers")
            + " + ' run an image with no tag, or latest'",
        ),
    )
}

# Why a built-in rule without a translation stays with the webhook and the audit.
_ELSEWHERE: Final[Mapping[str, str]] = {
    "PR-GS-001": "the shutdown timeout may come from a ConfigMap",
    "PR-GS-002": "the shutdown timeout may come from a ConfigMap",
    "PR-GS-003": "reads the workload's HorizontalPodAutoscaler",
    "PR-LG-001": "the variable may come from a ConfigMap",
    "PR-LG-002": "the variable may come from a ConfigMap",
    "PR-ER-001": "the variable may come from a ConfigMap",
    "PR-CF-001": "reads the ConfigMaps a container's envFrom names",
    "PR-CF-002": "reads Secrets",
    "PR-CF-003": "reads the Namespace and the policy's environment",
    "PR-CF-004": "judges a ConfigMap, not a workload",
    "PR-SC-001": "reads Services and Ingresses",
    "PR-SC-002": "reads Services, Ingresses and routes; the variable may come from a ConfigMap",
    "PR-SC-003": "reads Services, Ingresses and routes; the variable may come from a ConfigMap",
    "PR-SC-006": "judges an Ingress or route, not a workload",
    "PR-SC-007": "judges a Service, not a workload",
    "PR-MO-001": "reads Services, ServiceMonitors and PodMonitors",
    "PR-MO-002": "reads PrometheusRules",
    "PR-RS-002": "reads PodDisruptionBudgets and HorizontalPodAutoscalers",
    "PR-EX-001": "a warning about the annotations themselves; not translated",
    "PR-PS-001": "judges a ProductionService",
    "PR-LM-001": "the engine's own caps; the apiserver bounds CEL cost itself",
}


@dataclass(frozen=True)
class Placement:
    """Where a built-in rule runs: `apiserver` (all of it), `both` (part), `webhook`."""

    rule_id: str
    where: str
    note: str


def placement(rule: Rule) -> Placement:
    """Where `rule` runs once a policy asks for apiserver enforcement."""
    translation = TRANSLATIONS.get(rule.id)
    if translation is None:
        return Placement(rule.id, "webhook", _ELSEWHERE.get(rule.id, "not translated"))
    note = ""
    if rule.severity is not Severity.ERROR or rule.prod_only or rule.relaxed_in_dev:
        note = "compiled where the policy makes it an error for every workload it decides for"
    if translation.partial is not None:
        return Placement(rule.id, "both", "; ".join(n for n in (translation.partial, note) if n))
    return Placement(rule.id, "apiserver", note)


def placement_table() -> str:
    """docs/admission.md's table of every built-in rule (a unit test keeps it current)."""
    places = {
        "apiserver": "apiserver (VAP)",
        "both": "apiserver (VAP), in part",
        "webhook": "webhook and audit",
    }
    lines = ["| rule | title | default severity | runs in | note |", "|---|---|---|---|---|"]
    for rule in RULES:
        where = placement(rule)
        lines.append(
            f"| {rule.id} | {rule.title} | {rule.severity.value} | {places[where.where]} | "
            f"{where.note or '—'} |"
        )
    return "\n".join(lines) + "\n"


# -- globs, selectors and exemptions in CEL ------------------------------------------------


def glob_regex(glob: str) -> str | None:
    """A shell glob (`*`, `?`) as an anchored RE2 regex, as `fnmatch` matches it; None for a
    glob with a `[...]` class (not translated)."""
    if "[" in glob:
        return None
    parts = []
    for char in glob:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return "^(?s:" + "".join(parts) + ")$"


def _glob_condition(value: str, glob: str) -> str | None:
    if glob == "*":
        return "true"
    regex = glob_regex(glob)
    return None if regex is None else f"{value}.matches({cel_string(regex)})"


def _selector_condition(selector: Selector | None, labels: str) -> str:
    """CEL for `selector.matches(labels)` (rules.selectors: an empty selector matches all)."""
    if selector is None:
        return "true"
    terms = []
    for key, value in sorted(selector.match_labels.items()):
        k = cel_string(key)
        terms.append(f"({k} in {labels} && {labels}[{k}] == {cel_string(value)})")
    for expression in selector.expressions:
        k = cel_string(str(expression.get("key")))
        values = _cel_list(str(v) for v in expression.get("values") or ())
        operator = expression.get("operator")
        if operator == "In":
            terms.append(f"({k} in {labels} && {labels}[{k}] in {values})")
        elif operator == "NotIn":
            terms.append(f"(!({k} in {labels}) || !({labels}[{k}] in {values}))")
        elif operator == "Exists":
            terms.append(f"({k} in {labels})")
        elif operator == "DoesNotExist":
            terms.append(f"!({k} in {labels})")
        else:
            terms.append("false")
    return " && ".join(terms) if terms else "true"


_NAMESPACE_LABELS: Final = (
    "(namespaceObject != null && has(namespaceObject.metadata.labels) "
    "? namespaceObject.metadata.labels : {})"
)


def _annotation_exempts(rule_id: str, annotations: str) -> str:
    """CEL for "the exemption annotation in `annotations` exempts `rule_id` with a reason of
    its own" (`rules.policy.exemption_reasons`)."""
    listed = f"{annotations}[{cel_string(ANNOTATION_EXEMPT)}]"
    reasons = f"{annotations}[{cel_string(ANNOTATION_EXEMPT_REASON)}]"
    rid = cel_string(rule_id)
    own = cel_string(r"^\s*" + re.escape(rule_id) + r"\s*:\s*\S")
    entry = cel_string(r"^\s*PR-[A-Z]{2}-[0-9]{3}\s*:")
    return (
        f"({cel_string(ANNOTATION_EXEMPT)} in {annotations} "
        f"&& {cel_string(ANNOTATION_EXEMPT_REASON)} in {annotations} "
        f"&& {listed}.split(',').exists(p, p.trim() == {rid}) "
        f"&& ({reasons}.split(';').exists(s, s.matches({own})) "
        f"|| ({listed}.split(',').all(p, p.trim() == '' || p.trim() == {rid}) "
        f"&& {reasons}.split(';').exists(s, s.trim() != '' && !s.matches({entry})))))"
    )


def _exception_covers(exception: CompiledException) -> str:
    terms = [f"request.namespace == {cel_string(exception.namespace)}"]
    if exception.names is not None:
        terms.append(f"variables.name in {_cel_list(sorted(exception.names))}")
    if exception.kinds is not None:
        terms.append(f"object.kind in {_cel_list(sorted(exception.kinds))}")
    if exception.selector is not None:
        terms.append(_selector_condition(exception.selector, "variables.labels"))
    return "(" + " && ".join(terms) + ")"


# -- planning one policy ---------------------------------------------------------------------

_STRICTNESS: Final = {Mode.ENFORCE: 2, Mode.AUDIT: 1, Mode.OFF: 0}


@dataclass(frozen=True, kw_only=True)
class CustomRuleSource:
    """A custom rule as the policy spells it (`spec.customRules[]`)."""

    id: str
    title: str
    severity: str
    kinds: tuple[str, ...]
    expression: str
    message_expression: str | None


@dataclass(kw_only=True)
class VapPlan:
    """What one policy compiles to, and what it leaves to the webhook (and why)."""

    policy: str
    mode: Mode
    validations: list[dict[str, Any]] = field(default_factory=list)
    compiled: list[str] = field(default_factory=list)
    left_to_webhook: dict[str, str] = field(default_factory=dict)


def _severities(rule: Rule, policy: CompiledPolicy) -> set[Severity | None]:
    """The rule's severity in every environment a workload of the policy can be in."""
    environments = (
        [Environment.PROD]
        if policy.environment_value is Environment.PROD
        else [Environment.DEV, Environment.STAGING, Environment.PROD]
    )
    found: set[Severity | None] = set()
    for environment in environments:
        severity = rule.severity_in(environment)
        if severity is not None:
            severity = policy.config.severity.get(rule.id, severity)
        found.add(severity)
    return found


def _annotation_may_exempt(policy: CompiledPolicy, rule_id: str) -> bool:
    """Whether the policy lets the annotation exempt an error-severity `rule_id`."""
    allow = policy.annotation_allow or (
        AnnotationAllowance.WARNINGS if policy.mode is Mode.ENFORCE else AnnotationAllowance.ALL
    )
    return allow is AnnotationAllowance.ALL or rule_id in policy.annotation_rules


def _kind_condition(kinds: Iterable[str]) -> str:
    judged = sorted(set(kinds) | {k for k, like in _JUDGED_AS.items() if like in kinds})
    return f"object.kind in {_cel_list(judged)}"


def _waivers(
    rule_id: str, policy: CompiledPolicy, exceptions: Sequence[CompiledException]
) -> tuple[list[str], str | None]:
    """(CEL terms any of which waives the rule for a workload, why it cannot be compiled)."""
    waivers: list[str] = []
    for exemption in policy.config.exemptions:
        if rule_id not in exemption.rules:
            continue
        terms = [
            _glob_condition("request.namespace", exemption.namespace),
            _glob_condition("variables.name", exemption.name),
            _glob_condition("object.kind", exemption.kind),
        ]
        if exemption.image != "*":
            regex = glob_regex(exemption.image)
            terms.append(
                None
                if regex is None
                else "(size(variables.allContainers) > 0 && variables.allContainers.all("
                f"c, has(c.image) && c.image.matches({cel_string(regex)})))"
            )
        if any(term is None for term in terms):
            return [], "a policy exemption uses a glob with a [...] class"
        inner = [t for t in terms if t is not None and t != "true"]
        waivers.append("(" + (" && ".join(inner) or "true") + ")")
    if _annotation_may_exempt(policy, rule_id):
        waivers.append(_annotation_exempts(rule_id, "variables.annotations"))
        waivers.append(_annotation_exempts(rule_id, "variables.templateAnnotations"))
    for exception in exceptions:
        if rule_id in exception.reasons:
            waivers.append(_exception_covers(exception))
    return waivers, None


def _validation(
    rule_id: str, kinds: Iterable[str], expression: str, message: str, waivers: list[str]
) -> dict[str, Any]:
    guard = ["!variables.decides", f"!({_kind_condition(kinds)})", *waivers]
    return {
        "expression": " || ".join([*guard, f"({expression})"]),
        "messageExpression": f"{cel_string(rule_id + ': ')} + ({message})",
        "reason": "Forbidden",
    }


def _custom_rules(policy_obj: Mapping[str, Any]) -> list[CustomRuleSource]:
    spec = policy_obj.get("spec")
    raw = spec.get("customRules") if isinstance(spec, Mapping) else None
    found: list[CustomRuleSource] = []
    for item in raw if isinstance(raw, list) else ():
        if not isinstance(item, Mapping):
            continue
        kinds = item.get("kinds") or sorted(WORKLOAD_KINDS)
        message = item.get("messageExpression")
        found.append(
            CustomRuleSource(
                id=str(item.get("id", "")),
                title=str(item.get("title", "")),
                severity=str(item.get("severity", "error")),
                kinds=tuple(str(k) for k in kinds),
                expression=str(item.get("expression", "")),
                message_expression=str(message) if message else None,
            )
        )
    return found


def _translation(rule_id: str, policy: CompiledPolicy) -> Translation | None:
    """The rule's translation under the policy's settings (its sensitive names)."""
    if rule_id == "PR-LG-003":
        words = tuple(policy.config.sensitive_names)
        return _literal_secrets_translation(sensitive_names(words))
    return TRANSLATIONS.get(rule_id)


def plan_policy(
    policy_obj: Mapping[str, Any],
    *,
    exceptions: Sequence[CompiledException] = (),
    now: datetime | None = None,
) -> VapPlan:
    """The validations `policy_obj` compiles to; raises `PolicyError` if it is invalid.

    `exceptions`: the ReadinessExceptions in force (those refused at `now` under this
    policy's maxExceptionDays are left out).
    """
    policy = compile_policy(policy_obj)
    moment = now or datetime.now(UTC)
    active = [
        e
        for e in exceptions
        if e.refusal(moment, policy.max_exception, f"{POLICY_KIND} {policy.name}") is None
    ]
    plan = VapPlan(policy=policy.name, mode=policy.mode)
    disabled = set(policy.config.disabled)
    for rule in RULES:
        if rule.id in disabled:
            continue
        translation = _translation(rule.id, policy)
        if translation is None:
            continue
        severities = _severities(rule, policy)
        if severities != {Severity.ERROR}:
            if Severity.ERROR in severities:
                plan.left_to_webhook[rule.id] = "an error only in some environments"
            continue
        waivers, problem = _waivers(rule.id, policy, active)
        if problem is not None:
            plan.left_to_webhook[rule.id] = problem
            continue
        plan.validations.append(
            _validation(rule.id, rule.kinds, translation.expression, translation.message, waivers)
        )
        plan.compiled.append(rule.id)
    for custom in _custom_rules(policy_obj):
        if custom.id in disabled:
            continue
        severity = policy.config.severity.get(custom.id, Severity(custom.severity))
        if severity is not Severity.ERROR:
            continue
        waivers, problem = _waivers(custom.id, policy, active)
        if problem is not None:
            plan.left_to_webhook[custom.id] = problem
            continue
        message = custom.message_expression or cel_string(custom.title)
        plan.validations.append(
            _validation(custom.id, custom.kinds, custom.expression, message, waivers)
        )
        plan.compiled.append(custom.id)
    return plan


def _decides(policy: CompiledPolicy, others: Sequence[CompiledPolicy]) -> str:
    """CEL: `policy` decides for the object (no earlier policy selects it; an Audit policy
    yields to a namespace labelled prodready.io/enforce)."""
    rank = (-_STRICTNESS[policy.mode], policy.name)
    terms = []
    for other in others:
        if other.name == policy.name or (-_STRICTNESS[other.mode], other.name) >= rank:
            continue
        selects = " && ".join(
            [
                _selector_condition(other.namespace_selector, _NAMESPACE_LABELS),
                _selector_condition(other.object_selector, "variables.labels"),
            ]
        )
        terms.append(f"!({selects})")
    if policy.mode is not Mode.ENFORCE:
        enforce = cel_string(ENFORCE_LABEL)
        terms.append(
            f"!({enforce} in {_NAMESPACE_LABELS} && {_NAMESPACE_LABELS}[{enforce}] == 'true')"
        )
    return " && ".join(terms) if terms else "true"


def _label_selector(selector: Selector | None) -> dict[str, Any]:
    if selector is None:
        return {}
    body: dict[str, Any] = {}
    if selector.match_labels:
        body["matchLabels"] = dict(selector.match_labels)
    if selector.expressions:
        body["matchExpressions"] = [dict(e) for e in selector.expressions]
    return body


def vap_name(policy_name: str) -> str:
    """The name of the VAP and binding of a policy."""
    return f"{NAME_PREFIX}{policy_name}"


def policy_objects(
    policy_obj: Mapping[str, Any],
    *,
    others: Sequence[Mapping[str, Any]] = (),
    exceptions: Sequence[Mapping[str, Any]] = (),
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], VapPlan]:
    """The VAP and binding for `policy_obj` ([] in mode Off or when nothing compiles), and
    the plan. `others`: every ReadinessPolicy (to know which decides), `exceptions`: the
    ReadinessException objects. Raises `PolicyError` for an invalid policy or exception."""
    compiled_exceptions = [compile_exception(e) for e in exceptions]
    plan = plan_policy(policy_obj, exceptions=compiled_exceptions, now=now)
    policy = compile_policy(policy_obj)
    if policy.mode is Mode.OFF or not plan.validations:
        return [], plan
    compiled_others = []
    for other in others:
        try:
            compiled_others.append(compile_policy(other))
        except PolicyError:
            continue  # the operator leaves an invalid policy out; so does resolve
    name = vap_name(policy.name)
    labels = {MANAGED_BY_LABEL: "prodready", POLICY_LABEL: policy.name}
    metadata = policy_obj.get("metadata") or {}
    owner = (
        [
            {
                "apiVersion": str(policy_obj.get("apiVersion")),
                "kind": POLICY_KIND,
                "name": policy.name,
                "uid": str(metadata["uid"]),
                "controller": True,
                "blockOwnerDeletion": False,
            }
        ]
        if isinstance(metadata, Mapping) and metadata.get("uid")
        else None
    )
    skip_controlled = (
        "!(object.kind in ['Pod', 'ReplicaSet'] && has(object.metadata.ownerReferences) && "
        "object.metadata.ownerReferences.exists(o, has(o.controller) && o.controller))"
    )
    vap: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": VAP_KIND,
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [group],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": plurals,
                    }
                    for group, plurals in _grouped_resources()
                ],
            },
            "matchConditions": [
                {"name": "not-controlled", "expression": skip_controlled},
                {
                    "name": "not-deleted",
                    "expression": "!has(object.metadata.deletionTimestamp)",
                },
                {
                    "name": "spec-changed",
                    "expression": "request.operation != 'UPDATE' || oldObject == null || "
                    "!has(oldObject.spec) || !has(object.spec) || object.spec != oldObject.spec",
                },
            ],
            # namespaceObject is null in matchConditions: which policy decides is a variable
            # every validation reads.
            "variables": [
                *({"name": n, "expression": e} for n, e in _VARIABLES),
                {"name": "decides", "expression": _decides(policy, compiled_others)},
            ],
            "validations": plan.validations,
        },
    }
    binding: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": BINDING_KIND,
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"] if policy.mode is Mode.ENFORCE else ["Warn"],
            "matchResources": {
                "namespaceSelector": _label_selector(policy.namespace_selector),
                "objectSelector": _label_selector(policy.object_selector),
            },
        },
    }
    if owner is not None:
        vap["metadata"]["ownerReferences"] = owner
        binding["metadata"]["ownerReferences"] = owner
    return [vap, binding], plan


def _grouped_resources() -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    for resource in ADMITTED_WORKLOAD_RESOURCES:
        groups.setdefault(resource.group, []).append(resource.plural)
    return sorted(groups.items())


def objects_for(
    objects: Iterable[Mapping[str, Any]], *, now: datetime | None = None
) -> tuple[list[dict[str, Any]], list[VapPlan]]:
    """Every policy among `objects` (with the exceptions among them): the VAPs and
    bindings, and each policy's plan. Raises `PolicyError`."""
    items = list(objects)
    policies = [o for o in items if o.get("kind") == POLICY_KIND]
    exceptions = [o for o in items if o.get("kind") == EXCEPTION_KIND]
    generated: list[dict[str, Any]] = []
    plans: list[VapPlan] = []
    for policy in policies:
        found, plan = policy_objects(policy, others=policies, exceptions=exceptions, now=now)
        generated.extend(found)
        plans.append(plan)
    return generated, plans
