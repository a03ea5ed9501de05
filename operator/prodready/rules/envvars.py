"""Reading a container's environment variables the way the kubelet assembles them.

`env` entries win over `envFrom` sources; among `envFrom` sources the last one defining a
key wins. A value is *literal* when the manifest (or a ConfigMap in the input) shows it,
*unknown* when it comes from somewhere the rules cannot or will not read (a Secret, a
ConfigMap that is not in the input, a `fieldRef`), and *missing* when nothing can set it.
Unknown values never fail a rule: "set but unknown" is documented behaviour.

With `config_maps_complete` (the engine sets it for a workload whose policy is in
Enforce, where the caller passes every ConfigMap of the namespace) a ConfigMap absent from
the input does not exist: a `configMapKeyRef` to it is missing and an `envFrom` of it
sets nothing, so `optional: true` on a ConfigMap that does not exist cannot hide a
missing variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from prodready.rules.context import Container, Context, mapping, sequence


class ValueState(Enum):
    """Whether a variable's value can be seen."""

    LITERAL = "literal"
    UNKNOWN = "unknown"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class EnvValue:
    """A resolved variable: its state, its value when literal, and where it came from.

    `env_index` is the position of the defining entry in the container's `env` list (None
    when it came from `envFrom`), which lets a rule point at it and patch it.
    """

    state: ValueState
    value: str | None = None
    source: str = ""
    env_index: int | None = None

    @property
    def is_set(self) -> bool:
        """Literal or unknown: something sets the variable."""
        return self.state is not ValueState.MISSING

    @property
    def patchable(self) -> bool:
        """A literal `value:` in the container's own `env` list."""
        return self.state is ValueState.LITERAL and self.source == "env"


MISSING = EnvValue(ValueState.MISSING)


def _config_map_value(
    context: Context, namespace: str, name: object, key: object
) -> tuple[bool, str | None]:
    """(visible, value) of a ConfigMap key; value None when visible but absent."""
    if not isinstance(name, str) or not isinstance(key, str):
        return False, None
    config_map = context.config_maps.get((namespace, name))
    if config_map is None:
        return False, None
    data = mapping(config_map.get("data"))
    value = data.get(key)
    if value is None:
        return True, None
    return True, str(value)


def _secret_keys(context: Context, namespace: str, name: object) -> set[str] | None:
    """The keys of a Secret in the input, or None when not visible / keys not shown."""
    if not isinstance(name, str):
        return None
    secret = context.secrets.get((namespace, name))
    if secret is None or ("data" not in secret and "stringData" not in secret):
        return None
    return {str(k) for k in mapping(secret.get("data"))} | {
        str(k) for k in mapping(secret.get("stringData"))
    }


def env_entries(container: Container) -> list[tuple[int, Mapping[str, Any]]]:
    """(index, entry) for each well-formed `env` entry of the container."""
    return container.env_entries()


def resolve(
    container: Container,
    name: str,
    context: Context,
    namespace: str,
    *,
    config_maps_complete: bool = False,
) -> EnvValue:
    """Resolve the variable `name` of `container` (see the module docstring)."""
    found = container.env_entry(name)
    if found is not None:
        index, entry = found
        value_from = entry.get("valueFrom")
        if value_from is None:
            value = entry.get("value", "")
            return EnvValue(ValueState.LITERAL, "" if value is None else str(value), "env", index)
        value_from = mapping(value_from)
        ref = mapping(value_from.get("configMapKeyRef"))
        if ref:
            visible, value = _config_map_value(context, namespace, ref.get("name"), ref.get("key"))
            if visible and value is not None:
                return EnvValue(ValueState.LITERAL, value, f"ConfigMap {ref.get('name')}", index)
            if visible or config_maps_complete:
                return EnvValue(ValueState.MISSING, None, f"ConfigMap {ref.get('name')}", index)
            return EnvValue(ValueState.UNKNOWN, None, f"ConfigMap {ref.get('name')}", index)
        secret_ref = mapping(value_from.get("secretKeyRef"))
        if secret_ref:
            return EnvValue(ValueState.UNKNOWN, None, f"Secret {secret_ref.get('name')}", index)
        return EnvValue(ValueState.UNKNOWN, None, "a field reference", index)
    for raw_source in reversed(sequence(container.spec.get("envFrom"))):
        source = mapping(raw_source)
        prefix = source.get("prefix") or ""
        if not isinstance(prefix, str) or not name.startswith(prefix):
            continue
        key = name[len(prefix) :]
        config_map_ref = mapping(source.get("configMapRef"))
        if config_map_ref:
            ref_name = config_map_ref.get("name")
            visible, value = _config_map_value(context, namespace, ref_name, key)
            if not visible and config_maps_complete:
                continue
            if not visible:
                return EnvValue(ValueState.UNKNOWN, None, f"ConfigMap {ref_name}")
            if value is not None:
                return EnvValue(ValueState.LITERAL, value, f"ConfigMap {ref_name}")
            continue
        secret_ref = mapping(source.get("secretRef"))
        if secret_ref:
            ref_name = secret_ref.get("name")
            keys = _secret_keys(context, namespace, ref_name)
            if keys is None or key in keys:
                return EnvValue(ValueState.UNKNOWN, None, f"Secret {ref_name}")
    return MISSING
