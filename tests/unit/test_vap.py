"""rules.vap (a ReadinessPolicy as a ValidatingAdmissionPolicy), its command and the
operator's sync, without a cluster. What the CEL says is proven against the real apiserver
and the engine by tests/e2e/test_vap_differential.py; here: which rules are compiled, with
which conditions, into which objects, and what the sync writes."""

from __future__ import annotations

import argparse
import asyncio
import copy
import fnmatch
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from prodready.api.policy import EXCEPTION_KIND, POLICY_KIND
from prodready.audit.vap_sync import VapSync, next_expiry, wanted_objects
from prodready.kube.client import ApiError
from prodready.kube.store import Change, ObjectStore
from prodready.rules import vap
from prodready.rules.policy import PolicyError, compile_exception
from prodready.rules.registry import RULES
from prodready.rules.vap_command import add_arguments, run

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def policy(name: str = "production", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": POLICY_KIND,
        "metadata": {"name": name},
        "spec": {"mode": "Enforce", **spec},
    }


def exception(name: str, namespace: str, expires: datetime, **match: Any) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": EXCEPTION_KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "rules": [{"rule": "PR-HC-001", "reason": "a migration"}],
            "match": match or {"names": ["api"]},
            "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "approvedBy": "the platform team",
        },
    }


CUSTOM = {
    "id": "ACME-OWN-001",
    "title": "Workloads name an owning team",
    "expression": "has(object.metadata.labels) && 'team' in object.metadata.labels",
    "messageExpression": "'label team is missing on ' + object.metadata.name",
}


def validation(plan: vap.VapPlan, rule_id: str) -> dict[str, Any]:
    return plan.validations[plan.compiled.index(rule_id)]


# -- which rules ---------------------------------------------------------------------------


def test_the_docs_table_is_current() -> None:
    text = (REPO / "docs" / "admission.md").read_text()
    section = text.split("<!-- BEGIN placement -->\n")[1].split("<!-- END placement -->")[0]
    assert section == vap.placement_table(), "regenerate docs/admission.md's table"


def test_every_rule_says_where_it_runs_and_why() -> None:
    for rule in RULES:
        where = vap.placement(rule)
        assert where.where in {"apiserver", "both", "webhook"}
        if where.where == "webhook":
            assert where.note, rule.id
            assert where.note != "not translated", rule.id
    assert vap.placement(RULES[0]).where == "apiserver"
    assert set(vap.TRANSLATIONS) <= {rule.id for rule in RULES}


def test_by_default_the_error_rules_with_a_translation_are_compiled() -> None:
    plan = vap.plan_policy(policy())
    assert plan.compiled == ["PR-HC-001", "PR-HC-002", "PR-LG-003"]
    assert plan.left_to_webhook == {}


def test_the_policy_severity_decides() -> None:
    raised = vap.plan_policy(policy(severity={"PR-RS-001": "error", "PR-SC-005": "error"}))
    assert raised.compiled == ["PR-HC-001", "PR-HC-002", "PR-LG-003", "PR-SC-005", "PR-RS-001"]
    lowered = vap.plan_policy(
        policy(severity={"PR-HC-001": "warning"}, disabled=["PR-HC-002", "PR-LG-003"])
    )
    assert lowered.compiled == []


def test_a_rule_that_is_an_error_only_in_some_environments_stays_with_the_webhook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # PR-SC-003 is relaxed in dev; pretend it had a translation.
    translations = dict(vap.TRANSLATIONS)
    translations["PR-SC-003"] = vap.Translation(
        rule_id="PR-SC-003", expression="true", message="'x'"
    )
    monkeypatch.setattr(vap, "TRANSLATIONS", translations)
    plan = vap.plan_policy(policy())
    assert plan.left_to_webhook == {"PR-SC-003": "an error only in some environments"}
    prod = vap.plan_policy(policy(environment={"value": "prod"}))
    assert "PR-SC-003" in prod.compiled


def test_an_exemption_glob_with_a_class_leaves_its_rules_to_the_webhook() -> None:
    plan = vap.plan_policy(
        policy(exemptions=[{"rules": ["PR-HC-001"], "name": "api-[0-9]", "reason": "legacy"}])
    )
    assert plan.compiled == ["PR-HC-002", "PR-LG-003"]
    assert plan.left_to_webhook == {
        "PR-HC-001": "a policy exemption uses a glob with a [...] class"
    }


