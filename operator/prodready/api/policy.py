"""The policy API: `ReadinessPolicy` (cluster-scoped) and `ReadinessException` (namespaced).

Like the ProductionService models, these classes validate objects in Python (`prodready
validate --policy FILE`, the operator's store) and are the source the CRDs' schemas, CEL
rules and `kubectl explain` text are generated from (`prodready.api.crd`). A CEL rule and
the pydantic validator beside it say the same thing; tests/unit/test_api_policy.py and
tests/e2e/test_api_policy.py check both.

What the fields *mean* to the rules (which policy decides, how exceptions apply, the
environment floor) is `prodready.rules.policy`'s job; this module only says what a valid
object looks like. Rule IDs are checked against the pattern here and against the registry
there (an unknown ID makes a policy not Ready, it does not make it invalid: the registry
grows between versions, the stored objects do not).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Literal, Self, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from prodready.api.cel import cel, validations
from prodready.api.enforcement import AnnotationAllowance, Mode
from prodready.api.environment import Environment
from prodready.api.models import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    ENV_NAME_PATTERN,
    RULE_ID_MAX_LENGTH,
    RULE_ID_PATTERN_ANY,
    Condition,
)
from prodready.api.resource import ADMITTED_WORKLOAD_KINDS

POLICY_KIND: Final = "ReadinessPolicy"
POLICY_LIST_KIND: Final = "ReadinessPolicyList"
POLICY_PLURAL: Final = "readinesspolicies"
POLICY_SINGULAR: Final = "readinesspolicy"
POLICY_SHORT_NAMES: Final = ("rpol",)

EXCEPTION_KIND: Final = "ReadinessException"
EXCEPTION_LIST_KIND: Final = "ReadinessExceptionList"
EXCEPTION_PLURAL: Final = "readinessexceptions"
EXCEPTION_SINGULAR: Final = "readinessexception"
EXCEPTION_SHORT_NAMES: Final = ("rex",)

CATEGORIES: Final = ("prodready",)

DEFAULT_MAX_EXCEPTION_DAYS: Final = 90
MAX_EXCEPTION_DAYS_CAP: Final = 366
"""No policy may allow an exception longer than a year: an exception is a loan, not a rule."""

# PR-LM-001 bounds the work one object costs; nothing may exempt, disable or downgrade it.
# (The rules layer says the same in prodready.rules.limits; the API cannot import it.)
UNEXEMPTABLE_RULE: Final = "PR-LM-001"

# A label key: an optional DNS-subdomain prefix and a name of at most 63 characters.
LABEL_KEY_PATTERN: Final = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
RESERVED_RULE_PREFIX: Final = "PR-"
MAX_CUSTOM_RULES: Final = 64
WorkloadKind = Literal[
    "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"
]
WORKLOAD_KINDS: Final[tuple[str, ...]] = get_args(WorkloadKind)
# A Literal needs its values spelled out; they are the one list, checked at import.
assert WORKLOAD_KINDS == ADMITTED_WORKLOAD_KINDS, "api.resource.ADMITTED_WORKLOAD_KINDS"

# Something other than blanks: a reason of spaces is no reason. Unanchored on purpose (both
# Go's regexp and pydantic search for it).
NOT_BLANK_PATTERN: Final = r"\S"
GLOB_PATTERN: Final = r"^[^\s]+$"


class _Model(BaseModel):
    """Spec models: camelCase on the wire, unknown fields are errors, values immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class _StatusModel(BaseModel):
    """Status models: camelCase, tolerant of fields a newer operator may add."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


RuleId = Annotated[
    str,
    Field(
        pattern=RULE_ID_PATTERN_ANY,
        max_length=RULE_ID_MAX_LENGTH,
        description="A rule ID: a checklist rule such as PR-HC-001, or a custom rule's ID.",
    ),
]
Reason = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        pattern=NOT_BLANK_PATTERN,
        description="Why: free text, reported with every result it changes.",
    ),
]
Glob = Annotated[str, Field(min_length=1, max_length=253, pattern=GLOB_PATTERN)]

_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)
_RULE_ID = re.compile(RULE_ID_PATTERN_ANY)


def _label_key(key: str) -> str:
    if len(key) > 317 or not _LABEL_KEY.match(key):
        raise ValueError(f"{key[:64]!r} is not a label key")
    return key


def _rule_id_key(key: str) -> str:
    if len(key) > RULE_ID_MAX_LENGTH or not _RULE_ID.match(key):
        raise ValueError(f"{key[:64]!r} is not a rule ID such as PR-HC-001 or ACME-OWN-001")
    return key


# Map keys: a structural schema cannot constrain them (no propertyNames), so the pattern is
# a validator here and a CEL rule in the CRD.
LabelKey = Annotated[str, AfterValidator(_label_key)]
RuleIdKey = Annotated[str, AfterValidator(_rule_id_key)]


class LabelSelectorRequirement(_Model):
    """One `matchExpressions` entry of a Kubernetes label selector."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) "
                ": (!has(self.values) || size(self.values) == 0)",
                "In and NotIn need at least one value; Exists and DoesNotExist take none",
            )
        )
    )

    key: str = Field(max_length=317, pattern=LABEL_KEY_PATTERN, description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In, NotIn, Exists or DoesNotExist."
    )
    values: list[Annotated[str, Field(max_length=63)]] = Field(
        [],
        max_length=64,
        description="The values for In and NotIn; empty for Exists and DoesNotExist.",
    )

    @model_validator(mode="after")
    def _values_fit_the_operator(self) -> Self:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(_Model):
    """A Kubernetes label selector; an empty one selects everything."""

    match_labels: dict[LabelKey, Annotated[str, Field(max_length=63)]] = Field(
        {}, max_length=64, description="Labels that must all be present with these values."
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        [], max_length=64, description="Requirements that must all hold."
    )


