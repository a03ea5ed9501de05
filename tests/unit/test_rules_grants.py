"""The platform's allow-lists for what a ProductionService may ask for (prodready.rules.grants).

Each case starts from a spec the shipped defaults admit and adds one thing; the attacks of
issue 14 (wildcard hosts, snippet annotations, `{operator: Exists}`, control-plane node
selectors) are refused by the defaults, and every example in examples/ is admitted.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodready import render
from prodready.config import SettingsError, load_settings
from prodready.rules import grants
from prodready.rules.grants import GrantPolicy, pattern_matches
from tests.cluster.controlplane import default_bin_dir
from tests.generate import documents, helm_template

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEFAULTS = GrantPolicy.from_settings(load_settings({}))


def service(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"image": "registry.example.com/shop/api:1.0.0", "environment": "dev", **spec},
    }


def violations(obj: dict[str, Any], policy: GrantPolicy = DEFAULTS) -> list[grants.GrantViolation]:
    return grants.check(render.parse(obj), policy)


def policy(**lists: tuple[str, ...]) -> GrantPolicy:
    fields = {
        "ingress_hosts": DEFAULTS.ingress_hosts,
        "ingress_annotations": DEFAULTS.ingress_annotations,
        "tolerations": DEFAULTS.tolerations,
        "node_selectors": DEFAULTS.node_selectors,
        "service_accounts": DEFAULTS.service_accounts,
    }
    fields.update(lists)
    return GrantPolicy(**fields)


def exposure(host: str = "api.shop.example.com", **more: Any) -> dict[str, Any]:
    return {"exposure": {"host": host, **more}}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_is_within_the_defaults(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        if document and document.get("kind") == "ProductionService":
            assert violations(document) == []


def test_a_plain_service_asks_for_nothing() -> None:
    assert violations(service()) == []


# -- the attacks of issue 14, refused by the defaults ------------------------------------


def test_wildcard_host_is_refused_with_how_to_allow_it() -> None:
    (found,) = violations(service(**exposure("*.example.com")))
    assert found.path == "spec.exposure.host"
    assert 'wildcard host "*.example.com"' in found.message
    assert "PRODREADY_ALLOWED_INGRESS_HOSTS" in found.message
    assert "allowed.ingressHosts" in found.message
    assert "[*].example.com" in found.message


@pytest.mark.parametrize(
    "key",
    [
        "nginx.ingress.kubernetes.io/server-snippet",
        "nginx.ingress.kubernetes.io/configuration-snippet",
        "nginx.ingress.kubernetes.io/auth-url",
        "nginx.ingress.kubernetes.io/mirror-target",
        "haproxy.org/backend-config-snippet",
    ],
)
def test_snippet_like_annotations_are_refused(key: str) -> None:
    (found,) = violations(service(**exposure(annotations={key: "return 200;"})))
    assert found.path == f'spec.exposure.annotations["{key}"]'
    assert f'Ingress annotation "{key}" is not allowed' in found.message
    assert "PRODREADY_ALLOWED_INGRESS_ANNOTATIONS" in found.message


def test_harmless_annotations_are_allowed() -> None:
    annotations = {
        "cert-manager.io/cluster-issuer": "letsencrypt",
        "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
    }
    assert violations(service(**exposure(annotations=annotations))) == []


def test_toleration_of_everything_is_refused() -> None:
    (found,) = violations(service(pod={"tolerations": [{"operator": "Exists"}]}))
    assert found.path == "spec.pod.tolerations[0]"
    assert "no key" in found.message
    assert "tolerates every taint" in found.message
    assert "PRODREADY_ALLOWED_TOLERATIONS" in found.message


@pytest.mark.parametrize(
    "key", ["node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"]
)
def test_control_plane_node_selector_and_toleration_are_refused(key: str) -> None:
    spec = {
        "tolerations": [{"key": key, "operator": "Exists", "effect": "NoSchedule"}],
        "nodeSelector": {key: ""},
    }
    found = violations(service(pod=spec))
    assert [v.path for v in found] == ["spec.pod.tolerations[0]", f'spec.pod.nodeSelector["{key}"]']
    assert f'toleration of taint "{key}" (NoSchedule)' in found[0].message
    assert f'node selector "{key}="' in found[1].message
    assert "PRODREADY_ALLOWED_NODE_SELECTORS" in found[1].message


def test_default_eviction_tolerations_and_topology_selectors_are_allowed() -> None:
    pod = {
        "tolerations": [
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 30,
            }
        ],
        "nodeSelector": {"kubernetes.io/arch": "arm64", "topology.kubernetes.io/zone": "eu-1a"},
    }
    assert violations(service(pod=pod)) == []


# -- what the platform can allow ---------------------------------------------------------


def test_host_patterns_cross_dots_but_never_match_a_wildcard_host() -> None:
    allowed = policy(ingress_hosts=("*.apps.example.com",))
    assert violations(service(**exposure("a.b.apps.example.com")), allowed) == []
    assert [v.path for v in violations(service(**exposure("api.example.org")), allowed)] == [
        "spec.exposure.host"
    ]
    refused = violations(service(**exposure("*.apps.example.com")), allowed)
    assert "wildcard host" in refused[0].message
    escaped = policy(ingress_hosts=("[*].apps.example.com",))
    assert violations(service(**exposure("*.apps.example.com")), escaped) == []
    assert violations(service(**exposure("x.apps.example.com")), escaped) != []


def test_host_patterns_can_delegate_one_subdomain_per_namespace() -> None:
    allowed = policy(ingress_hosts=("*.{namespace}.apps.example.com",))
    assert violations(service(**exposure("api.shop.apps.example.com")), allowed) == []
    (found,) = violations(service(**exposure("api.payments.apps.example.com")), allowed)
    assert 'host "api.payments.apps.example.com"' in found.message
    # The namespace of the request wins over the object's (a CREATE may omit it).
    ps = render.parse(service(**exposure("api.payments.apps.example.com")))
    assert grants.check(ps, allowed, namespace="payments") == []


def test_a_toleration_without_a_key_needs_an_entry_covering_every_key() -> None:
    everything = {"operator": "Exists"}
    no_schedule = {"operator": "Exists", "effect": "NoSchedule"}
    for entries, allowed in [
        (("*",), [everything, no_schedule]),
        (("*:NoSchedule",), [no_schedule]),
        (("**",), [everything, no_schedule]),
        (("dedicated",), []),
        (("node.kubernetes.io/*",), []),
    ]:
        for toleration in (everything, no_schedule):
            found = violations(
                service(pod={"tolerations": [toleration]}), policy(tolerations=entries)
            )
            assert (found == []) == (toleration in allowed), (entries, toleration)


def test_a_toleration_entry_with_an_effect_allows_only_that_effect() -> None:
    entries = policy(tolerations=("dedicated:NoSchedule", "gpu/*"))

    def refused(toleration: dict[str, Any]) -> bool:
        return bool(violations(service(pod={"tolerations": [toleration]}), entries))

    assert not refused({"key": "dedicated", "value": "web", "effect": "NoSchedule"})
    assert refused({"key": "dedicated", "value": "web", "effect": "NoExecute"})
    assert refused({"key": "dedicated", "operator": "Exists"})  # every effect
    assert not refused({"key": "gpu/nvidia", "operator": "Exists"})
    assert refused({"key": "gpu", "operator": "Exists"})


def test_node_selector_entries_with_and_without_values() -> None:
    entries = policy(node_selectors=("pool", "tier=web-*"))

    def refused(selector: dict[str, str]) -> bool:
        return bool(violations(service(pod={"nodeSelector": selector}), entries))

    assert not refused({"pool": "anything"})
    assert not refused({"tier": "web-blue"})
    assert refused({"tier": "db"})
    assert refused({"kubernetes.io/os": "linux"})  # not in this list


def test_service_accounts_are_narrowed_by_the_allow_list() -> None:
    assert violations(service(pod={"serviceAccountName": "admin"})) == []  # default: any
    narrowed = policy(service_accounts=("app-*",))
    assert violations(service(pod={"serviceAccountName": "app-orders"}), narrowed) == []
    (found,) = violations(service(pod={"serviceAccountName": "admin"}), narrowed)
    assert found.path == "spec.pod.serviceAccountName"
    assert 'ServiceAccount "admin"' in found.message
    assert "PRODREADY_ALLOWED_SERVICE_ACCOUNTS" in found.message


def test_every_violation_is_listed_in_spec_order() -> None:
    obj = service(
        **exposure("*.example.com", annotations={"a/b": "1", "c/d": "2"}),
        pod={
            "serviceAccountName": "admin",
            "tolerations": [{"operator": "Exists"}],
            "nodeSelector": {"node-role.kubernetes.io/master": ""},
        },
    )
    found = violations(obj, policy(service_accounts=("app",)))
    assert [v.path for v in found] == [
        "spec.exposure.host",
        'spec.exposure.annotations["a/b"]',
        'spec.exposure.annotations["c/d"]',
        "spec.pod.serviceAccountName",
        "spec.pod.tolerations[0]",
        'spec.pod.nodeSelector["node-role.kubernetes.io/master"]',
    ]


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("*", "api.example.com", True),
        ("*", "*.example.com", False),
        ("?", "a", True),
        ("?", "*", False),
        ("[*].example.com", "*.example.com", True),
        ("[*].example.com", "a.example.com", False),
        ("a.b", "aXb", False),  # a dot is a dot, not "any character"
        ("cert-manager.io/*", "cert-manager.io/cluster-issuer", True),
        ("cert-manager.io/*", "evil/cert-manager.io/x", False),
    ],
)
def test_pattern_matching(pattern: str, value: str, matches: bool) -> None:
    assert pattern_matches(pattern, value) is matches


# -- the settings that carry the allow-lists ---------------------------------------------


def test_allow_lists_are_read_from_the_environment() -> None:
    settings = load_settings(
        {
            "PRODREADY_ALLOWED_INGRESS_HOSTS": "*.apps.example.com, [*].apps.example.com",
            "PRODREADY_ALLOWED_INGRESS_ANNOTATIONS": '["cert-manager.io/*"]',
            "PRODREADY_ALLOWED_TOLERATIONS": "dedicated:NoSchedule,gpu/*",
            "PRODREADY_ALLOWED_NODE_SELECTORS": "pool=web",
            "PRODREADY_ALLOWED_SERVICE_ACCOUNTS": "app-*",
        }
    )
    assert GrantPolicy.from_settings(settings) == GrantPolicy(
        ingress_hosts=("*.apps.example.com", "[*].apps.example.com"),
        ingress_annotations=("cert-manager.io/*",),
        tolerations=("dedicated:NoSchedule", "gpu/*"),
        node_selectors=("pool=web",),
        service_accounts=("app-*",),
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PRODREADY_ALLOWED_TOLERATIONS", "dedicated:Sometimes", "the effect must be one of"),
        ("PRODREADY_ALLOWED_TOLERATIONS", ":NoSchedule", "is not KEY or KEY:EFFECT"),
        ("PRODREADY_ALLOWED_INGRESS_HOSTS", '["a b"]', "is not a pattern"),
        ("PRODREADY_ALLOWED_NODE_SELECTORS", "[1", "comma-separated list or a JSON list"),
    ],
)
def test_bad_allow_list_entries_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({variable: value})
    assert str(error.value).startswith(f"{variable}: ")
    assert message in str(error.value)


def test_the_check_does_not_change_the_spec() -> None:
    obj = service(**exposure("*.example.com"), pod={"tolerations": [{"operator": "Exists"}]})
    ps = render.parse(copy.deepcopy(obj))
    before = ps.model_dump()
    grants.check(ps, DEFAULTS)
    assert ps.model_dump() == before


# -- the chart's values carry the same allow-lists ----------------------------------------


def _chart_allow_lists(values: dict[str, Any] | None = None) -> GrantPolicy:
    objects = documents(helm_template(values, release="prodready", namespace="prodready"))
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (main,) = deployment["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    env = {
        str(e["name"]): str(e["value"])
        for e in main["env"]
        if str(e["name"]).startswith("PRODREADY_ALLOWED_")
    }
    return GrantPolicy.from_settings(load_settings(env))


@pytest.mark.skipif(
    not (default_bin_dir() / "helm").exists(), reason="helm is not built: run `make binaries`"
)
def test_the_chart_defaults_are_the_operator_defaults_and_values_reach_it() -> None:
    assert _chart_allow_lists() == DEFAULTS
    custom = _chart_allow_lists(
        {
            "allowed": {
                "ingressHosts": ["*.{namespace}.apps.example.com"],
                "ingressAnnotations": [],
                "tolerations": ["*"],
                "nodeSelectors": ["pool=web"],
                "serviceAccounts": ["app-*"],
            }
        }
    )
    assert custom == GrantPolicy(
        ingress_hosts=("*.{namespace}.apps.example.com",),
        ingress_annotations=(),  # an empty list stays empty: nothing allowed
        tolerations=("*",),
        node_selectors=("pool=web",),
        service_accounts=("app-*",),
    )