def test_custom_rules_run_as_written_when_they_are_errors() -> None:
    warning = {**CUSTOM, "id": "ACME-OWN-002", "severity": "warning"}
    untitled = {**CUSTOM, "id": "ACME-OWN-003"}
    del untitled["messageExpression"]
    plan = vap.plan_policy(
        policy(customRules=[CUSTOM, warning, untitled], disabled=["ACME-OWN-003"])
    )
    assert plan.compiled == ["PR-HC-001", "PR-HC-002", "PR-LG-003", "ACME-OWN-001"]
    compiled = validation(plan, "ACME-OWN-001")
    assert compiled["expression"].endswith(f"({CUSTOM['expression']})")
    assert compiled["messageExpression"] == (f'"ACME-OWN-001: " + ({CUSTOM["messageExpression"]})')
    plain = vap.plan_policy(policy(customRules=[untitled]))
    assert validation(plain, "ACME-OWN-003")["messageExpression"].endswith(
        '("Workloads name an owning team")'
    )


# -- conditions ----------------------------------------------------------------------------


@pytest.mark.parametrize("glob", ["*", "legacy-*", "api-?", "docker.io/library/*", "a+b(c)"])
def test_a_glob_matches_as_fnmatch_does(glob: str) -> None:
    regex = vap.glob_regex(glob)
    assert regex is not None
    for text in ["legacy-api", "api-1", "api-12", "docker.io/library/nginx:1", "a+b(c)", ""]:
        assert bool(re.fullmatch(regex, text)) == fnmatch.fnmatchcase(text, glob), text
    assert vap.glob_regex("api-[0-9]") is None


def test_exemptions_become_conditions_of_their_rules() -> None:
    plan = vap.plan_policy(
        policy(
            exemptions=[
                {"rules": ["PR-HC-002"], "name": "legacy-*", "reason": "old"},
                {"rules": ["PR-HC-002"], "image": "busybox*", "reason": "tools"},
                {"rules": ["PR-HC-001"], "namespace": "*", "reason": "everything"},
            ]
        )
    )
    readiness = validation(plan, "PR-HC-002")["expression"]
    assert 'variables.name.matches("^(?s:legacy\\\\-.*)$")' in readiness
    assert "variables.allContainers.all(c, has(c.image) && c.image.matches" in readiness
    liveness = validation(plan, "PR-HC-001")["expression"]
    assert liveness.startswith("!variables.decides || !(object.kind in ")
    assert " || (true) || " in liveness  # exempt everywhere: always true


def test_the_annotation_counts_only_where_the_policy_lets_it() -> None:
    default = vap.plan_policy(policy())
    assert "prodready.io/exempt" not in json.dumps(default.validations)
    listed = vap.plan_policy(policy(annotationExemptions={"rules": ["PR-HC-001"]}))
    assert "prodready.io/exempt" in validation(listed, "PR-HC-001")["expression"]
    assert "prodready.io/exempt" not in validation(listed, "PR-HC-002")["expression"]
    audit = vap.plan_policy(policy(mode="Audit"))
    assert all("prodready.io/exempt" in v["expression"] for v in audit.validations)


def test_active_exceptions_are_conditions_and_expired_ones_are_not() -> None:
    active = compile_exception(exception("a", "shop", NOW + timedelta(days=10)))
    expired = compile_exception(exception("b", "old", NOW - timedelta(days=1)))
    selected = compile_exception(
        exception(
            "c",
            "lab",
            NOW + timedelta(days=5),
            kinds=["Deployment"],
            selector={
                "matchLabels": {"tier": "web"},
                "matchExpressions": [
                    {"key": "a", "operator": "In", "values": ["1"]},
                    {"key": "b", "operator": "NotIn", "values": ["2"]},
                    {"key": "c", "operator": "Exists"},
                    {"key": "d", "operator": "DoesNotExist"},
                ],
            },
        )
    )
    plan = vap.plan_policy(policy(), exceptions=[active, expired, selected], now=NOW)
    liveness = validation(plan, "PR-HC-001")["expression"]
    assert 'request.namespace == "shop" && variables.name in ["api"]' in liveness
    assert '"old"' not in liveness
    assert 'object.kind in ["Deployment"]' in liveness
    for term in (
        '("tier" in variables.labels && variables.labels["tier"] == "web")',
        '("a" in variables.labels && variables.labels["a"] in ["1"])',
        '(!("b" in variables.labels) || !(variables.labels["b"] in ["2"]))',
        '("c" in variables.labels)',
        '!("d" in variables.labels)',
    ):
        assert term in liveness
    assert '"shop"' not in validation(plan, "PR-HC-002")["expression"]