class EnvironmentSource(_Model):
    """Where the environment of the selected workloads comes from: exactly one of the two."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.value) != has(self.namespaceLabel)",
                "set exactly one of environment.value and environment.namespaceLabel",
            )
        )
    )

    value: Environment | None = Field(
        None, description="dev, staging or prod, for every workload the policy selects."
    )
    namespace_label: str | None = Field(
        None,
        max_length=317,
        pattern=LABEL_KEY_PATTERN,
        description="The Namespace label to read it from, e.g. prodready.io/environment.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.value is None) == (self.namespace_label is None):
            raise ValueError("set exactly one of environment.value and environment.namespaceLabel")
        return self


class EnvVarNames(_Model):
    """Names of the container environment variables the rules read."""

    log_format: str = Field("LOG_FORMAT", max_length=128, pattern=ENV_NAME_PATTERN)
    log_level: str = Field("LOG_LEVEL", max_length=128, pattern=ENV_NAME_PATTERN)
    debug: str = Field("DEBUG", max_length=128, pattern=ENV_NAME_PATTERN)
    cors_allowed_origins: str = Field(
        "CORS_ALLOWED_ORIGINS", max_length=128, pattern=ENV_NAME_PATTERN
    )
    rate_limit: str = Field("RATE_LIMIT", max_length=128, pattern=ENV_NAME_PATTERN)
    environment: str = Field("ENVIRONMENT", max_length=128, pattern=ENV_NAME_PATTERN)
    shutdown_timeout: str = Field("SHUTDOWN_TIMEOUT", max_length=128, pattern=ENV_NAME_PATTERN)


class PolicyExemption(_Model):
    """Exempt the matching workloads from the listed rules, for a stated reason.

    Every glob (shell-style: `*`, `?`, `[...]`) must match; `*` matches anything. `image`
    matches when every container of the workload runs an image it matches.
    """

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                f"!self.rules.exists(r, r == '{UNEXEMPTABLE_RULE}')",
                f"{UNEXEMPTABLE_RULE} bounds the work one object may cost; it cannot be exempted",
                field_path=".rules",
            )
        )
    )

    rules: list[RuleId] = Field(min_length=1, max_length=64, description="The rules exempted.")
    namespace: Glob = Field("*", description="Namespace glob.")
    name: Glob = Field("*", description="Workload name glob.")
    kind: Glob = Field("*", description="Workload kind glob, e.g. Deployment.")
    image: Glob = Field("*", description="Image glob every container's image must match.")
    reason: Reason

    @model_validator(mode="after")
    def _not_the_limits_rule(self) -> Self:
        if UNEXEMPTABLE_RULE in self.rules:
            raise ValueError(
                f"{UNEXEMPTABLE_RULE} bounds the work one object may cost; it cannot be exempted"
            )
        return self


class AnnotationExemptions(_Model):
    """What a workload's own `prodready.io/exempt` annotation may exempt.

    Whoever can edit a workload can annotate it, so in Enforce the default lets the
    annotation exempt only warning-severity rules; exceptions approved through
    ReadinessException (which RBAC governs) are the way past an error.
    """

    allow: AnnotationAllowance | None = Field(
        None,
        description="All, Warnings (rules at warning severity under this policy) or None. "
        "Default: Warnings in Enforce, All in Audit and Off.",
    )
    rules: list[RuleId] = Field(
        [],
        max_length=64,
        description="Rules the annotation may exempt whatever their severity.",
    )


class CustomRule(_Model):
    """A rule of the policy's own, in CEL: what a ValidatingAdmissionPolicy would check.

    The expression sees `object` (the workload as admitted) and `namespaceObject` (its
    Namespace, null offline when absent from the input) and returns a bool: true passes.
    """

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                f"!self.id.startsWith('{RESERVED_RULE_PREFIX}')",
                f"a custom rule's ID may not start with {RESERVED_RULE_PREFIX}: that prefix "
                "is the checklist's",
                field_path=".id",
            )
        )
    )

    id: str = Field(
        max_length=RULE_ID_MAX_LENGTH,
        pattern=RULE_ID_PATTERN_ANY,
        description="The rule's ID in your own prefix, e.g. ACME-OWN-001 (never PR-).",
    )
    title: str = Field(
        min_length=1,
        max_length=256,
        pattern=NOT_BLANK_PATTERN,
        description="What the rule requires, in one line; the failure message by default.",
    )
    severity: Literal["error", "warning"] = Field(
        "error", description="error (denies in Enforce) or warning."
    )
    kinds: list[WorkloadKind] | None = Field(
        None,
        min_length=1,
        max_length=len(WORKLOAD_KINDS),
        description="The workload kinds it applies to; absent: every workload kind.",
    )
    expression: str = Field(
        min_length=1,
        max_length=4096,
        pattern=NOT_BLANK_PATTERN,
        description="CEL over object and namespaceObject, returning a bool: true passes.",
    )
    message_expression: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="CEL returning the failure message; absent: the title.",
    )
    fix: str | None = Field(None, max_length=1024, description="How to fix a failure.")

    @model_validator(mode="after")
    def _own_prefix(self) -> Self:
        if self.id.startswith(RESERVED_RULE_PREFIX):
            raise ValueError(
                f"a custom rule's ID may not start with {RESERVED_RULE_PREFIX}: that prefix "
                "is the checklist's"
            )
        return self


_CEL_POLICY_SPEC: Final = validations(
    cel(
        f"!has(self.disabled) || !self.disabled.exists(r, r == '{UNEXEMPTABLE_RULE}')",
        f"{UNEXEMPTABLE_RULE} bounds the work one object may cost; it cannot be disabled",
        field_path=".disabled",
    ),
    cel(
        f"!has(self.severity) || !('{UNEXEMPTABLE_RULE}' in self.severity)",
        f"{UNEXEMPTABLE_RULE} bounds the work one object may cost; its severity is fixed",
        field_path=".severity",
    ),
    cel(
        "!has(self.annotationExemptions) || !has(self.annotationExemptions.rules) || "
        f"!self.annotationExemptions.rules.exists(r, r == '{UNEXEMPTABLE_RULE}')",
        f"{UNEXEMPTABLE_RULE} bounds the work one object may cost; it cannot be exempted",
        field_path=".annotationExemptions.rules",
    ),
)


class ReadinessPolicySpec(_Model):
    """Which workloads a policy covers, how strictly, and with what settings."""

    model_config = ConfigDict(json_schema_extra=_CEL_POLICY_SPEC)

    mode: Mode = Field(
        Mode.AUDIT,
        description="Enforce: admission denies a workload that fails an error-severity rule. "
        "Audit: admission warns, reports record. Off: the selected workloads are not checked.",
    )
    namespace_selector: LabelSelector | None = Field(
        None, description="Namespaces whose workloads the policy covers; absent: every one."
    )
    object_selector: LabelSelector | None = Field(
        None, description="Workloads (by their own labels) the policy covers; absent: all."
    )
    environment: EnvironmentSource | None = Field(
        None,
        description="The environment of the selected workloads. A floor: a workload may "
        "declare a stricter one, never a laxer one. Absent: the Namespace's "
        "prodready.io/environment label, if any.",
    )
    severity: dict[RuleIdKey, Literal["error", "warning"]] = Field(
        {},
        max_length=128,
        json_schema_extra=validations(
            cel(
                f"self.all(k, size(k) <= {RULE_ID_MAX_LENGTH} && "
                f"k.matches('{RULE_ID_PATTERN_ANY}'))",
                "severity: every key must be a rule ID such as PR-HC-001 or ACME-OWN-001",
            )
        ),
        description="Rule ID to error or warning, in every environment.",
    )
    disabled: list[RuleId] = Field(
        [], max_length=128, description="Rules not evaluated at all (no result, not even skip)."
    )
    env_vars: EnvVarNames = Field(
        EnvVarNames(),
        description="The names of the environment variables the rules read.",
    )
    sensitive_names: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Words that make a variable name sensitive (PR-LG-003, PR-CF-001); "
        "replaces the built-in list. Absent: the built-in list.",
    )
    secrets_complete: bool = Field(
        False,
        description="Offline: a referenced Secret absent from the input counts as missing.",
    )
    third_party_images: list[Glob] = Field(
        [],
        max_length=128,
        description="Image globs of software the team does not build (e.g. "
        "docker.io/library/*): the rules that read the app's own variables (LOG_FORMAT, "
        "LOG_LEVEL, DEBUG, CORS) note them instead of failing them.",
    )
    health_path: str | None = Field(
        None,
        max_length=256,
        pattern=r"^/[^\s]*$",
        description="The health endpoint a probe fix points at when a workload declares "
        "none (annotation prodready.io/health-path); absent: no patch is offered.",
    )
    exemptions: list[PolicyExemption] = Field(
        [],
        max_length=128,
        description="Workloads exempt from rules, by namespace, name, kind and image glob, "
        "each with a reason; reported as skip, never dropped.",
    )
    annotation_exemptions: AnnotationExemptions = Field(
        AnnotationExemptions(),
        description="What a workload's own prodready.io/exempt annotation may exempt.",
    )
    enforce_in_apiserver: bool = Field(
        False,
        description="Also enforce the rules that need only the workload itself, and every "
        "custom rule, inside the apiserver: the operator applies a ValidatingAdmissionPolicy "
        "and binding named prodready-<policy> (see docs/admission.md), which keep working "
        "while the webhook is down.",
    )
    max_exception_days: int = Field(
        DEFAULT_MAX_EXCEPTION_DAYS,
        ge=1,
        le=MAX_EXCEPTION_DAYS_CAP,
        description="The longest a ReadinessException may last, from its creation to its "
        "expires; a longer one does not apply.",
    )
    custom_rules: list[CustomRule] = Field(
        [],
        max_length=MAX_CUSTOM_RULES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"]},
        description="Rules of your own in CEL, evaluated beside the checklist's wherever "
        "those are (validate, admission, audit); an expression that does not compile makes "
        "the policy not Ready.",
    )

    @model_validator(mode="after")
    def _custom_rules_once(self) -> Self:
        seen: set[str] = set()
        for rule in self.custom_rules:
            if rule.id in seen:
                raise ValueError(f"customRules: rule ID {rule.id} is defined more than once")
            seen.add(rule.id)
        return self

    @model_validator(mode="after")
    def _limits_rule_untouched(self) -> Self:
        if (
            UNEXEMPTABLE_RULE in self.disabled
            or UNEXEMPTABLE_RULE in self.severity
            or UNEXEMPTABLE_RULE in self.annotation_exemptions.rules
        ):
            raise ValueError(
                f"{UNEXEMPTABLE_RULE} bounds the work one object may cost; it cannot be "
                "disabled, exempted or given another severity"
            )
        return self


class PolicyStatus(_StatusModel):
    """What the operator observed of a policy; written by prodready, never by users."""

    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation the status is for."
    )
    conditions: list[Condition] = Field(
        [],
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="Ready: the policy is in force (False, with why: e.g. an unknown rule ID).",
    )
    matched: int | None = Field(None, ge=0, description="Workloads this policy decides for.")
    compliant: int | None = Field(None, ge=0, description="Of those, compliant ones.")
    non_compliant: int | None = Field(None, ge=0, description="Of those, non-compliant ones.")


class ExceptionRule(_Model):
    """One rule excepted, with its own reason."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                f"self.rule != '{UNEXEMPTABLE_RULE}'",
                f"{UNEXEMPTABLE_RULE} bounds the work one object may cost; it cannot be excepted",
                field_path=".rule",
            )
        )
    )

    rule: RuleId
    reason: Reason

    @model_validator(mode="after")
    def _not_the_limits_rule(self) -> Self:
        if self.rule == UNEXEMPTABLE_RULE:
            raise ValueError(
                f"{UNEXEMPTABLE_RULE} bounds the work one object may cost; it cannot be excepted"
            )
        return self


