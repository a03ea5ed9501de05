"""Seed section 7, monitoring: PR-MO-001 and PR-MO-002.

PrometheusRule matching (PR-MO-002), in order: a PrometheusRule in the workload's namespace
whose `app.kubernetes.io/name` label equals the workload's (and, when both carry one, whose
`app.kubernetes.io/instance` agrees); or one named after the workload (`NAME` or
`NAME-…`); or one with an alert whose expression mentions the workload's name in quotes
(`job="NAME"`, `deployment="NAME"`). Only rules with at least one `alert` count: recording
rules alert nobody.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from typing import Any

from prodready.rules.context import Context, mapping, sequence
from prodready.rules.selectors import labels_of
from prodready.rules.subject import Outcome, Subject, failed, passed

SCRAPE_ANNOTATION = "prometheus.io/scrape"
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"


def _scrape_annotation(obj: Mapping[str, Any]) -> str | None:
    value = mapping(obj.get("annotations")).get(SCRAPE_ANNOTATION)
    return None if value is None else str(value).lower()


def _service_port_names(service: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for raw_port in sequence(mapping(service.get("spec")).get("ports")):
        port = mapping(raw_port)
        for key in ("name", "targetPort", "port"):
            if port.get(key) is not None:
                names.add(str(port[key]))
    return names


def _scraped_by(subject: Subject) -> str | None:
    """What scrapes the workload's pods, or None."""
    workload = subject.workload
    if _scrape_annotation(workload.template_metadata) == "true":
        return f"the pod annotation {SCRAPE_ANNOTATION}"
    for service in workload.services:
        service_name = mapping(service.get("metadata")).get("name")
        if _scrape_annotation(mapping(service.get("metadata"))) == "true":
            return f"the {SCRAPE_ANNOTATION} annotation on Service {service_name}"
        ports = _service_port_names(service)
        for monitor in workload.context.service_monitors_for(service):
            for raw_endpoint in sequence(mapping(monitor.get("spec")).get("endpoints")):
                endpoint = mapping(raw_endpoint)
                port = endpoint.get("port", endpoint.get("targetPort"))
                if port is None or str(port) in ports:
                    name = mapping(monitor.get("metadata")).get("name")
                    return f"ServiceMonitor {name} (via Service {service_name})"
    monitors = workload.context.pod_monitors.match(workload.namespace, workload.pod_labels)
    if monitors:
        return f"PodMonitor {mapping(monitors[0].get('metadata')).get('name')}"
    return None


def metrics_scraped(subject: Subject) -> Iterator[Outcome]:
    """PR-MO-001: a metrics endpoint is declared and scraped."""
    workload = subject.workload
    source = _scraped_by(subject)
    if source is not None:
        yield passed(f"{workload.pod_path}", f"metrics are scraped by {source}")
        return
    metrics_ports = [
        (container, port)
        for container in workload.containers
        for port in container.ports()
        if "metrics" in str(port.get("name", "")).lower()
    ]
    if metrics_ports:
        container, port = metrics_ports[0]
        yield failed(
            f"{container.path}.ports",
            f"port {port.get('name')} of container {container.name} is declared but no "
            "ServiceMonitor, PodMonitor or scrape annotation scrapes it",
            container,
        )
    else:
        template_path = workload.pod_path.removesuffix(".spec")
        where = f"{template_path}.metadata.annotations" if workload.kind != "Pod" else "metadata"
        yield failed(where, "no metrics endpoint is declared or scraped")


def _has_alert(rule: Mapping[str, Any]) -> bool:
    return any(
        "alert" in mapping(item)
        for group in sequence(mapping(rule.get("spec")).get("groups"))
        for item in sequence(mapping(group).get("rules"))
    )


def _alert_expressions(rule: Mapping[str, Any]) -> Iterator[str]:
    for group in sequence(mapping(rule.get("spec")).get("groups")):
        for raw_item in sequence(mapping(group).get("rules")):
            item = mapping(raw_item)
            if "alert" in item:
                yield str(item.get("expr", ""))