# -- the objects ---------------------------------------------------------------------------


def test_an_enforce_policy_is_a_vap_and_a_deny_binding() -> None:
    body = policy(
        namespaceSelector={"matchLabels": {"env": "prod"}},
        objectSelector={"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
    )
    body["metadata"]["uid"] = "1234"
    (vap_object, binding), plan = vap.policy_objects(body)
    assert vap_object["kind"] == vap.VAP_KIND
    assert vap_object["metadata"]["name"] == binding["metadata"]["name"] == "prodready-production"
    assert binding["spec"]["policyName"] == "prodready-production"
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"] == {
        "namespaceSelector": {"matchLabels": {"env": "prod"}},
        "objectSelector": {
            "matchExpressions": [{"key": "tier", "operator": "Exists", "values": []}]
        },
    }
    for obj in (vap_object, binding):
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "1234"
        assert obj["metadata"]["labels"][vap.MANAGED_BY_LABEL] == "prodready"
    rules = vap_object["spec"]["matchConstraints"]["resourceRules"]
    assert {r for rule in rules for r in rule["resources"]} == {
        "deployments", "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs", "pods",
    }  # fmt: skip
    variables = {v["name"]: v["expression"] for v in vap_object["spec"]["variables"]}
    assert variables["decides"] == "true"
    assert len(vap_object["spec"]["validations"]) == len(plan.compiled) == 3


def test_an_audit_policy_warns_and_yields_to_earlier_policies() -> None:
    earlier = policy("a-first", namespaceSelector={"matchLabels": {"team": "x"}})
    audit = policy("b-audit", mode="Audit")
    (vap_object, binding), _ = vap.policy_objects(audit, others=[earlier, audit, {"kind": "bad"}])
    assert binding["spec"]["validationActions"] == ["Warn"]
    assert "ownerReferences" not in binding["metadata"]
    decides = next(v for v in vap_object["spec"]["variables"] if v["name"] == "decides")
    assert '"team" in' in decides["expression"]
    assert '"prodready.io/enforce"' in decides["expression"]


def test_off_or_nothing_compiled_is_no_object() -> None:
    assert vap.policy_objects(policy(mode="Off"))[0] == []
    disabled = ["PR-HC-001", "PR-HC-002", "PR-LG-003"]
    assert vap.policy_objects(policy(disabled=disabled))[0] == []


def test_objects_for_a_file_of_policies_and_exceptions() -> None:
    objects, plans = vap.objects_for(
        [policy(), policy("other", mode="Audit"), exception("a", "shop", NOW + timedelta(1))],
        now=NOW,
    )
    assert [o["metadata"]["name"] for o in objects] == ["prodready-production"] * 2 + [
        "prodready-other"
    ] * 2
    assert [p.policy for p in plans] == ["production", "other"]
    with pytest.raises(PolicyError):
        vap.objects_for([policy(mode="Sometimes")])


# -- prodready admission-policy ------------------------------------------------------------


def _run(path: Path, output: str = "yaml") -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return run(parser.parse_args(["--policy", str(path), "-o", output]))


def test_the_command_prints_yaml_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.yaml"
    body = policy(exemptions=[{"rules": ["PR-HC-001"], "name": "a[0-9]", "reason": "r"}])
    path.write_text(yaml.safe_dump(body))
    assert _run(path) == 0
    out, err = capsys.readouterr()
    documents = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in documents] == [vap.VAP_KIND, vap.BINDING_KIND]
    assert "PR-HC-001 left to the webhook" in err
    assert _run(path, "json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["kind"] == "List"
    assert len(listed["items"]) == 2


def test_the_command_names_a_bad_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy(disabled=["PR-XX-999"])))
    assert _run(path) == 2
    assert "PR-XX-999" in capsys.readouterr().err


# -- the operator's sync -------------------------------------------------------------------