class ExceptionMatch(_Model):
    """The workloads of the exception's namespace it covers: all the given fields must match.

    At least one of names and selector: an exception for every workload of a namespace is a
    policy change, not an exception.
    """

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.names) || has(self.selector)",
                "set match.names or match.selector: an exception covers named workloads",
            )
        )
    )

    names: list[Annotated[str, Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]] | None = (
        Field(None, min_length=1, max_length=64, description="Workload names.")
    )
    kinds: list[Annotated[str, Field(max_length=63, pattern=r"^[A-Z][A-Za-z0-9]*$")]] | None = (
        Field(None, min_length=1, max_length=16, description="Workload kinds; absent: any.")
    )
    selector: LabelSelector | None = Field(
        None, description="Workloads whose own labels match this selector."
    )

    @model_validator(mode="after")
    def _names_or_selector(self) -> Self:
        if self.names is None and self.selector is None:
            raise ValueError(
                "set match.names or match.selector: an exception covers named workloads"
            )
        return self


class ReadinessExceptionSpec(_Model):
    """Rules some workloads of this namespace need not meet, until a date, and who said so."""

    rules: list[ExceptionRule] = Field(
        min_length=1,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["rule"]},
        description="The rules excepted, each with its own reason.",
    )
    match: ExceptionMatch = Field(description="The workloads covered.")
    expires: datetime = Field(
        description="When the exception stops applying (RFC 3339). No later than the "
        "deciding ReadinessPolicy's maxExceptionDays after creation."
    )
    approved_by: str = Field(
        min_length=1,
        max_length=256,
        pattern=NOT_BLANK_PATTERN,
        description="Who approved it: a person or a ticket.",
    )

    @model_validator(mode="after")
    def _one_entry_per_rule(self) -> Self:
        seen: set[str] = set()
        for entry in self.rules:
            if entry.rule in seen:
                raise ValueError(f"rule {entry.rule} is listed twice; give it one reason")
            seen.add(entry.rule)
        if self.expires.tzinfo is None:
            raise ValueError("expires needs a time zone, e.g. 2026-12-31T00:00:00Z")
        return self