_QUOTES = ('"', "'")


class AlertIndex:
    """The alerting PrometheusRules of one namespace, indexed by every way PR-MO-002 can
    match a workload, so that checking a thousand workloads against a thousand rules is not
    a million scans. Built once per namespace and evaluation (`Context.derived`)."""

    def __init__(self, rules: list[Mapping[str, Any]]) -> None:
        self.names: list[str] = []
        self.labels: list[dict[str, str]] = []
        self.by_app: dict[str, list[int]] = {}
        self.by_name: dict[str, int] = {}
        self.sorted_names: list[tuple[str, int]] = []
        # A quoted name in an expression is text between two consecutive quote characters.
        self.quoted: dict[str, int] = {}
        self.expressions: list[list[str]] = []
        for rule in rules:
            if not _has_alert(rule):
                continue
            position = len(self.names)
            rule_labels = labels_of(rule.get("metadata"))
            rule_name = str(mapping(rule.get("metadata")).get("name", ""))
            self.names.append(rule_name)
            self.labels.append(rule_labels)
            if NAME_LABEL in rule_labels:
                self.by_app.setdefault(rule_labels[NAME_LABEL], []).append(position)
            self.by_name.setdefault(rule_name, position)
            self.sorted_names.append((rule_name, position))
            expressions = list(_alert_expressions(rule))
            self.expressions.append(expressions)
            for expression in expressions:
                for quote in _QUOTES:
                    for text in expression.split(quote)[1:-1]:
                        self.quoted.setdefault(text, position)
        self.sorted_names.sort()

    @classmethod
    def of(cls, context: Context, namespace: str) -> AlertIndex:
        """The index of `namespace` in this evaluation's context, built on first use."""
        key = ("alerts", namespace)
        index = context.derived.get(key)
        if not isinstance(index, AlertIndex):
            index = cls(context.prometheus_rules.get(namespace, []))
            context.derived[key] = index
        return index

    def first_match(self, name: str, app: str | None, instance: str | None) -> str | None:
        """The name of the first alerting rule (in input order) that covers the workload."""
        candidates: list[int] = []
        if app is not None:
            for position in self.by_app.get(app, ()):
                rule_instance = self.labels[position].get(INSTANCE_LABEL, instance)
                if not instance or rule_instance == instance:
                    candidates.append(position)
                    break
        if name in self.by_name:
            candidates.append(self.by_name[name])
        prefix = f"{name}-"
        start = bisect.bisect_left(self.sorted_names, (prefix, -1))
        for rule_name, position in self.sorted_names[start:]:
            if not rule_name.startswith(prefix):
                break
            candidates.append(position)
        if any(quote in name for quote in _QUOTES):
            # Not a Kubernetes name: look for it the slow way.
            quoted = [f"{quote}{name}{quote}" for quote in _QUOTES]
            candidates.extend(
                position
                for position, expressions in enumerate(self.expressions)
                if any(q in expression for q in quoted for expression in expressions)
            )
        elif name in self.quoted:
            candidates.append(self.quoted[name])
        return self.names[min(candidates)] if candidates else None


def alerts_exist(subject: Subject) -> Iterator[Outcome]:
    """PR-MO-002: alerts exist for the workload's critical errors (PrometheusRule)."""
    workload = subject.workload
    name = workload.ref.name
    labels = {**workload.pod_labels, **labels_of(workload.metadata)}
    index = AlertIndex.of(workload.context, workload.namespace)
    rule_name = index.first_match(name, labels.get(NAME_LABEL), labels.get(INSTANCE_LABEL))
    if rule_name is not None:
        yield passed("metadata", f"PrometheusRule {rule_name} alerts on this workload")
        return
    yield failed(
        "metadata", f"no PrometheusRule in namespace {workload.namespace} alerts on {name}"
    )