class FakeApi:
    """Just enough of KubeClient: apply, list by label, delete."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.apply_error: ApiError | None = None
        self.list_error: ApiError | None = None

    async def apply(self, resource: Any, body: dict[str, Any], **options: Any) -> dict[str, Any]:
        assert options == {"field_manager": "prodready", "force": False}
        self.calls.append(("apply", body["kind"], body["metadata"]["name"]))
        if self.apply_error is not None:
            raise self.apply_error
        stored = copy.deepcopy(body)
        stored["metadata"]["uid"] = f"uid-{body['metadata']['name']}"
        self.objects[(body["kind"], body["metadata"]["name"])] = stored
        return stored

    async def list(self, path: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        assert label_selector == "app.kubernetes.io/managed-by=prodready"
        if self.list_error is not None:
            raise self.list_error
        kind = vap.BINDING_KIND if path.endswith("bindings") else vap.VAP_KIND
        return [copy.deepcopy(o) for (k, _), o in sorted(self.objects.items()) if k == kind]

    async def delete(self, resource: Any, namespace: str | None, name: str, uid: str) -> bool:
        assert namespace is None
        self.calls.append(("delete", resource.kind, name))
        return self.objects.pop((resource.kind, name), None) is not None


def _sync(store: ObjectStore, api: FakeApi, leading: bool = True) -> VapSync:
    return VapSync(
        store=store,
        client=api,  # type: ignore[arg-type]
        field_manager="prodready",
        is_leading=lambda: leading,
        clock=lambda: NOW,
    )


def test_the_sync_applies_once_and_deletes_what_no_policy_wants() -> None:
    store = ObjectStore()
    wanted = policy(enforceInApiserver=True)
    wanted["metadata"]["uid"] = "p1"
    store.put(wanted)
    store.put(policy("quiet"))
    store.put(exception("a", "shop", NOW + timedelta(days=3)))
    api = FakeApi()
    sync = _sync(store, api)
    assert asyncio.run(sync.sync_once()) == NOW + timedelta(days=3)
    assert set(api.objects) == {
        (vap.VAP_KIND, "prodready-production"),
        (vap.BINDING_KIND, "prodready-production"),
    }
    assert sync.writes == 2
    api.calls.clear()
    asyncio.run(sync.sync_once())
    assert api.calls == []  # converged: no writes
    wanted["spec"]["enforceInApiserver"] = False
    store.put(wanted)
    asyncio.run(sync.sync_once())
    assert api.objects == {}
    assert {c[0] for c in api.calls} == {"delete"}


def test_the_sync_logs_what_the_apiserver_refuses(caplog: pytest.LogCaptureFixture) -> None:
    store = ObjectStore()
    store.put(policy(enforceInApiserver=True))
    api = FakeApi()
    sync = _sync(store, api)
    for status, reason in ((409, "Conflict"), (422, "Invalid")):
        api.apply_error = ApiError(status, reason, "no", "PATCH", "/x")
        asyncio.run(sync.sync_once())
    assert sync.writes == 0
    assert "held by another manager" in caplog.text
    assert "refuses a generated VAP" in caplog.text
    api.apply_error = ApiError(500, "InternalError", "boom", "PATCH", "/x")
    with pytest.raises(ApiError):
        asyncio.run(sync.sync_once())


def test_without_the_grant_the_sync_stays_quiet_until_a_policy_asks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The chart grants nothing on admission policies by default: with no policy asking for
    enforcement inside the apiserver the refused LIST is no news; a policy that asks is
    told (in the log) that the grant is missing, and the webhook still enforces it."""
    store = ObjectStore()
    store.put(policy("quiet"))
    api = FakeApi()
    api.list_error = ApiError(403, "Forbidden", "no", "GET", "/apis")
    api.apply_error = ApiError(403, "Forbidden", "no", "PATCH", "/apis")
    sync = _sync(store, api)
    with caplog.at_level(logging.INFO):
        asyncio.run(sync.sync_once())
    assert "enforceInApiserver" not in caplog.text
    store.put(policy(enforceInApiserver=True))
    with pytest.raises(ApiError):  # the cleanup's LIST, refused while one is wanted
        asyncio.run(sync.sync_once())
    assert "may not write ValidatingAdmissionPolicies (chart: rbac.admissionPolicies)" in (
        caplog.text
    )
    assert sync.writes == 0