class ExceptionState(StrEnum):
    """Whether an exception applies now."""

    ACTIVE = "Active"
    EXPIRED = "Expired"


class ExceptionStatus(_StatusModel):
    """What the operator observed of an exception; written by prodready, never by users."""

    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation the status is for."
    )
    state: ExceptionState | None = Field(None, description="Active or Expired.")
    conditions: list[Condition] = Field(
        [],
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="Ready: the exception applies (False, with why: expired, longer than "
        "the policy allows, an unknown rule ID).",
    )


class PolicyMeta(BaseModel):
    """The parts of metadata the rules read; everything else is kept as is."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    namespace: str | None = Field(None, max_length=63, pattern=DNS_LABEL_PATTERN)
    generation: int | None = None
    creation_timestamp: datetime | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class ReadinessPolicy(BaseModel):
    """A ReadinessPolicy object."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    api_version: Literal["prodready.io/v1alpha1"]
    kind: Literal["ReadinessPolicy"]
    metadata: PolicyMeta
    spec: ReadinessPolicySpec = Field(default_factory=ReadinessPolicySpec)
    status: PolicyStatus | None = None


class ReadinessException(BaseModel):
    """A ReadinessException object."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    api_version: Literal["prodready.io/v1alpha1"]
    kind: Literal["ReadinessException"]
    metadata: PolicyMeta
    spec: ReadinessExceptionSpec
    status: ExceptionStatus | None = None

    @property
    def namespace(self) -> str:
        """metadata.namespace, or `default` like kubectl."""
        return self.metadata.namespace or "default"


__all__ = [
    "CATEGORIES",
    "EXCEPTION_KIND",
    "EXCEPTION_LIST_KIND",
    "EXCEPTION_PLURAL",
    "EXCEPTION_SHORT_NAMES",
    "EXCEPTION_SINGULAR",
    "POLICY_KIND",
    "POLICY_LIST_KIND",
    "POLICY_PLURAL",
    "POLICY_SHORT_NAMES",
    "POLICY_SINGULAR",
    "AnnotationAllowance",
    "AnnotationExemptions",
    "CustomRule",
    "EnvVarNames",
    "EnvironmentSource",
    "ExceptionMatch",
    "ExceptionRule",
    "ExceptionState",
    "ExceptionStatus",
    "LabelSelector",
    "Mode",
    "PolicyExemption",
    "PolicyStatus",
    "ReadinessException",
    "ReadinessExceptionSpec",
    "ReadinessPolicy",
    "ReadinessPolicySpec",
]
