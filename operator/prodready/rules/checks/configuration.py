"""Seed section 5, configuration: PR-CF-001 … PR-CF-003, and the exemption check PR-EX-001."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prodready.rules.context import (
    ENVIRONMENT_KEY,
    EXEMPT_KEY,
    EXEMPT_REASON_KEY,
    Workload,
    mapping,
    normalise_environment,
    sequence,
)
from prodready.rules.envvars import env_entries
from prodready.rules.subject import (
    SOURCE_NAMES,
    Outcome,
    Subject,
    escape_pointer,
    failed,
    judged,
    passed,
)


def secrets_by_reference(subject: Subject) -> Iterator[Outcome]:
    """PR-CF-001: secrets reach the container only by Secret reference."""
    workload = subject.workload
    settings = subject.settings
    context = workload.context
    for container in workload.all_containers:
        problems: list[tuple[str, str]] = []
        for index, entry in env_entries(container):
            name = str(entry["name"])
            value_from = entry.get("valueFrom")
            if value_from is None:
                value = entry.get("value")
                reason = settings.secret_reason(name, "" if value is None else str(value))
                if reason is not None:
                    problems.append((f"env[{index}].value", f"{name} is set from a literal value"))
            elif "configMapKeyRef" in mapping(value_from) and settings.is_sensitive_name(name):
                config_map = mapping(mapping(value_from).get("configMapKeyRef")).get("name")
                problems.append(
                    (f"env[{index}].valueFrom", f"{name} comes from ConfigMap {config_map}")
                )
        for index, source in enumerate(sequence(container.spec.get("envFrom"))):
            ref_name = mapping(mapping(source).get("configMapRef")).get("name")
            config_map = context.config_maps.get((workload.namespace, str(ref_name)))
            if config_map is None:
                continue
            keys = sorted(
                k for k in mapping(config_map.get("data")) if settings.is_sensitive_name(k)
            )
            if keys:
                problems.append(
                    (
                        f"envFrom[{index}].configMapRef",
                        f"ConfigMap {ref_name} holds secret-looking keys ({', '.join(keys)})",
                    )
                )
        yield judged(
            container,
            problems,
            f"{container.path}.env",
            f"container {container.name} receives secrets only by Secret reference",
        )


def secret_references(workload: Workload) -> Iterator[tuple[str, str, str | None]]:
    """(path, Secret name, key or None) for every non-optional Secret reference."""
    for container in workload.all_containers:
        for index, entry in env_entries(container):
            ref = mapping(mapping(entry.get("valueFrom")).get("secretKeyRef"))
            if ref and ref.get("optional") is not True:
                yield (
                    f"{container.path}.env[{index}].valueFrom.secretKeyRef",
                    str(ref.get("name", "")),
                    str(ref.get("key", "")),
                )
        for index, source in enumerate(sequence(container.spec.get("envFrom"))):
            ref = mapping(mapping(source).get("secretRef"))
            if ref and ref.get("optional") is not True:
                yield f"{container.path}.envFrom[{index}].secretRef", str(ref.get("name", "")), None
    for index, raw_volume in enumerate(sequence(workload.pod_spec.get("volumes"))):
        volume = mapping(raw_volume)
        path = f"{workload.pod_path}.volumes[{index}]"
        secret = mapping(volume.get("secret"))
        if secret and secret.get("optional") is not True:
            yield from _volume_keys(f"{path}.secret", str(secret.get("secretName", "")), secret)
        for position, projection in enumerate(
            sequence(mapping(volume.get("projected")).get("sources"))
        ):
            secret = mapping(mapping(projection).get("secret"))
            if secret and secret.get("optional") is not True:
                yield from _volume_keys(
                    f"{path}.projected.sources[{position}].secret",
                    str(secret.get("name", "")),
                    secret,
                )
    for index, pull in enumerate(sequence(workload.pod_spec.get("imagePullSecrets"))):
        yield (
            f"{workload.pod_path}.imagePullSecrets[{index}]",
            str(mapping(pull).get("name", "")),
            None,
        )


def _volume_keys(
    path: str, name: str, source: Mapping[str, Any]
) -> Iterator[tuple[str, str, str | None]]:
    items = sequence(source.get("items"))
    if not items:
        yield path, name, None
    for item in items:
        yield path, name, str(mapping(item).get("key", ""))


def referenced_secrets_exist(subject: Subject) -> Iterator[Outcome]:
    """PR-CF-002: every referenced Secret and key exists.

    Decided only where it can be: a Secret in the input (or one an ExternalSecret or
    SealedSecret in the input produces), one the cluster said does not exist (looked up by
    name: `prodready.rules.lookups`), or any Secret when `secrets_complete` says the input
    holds them all. References to Secrets that are simply not visible are not judged.
    """
    workload = subject.workload
    context = workload.context
    checked = 0
    for path, name, key in secret_references(workload):
        secret = context.secrets.get((workload.namespace, name))
        if secret is None:
            if (workload.namespace, name) in context.generated_secrets:
                checked += 1
            elif (
                subject.settings.secrets_complete
                or (workload.namespace, name) in context.absent_secrets
            ):
                yield failed(path, f"Secret {name} does not exist")
            continue
        checked += 1
        if key is None or ("data" not in secret and "stringData" not in secret):
            continue
        keys = set(mapping(secret.get("data"))) | set(mapping(secret.get("stringData")))
        if key not in keys:
            yield failed(path, f"Secret {name} has no key {key}")
            checked -= 1
    if checked:
        yield passed(
            f"{workload.pod_path}", f"{checked} Secret reference(s) resolve to existing Secrets"
        )


def environment_declared(subject: Subject) -> Iterator[Outcome]:
    """PR-CF-003: the environment (dev / staging / prod) is declared."""
    decision = subject.environment
    workload = subject.workload
    labels_pointer = "/metadata/labels"
    patch = [
        {
            "op": "add",
            "path": f"{labels_pointer}/{escape_pointer(ENVIRONMENT_KEY)}",
            "value": decision.environment.value,
        }
        if isinstance(workload.metadata.get("labels"), Mapping)
        else {
            "op": "add",
            "path": labels_pointer,
            "value": {ENVIRONMENT_KEY: decision.environment.value},
        }
    ]
    if not decision.declared:
        fallback = (
            f"the caller's default {decision.environment.value}"
            if decision.source == "argument"
            else "the strictest profile, prod"
        )
        yield failed(
            f"metadata.labels.{ENVIRONMENT_KEY}",
            f"no environment is declared; evaluated as {fallback}",
            patch=None if subject.rendered else patch,
        )
        return
    unknown = [(s, v) for s, v in decision.declared if normalise_environment(v) is None]
    if unknown:
        source, value = unknown[0]
        yield failed(
            f"metadata.labels.{ENVIRONMENT_KEY}",
            f"the environment {value!r} ({SOURCE_NAMES[source]}) is not dev, staging or prod; "
            f"evaluated as {decision.environment.value}",
        )
        return
    distinct = {normalise_environment(v) for _, v in decision.declared}
    if len(distinct) > 1:
        listed = ", ".join(f"{v} ({SOURCE_NAMES[s]})" for s, v in decision.declared)
        yield failed(
            f"metadata.labels.{ENVIRONMENT_KEY}",
            f"the declared environments disagree: {listed}; "
            f"evaluated as {decision.environment.value} (from the {SOURCE_NAMES[decision.source]})",
        )
        return
    yield passed(
        f"metadata.labels.{ENVIRONMENT_KEY}",
        f"environment {decision.environment.value} declared by the {SOURCE_NAMES[decision.source]}",
    )


def exemption_annotations(subject: Subject, known: frozenset[str]) -> Iterator[Outcome]:
    """PR-EX-001: exemption annotations name known rules and give a reason."""
    workload = subject.workload
    places = [("metadata", workload.metadata)]
    if workload.template_metadata is not workload.metadata:
        places.append(
            (f"{workload.pod_path.removesuffix('.spec')}.metadata", workload.template_metadata)
        )
    for prefix, metadata in places:
        annotations = mapping(metadata.get("annotations"))
        listed = annotations.get(EXEMPT_KEY)
        if listed is None:
            continue
        path = f"{prefix}.annotations.{EXEMPT_KEY}"
        ids = [part.strip() for part in str(listed).split(",") if part.strip()]
        unknown = [rule_id for rule_id in ids if rule_id not in known]
        reason = str(annotations.get(EXEMPT_REASON_KEY, "")).strip()
        if unknown:
            yield failed(path, f"unknown rule ID(s) in {EXEMPT_KEY}: {', '.join(unknown)}")
        elif not ids:
            yield failed(path, f"{EXEMPT_KEY} names no rule")
        elif not reason:
            yield failed(
                f"{prefix}.annotations",
                f"{EXEMPT_KEY} exempts {', '.join(ids)} without a {EXEMPT_REASON_KEY}",
            )
        else:
            yield passed(path, f"exempts {', '.join(ids)}: {reason}")