def test_wanted_objects_skip_what_does_not_compile() -> None:
    bad_exception = exception("bad", "shop", NOW + timedelta(days=1))
    bad_exception["spec"]["rules"] = []
    bad_policy = policy("broken", enforceInApiserver=True, disabled=["PR-LM-001"])
    objects, problems = wanted_objects(
        [policy(enforceInApiserver=True), bad_policy, {"kind": POLICY_KIND}],
        [bad_exception, exception("ok", "shop", NOW + timedelta(days=1))],
        NOW,
    )
    assert len(objects) == 2
    assert len(problems) == 1
    assert "broken" in problems[0]
    assert next_expiry([bad_exception], NOW) is None
    later, sooner = NOW + timedelta(days=9), NOW + timedelta(days=2)
    listed = [exception("a", "s", later), exception("b", "s", sooner), exception("c", "s", NOW)]
    assert next_expiry(listed, NOW) == sooner


def test_the_sync_wakes_on_policy_changes_and_runs_only_when_leading() -> None:
    store = ObjectStore()
    store.put(policy(enforceInApiserver=True))
    api = FakeApi()

    async def scenario() -> None:
        follower = _sync(store, api, leading=False)
        task = asyncio.create_task(follower.run())
        await asyncio.sleep(0.05)
        assert api.calls == []
        task.cancel()
        leader = _sync(store, api)
        leader._interval = 0.01
        task = asyncio.create_task(leader.run())
        for _ in range(100):
            await asyncio.sleep(0.01)
            if api.objects:
                break
        leader.on_change(
            Change(kind=POLICY_KIND, namespace="", name="x", previous=None, current=None,
                   content_changed=True)
        )  # fmt: skip
        await asyncio.sleep(0.02)
        task.cancel()

    asyncio.run(scenario())
    assert len(api.objects) == 2


def test_a_failed_sync_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    store = ObjectStore()
    store.put(policy(enforceInApiserver=True))
    api = FakeApi()
    api.apply_error = ApiError(503, "ServiceUnavailable", "later", "PATCH", "/x")

    async def scenario() -> None:
        sync = _sync(store, api)
        sync._interval = 0.01
        task = asyncio.create_task(sync.run())
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(scenario())
    assert "syncing the generated VAPs failed" in caplog.text


# -- PR-HC-003, PR-HC-004 and PR-LG-003 in CEL -----------------------------------------------
# The regular expressions the translations use are checked here against the Python rules
# with Python's `re` (the patterns are RE2 and Python alike but for `\p{…}`, whose Python
# spelling the first test proves equal); the CEL around them is proven against the real
# apiserver by the differential test.


def _python_spelling(pattern: str) -> str:
    return pattern.replace(r"\p{L}\p{N}_", r"\w").replace(r"\p{Nd}", r"\d")


def test_the_unicode_classes_are_pythons() -> None:
    import sys
    import unicodedata

    word = re.compile(r"\w")
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        letter_or_number = unicodedata.category(char)[0] in "LN" or char == "_"
        assert bool(word.match(char)) == letter_or_number, hex(code)
        assert char.isspace() == (char in vap.PYTHON_WHITESPACE), hex(code)
        assert bool(re.match(r"\d", char)) == (unicodedata.category(char) == "Nd"), hex(code)


def test_the_three_rules_are_compiled_where_they_are_errors() -> None:
    assert vap.placement(next(r for r in RULES if r.id == "PR-HC-003")).where == "apiserver"
    assert vap.placement(next(r for r in RULES if r.id == "PR-HC-004")).where == "both"
    assert vap.placement(next(r for r in RULES if r.id == "PR-LG-003")).where == "both"
    plan = vap.plan_policy(policy(severity={"PR-HC-003": "error", "PR-HC-004": "error"}))
    assert plan.compiled == ["PR-HC-001", "PR-HC-002", "PR-HC-003", "PR-HC-004", "PR-LG-003"]
    for rule_id in ("PR-HC-003", "PR-HC-004"):
        compiled = validation(plan, rule_id)
        assert compiled["messageExpression"].startswith(f'"{rule_id}: " + (')
        assert "object.kind in" in compiled["expression"]  # the rule's kinds
    # Warnings (their default) are the webhook's admission warnings, not compiled.
    assert "PR-HC-003" not in vap.plan_policy(policy()).compiled


def test_literal_secrets_follow_the_policys_sensitive_names() -> None:
    from prodready.api.sensitive import sensitive_names

    default = validation(vap.plan_policy(policy()), "PR-LG-003")["expression"]
    own = validation(vap.plan_policy(policy(sensitiveNames=["pin"])), "PR-LG-003")["expression"]
    assert sensitive_names(("pin",)).sensitive_pattern in own
    assert vap.DEFAULT_SENSITIVE_NAMES.sensitive_pattern in default
    assert vap.DEFAULT_SENSITIVE_NAMES.sensitive_pattern not in own


def _no_op_in_regexes(command: list[str]) -> bool:
    """rules.vap._no_op's CEL, step by step in Python (its regexes are Python's too)."""

    def matches(pattern: str, text: str) -> bool:
        return re.search(pattern, text) is not None

    if not command:
        return True
    shell = (
        len(command) >= 3
        and matches(vap._SHELL_PART, command[0])
        and matches(vap._DASH_C_PART, command[1])
    )
    if shell:
        return matches(vap._NO_OP_SCRIPT, command[2]) or matches(vap._ECHO_SCRIPT, command[2])
    return (
        (len(command) == 1 and matches(vap._NO_OP_PART, command[0]))
        or (
            len(command) == 2
            and matches(vap._stripped_in(["exit"]), command[0])
            and matches(vap._stripped_in(["0"]), command[1])
        )
        or matches(vap._ECHO_COMMAND, command[0])
    )


_COMMAND_PIECES = [
    "true", "/bin/true", "exit", "exit 0", "0", ":", "echo", "echo ", "/bin/echo", "sh", "bash",
    "-c", "-ec", "-ce", ";", " ", "\t", "\u3000", "\x1c", "\n", "x", "/", "ok",
]  # fmt: skip


@given(
    st.lists(
        st.lists(st.sampled_from(_COMMAND_PIECES), max_size=5).map("".join),
        max_size=4,
    )
)
@settings(max_examples=600, deadline=None)
def test_the_exec_no_op_regexes_agree_with_the_rule(command: list[str]) -> None:
    from prodready.rules.checks.health import _is_no_op

    assert _no_op_in_regexes(command) == _is_no_op(command), command


@pytest.mark.parametrize(
    "command",
    [
        [], ["true"], [" exit 0 "], ["exit", " 0"], ["sh", "-c", " true ;; "],
        ["sh", "-c", "true ; ;"], ["bash", "-ec", "echo ; ;"], ["sh", "-c", "echo ;"],
        ["sh", "-c", "echo\u3000x"], ["sh", "-c", "echo x"], ["/usr/bin/echo"], ["echo2"],
        ["sh", "-c"], ["sh", "-c", "pg_isready"], ["\x1ctrue\x1c"],
    ],
)  # fmt: skip
def test_exec_no_op_corners(command: list[str]) -> None:
    from prodready.rules.checks.health import _is_no_op

    assert _no_op_in_regexes(command) == _is_no_op(command)


def _declares_in_regexes(value: str) -> bool:
    return (
        len(value) <= vap.MAX_DECIDED_TEXT
        and re.search(vap._DECIDED_DEPENDENCIES, value) is not None
        and re.search(vap._NAME_KEY, value) is not None
    )


_JSON_KEYS = st.sampled_from(["name", "type", "nam", "names", "x", "", "name "])
_JSON_VALUES = st.one_of(
    st.sampled_from(["db", "", "name", "{", ",", '"name":']), st.integers(0, 3), st.none()
)


@given(
    st.one_of(
        st.lists(st.dictionaries(_JSON_KEYS, _JSON_VALUES, max_size=3), max_size=3),
        st.dictionaries(_JSON_KEYS, _JSON_VALUES, max_size=2),
        st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=2),
    ),
    st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")]),
    st.sampled_from(["", " ", "\n", "x", ",", "]"]),
)
@settings(max_examples=400, deadline=None)
def test_a_decided_dependencies_annotation_declares_as_the_rule_reads_it(
    document: object, separators: tuple[str, str], suffix: str
) -> None:
    from types import SimpleNamespace

    from prodready.rules.checks.health import _declared_dependencies

    value = json.dumps(document, separators=separators) + suffix
    if re.search(vap._DECIDED_DEPENDENCIES, value) is None:
        # Not decided in the apiserver: it declares nothing there (the webhook judges).
        return
    metadata = {"annotations": {vap.DEPENDENCIES_KEY: value}}
    subject = SimpleNamespace(workload=SimpleNamespace(metadata=metadata, template_metadata={}))
    declared = _declared_dependencies(subject)  # type: ignore[arg-type]
    assert _declares_in_regexes(value) == bool(declared), value


@pytest.mark.parametrize(
    "value",
    ['[{"name":"orders-db","type":"database"}]', '[ {"type" : "redis",\n"name": "c"} ]', "[]",
     '[{"type":"database"}]', '[{"a":"name"}]', '[{"a":"b"},{"name":""}]'],
)  # fmt: skip
def test_the_renderers_dependencies_are_decided(value: str) -> None:
    assert re.search(vap._DECIDED_DEPENDENCIES, value) is not None
    assert _declares_in_regexes(value) == ('"name"' in value and '"a":"name"' not in value)


def _secret_shape(value: str) -> bool:
    return any(
        re.search(_python_spelling(pattern), value) is not None
        for _, pattern in vap.SECRET_PATTERNS
    )


_SECRET_SAMPLES = [
    "AKIA" + "ABCDEFGHIJKLMNOP", "xAKIA" + "ABCDEFGHIJKLMNOP", "AKIA" + "ABCDEFGHIJKLMNOPQ",
    " AKIA" + "ABCDEFGHIJKLMNOP.", "AIza" + "a" * 35, "-AIza" + "a" * 35, "AIza" + "a" * 36,
    "éAIza" + "a" * 35, "ghp_" + "a" * 36, "ghp_" + "a" * 37, "xghp_" + "a" * 36,
    "github_pat_" + "a" * 82, "glpat-" + "a" * 20, "glpat-" + "a" * 20 + "-",
    "xoxb-" + "a" * 10, "axoxb-" + "a" * 10, "xoxb-" + "a" * 9,
    "https://hooks.slack.com/services/TABCDEF/BABCDEF/" + "a" * 20,
    "sk_live_" + "a" * 20, "rk_live_" + "a" * 19, "sk-" + "a" * 20 + "T3BlbkFJ",
    "sk-proj-" + "a" * 30 + "T3BlbkFJ", "-sk-" + "a" * 20 + "T3BlbkFJ",
    "sk-ant-api03-" + "a" * 80, "sk-ant-api٠٣-" + "a" * 80, "sk-ant-api0-" + "a" * 80,
    "npm_" + "a" * 36, "npm_" + "a" * 37, "SG." + "a" * 22 + "." + "b" * 43,
    "AccountKey=" + "a" * 80, "AccountKey=" + "a" * 79,
    "eyJ" + "a" * 8 + ".eyJ" + "b" * 8 + "." + "c" * 16, "eyJ" + "a" * 7 + ".eyJ" + "b" * 8,
    "_eyJ" + "a" * 8 + ".eyJ" + "b" * 8 + "." + "c" * 16,
    "-----BEGIN RSA PRIVATE KEY-----", "--- BEGIN A B C D PRIVATE KEY", "BEGIN PRIVATE KEY",
    "hunter2", "", "info",
]  # fmt: skip


@pytest.mark.parametrize("value", _SECRET_SAMPLES)
def test_the_secret_shapes_find_what_the_rule_finds(value: str) -> None:
    from prodready.rules.secrets import secret_kind

    assert _secret_shape(value) == (secret_kind(value) is not None)
    for kind, pattern in vap.SECRET_PATTERNS:
        from prodready.rules.secrets import PATTERNS

        (original,) = [p.pattern for p in PATTERNS if p.kind == kind]
        assert bool(re.search(_python_spelling(pattern), value)) == bool(original.search(value))


@pytest.mark.parametrize(
    "value",
    ["$(A)", "$(A)$(B)\n", "$(A)\n\n", "x$(A)", "$(A) ", "postgres://u:p@h", "postgres://h",
     "s3://u:\u3000p@h", "a://u:p\x1c@h", "https://:p@h"],
)  # fmt: skip
def test_the_value_patterns_are_the_rules(value: str) -> None:
    from prodready.rules.subject import RuleSettings

    reason = RuleSettings().secret_reason("PLAIN_SETTING", value)
    found = (
        re.search(vap._ONLY_REFERENCES, value) is None
        and re.search(vap._URL_WITH_PASSWORD, value) is not None
    ) or (re.search(vap._ONLY_REFERENCES, value) is None and _secret_shape(value))
    assert found == (reason is not None)
