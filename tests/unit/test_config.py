"""Settings: parsing, validation messages that name the variable, generated docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodready.config import (
    Settings,
    SettingsError,
    env_example,
    env_name,
    load_settings,
    settings_reference_markdown,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_defaults_need_no_environment() -> None:
    settings = load_settings({})
    assert settings.namespaces == []
    assert settings.log_level == "INFO"
    assert settings.log_format == "json"
    assert settings.health_host == "0.0.0.0"  # noqa: S104 - the default under test
    assert settings.health_port == 8080
    assert settings.webhook_port == 9443
    assert settings.webhook_cert_file is None
    assert settings.webhook_key_file is None
    assert settings.webhook_failure_policy == "Fail"
    assert settings.webhook_timeout_seconds == 5
    assert settings.resync_interval_seconds == 300
    assert settings.shutdown_timeout_seconds == 25
    assert settings.field_manager == "prodready"
    assert settings.lease_name == "prodready"
    assert settings.standalone is False
    assert settings.audit_interval_seconds == 600
    assert settings.report_max_results == 1000
    assert settings.status_max_findings == 20
    assert settings.rules_config_file is None
    assert settings.environment_default == "unset"
    assert settings.kubeconfig is None


def test_shutdown_timeout_default_is_below_the_chart_grace_period() -> None:
    assert load_settings({}).shutdown_timeout_seconds < 30


def test_every_setting_has_a_default_and_a_description() -> None:
    for name, field in Settings.model_fields.items():
        assert not field.is_required(), name
        assert field.description, name


def test_no_secret_has_a_default() -> None:
    """Guards future settings: anything named like a secret must come from the environment."""
    from prodready.observability.logging import is_sensitive_key

    for name, field in Settings.model_fields.items():
        if is_sensitive_key(name):
            assert field.default is None, name


def test_load_settings_reads_only_the_given_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODREADY_HEALTH_PORT", "1234")
    assert load_settings({}).health_port == 8080
    assert load_settings().health_port == 1234


def test_settings_constructor_reads_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRODREADY_NAMESPACES", "team-a,team-b")
    assert Settings().namespaces == ["team-a", "team-b"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a,b", ["a", "b"]),
        (" a , b ,", ["a", "b"]),
        ("a,b,a", ["a", "b"]),
        ('["a", "b"]', ["a", "b"]),
        ("", []),
        ("single", ["single"]),
    ],
)
def test_namespaces_parse_comma_separated_and_json(raw: str, expected: list[str]) -> None:
    assert load_settings({"PRODREADY_NAMESPACES": raw}).namespaces == expected


def test_names_are_case_insensitive_and_choices_normalised() -> None:
    settings = load_settings(
        {
            "prodready_log_level": "debug",
            "PRODREADY_LOG_FORMAT": "Console",
            "PRODREADY_WEBHOOK_FAILURE_POLICY": "ignore",
            "PRODREADY_ENVIRONMENT_DEFAULT": "PROD",
            "PRODREADY_STANDALONE": "true",
        }
    )
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "console"
    assert settings.webhook_failure_policy == "Ignore"
    assert settings.environment_default == "prod"
    assert settings.standalone is True


def test_empty_value_means_default() -> None:
    assert (
        load_settings({"PRODREADY_LOG_LEVEL": "", "PRODREADY_KUBECONFIG": ""}).log_level == "INFO"
    )


def test_settings_are_immutable() -> None:
    settings = load_settings({})
    with pytest.raises(ValueError, match="frozen"):
        settings.health_port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "PRODREADY_HEALTH_PORT",
            "x",
            "PRODREADY_HEALTH_PORT: must be between 1 and 65535 (got 'x')",
        ),
        (
            "PRODREADY_HEALTH_PORT",
            "0",
            "PRODREADY_HEALTH_PORT: must be between 1 and 65535 (got '0')",
        ),
        ("PRODREADY_WEBHOOK_PORT", "70000", "PRODREADY_WEBHOOK_PORT: must be between 1 and 65535"),
        ("PRODREADY_WEBHOOK_TIMEOUT_SECONDS", "31", "must be between 1 and 30 (got '31')"),
        ("PRODREADY_RESYNC_INTERVAL_SECONDS", "5", "must be a whole number of at least 10"),
        ("PRODREADY_SHUTDOWN_TIMEOUT_SECONDS", "-1", "at least 1 (got '-1')"),
        ("PRODREADY_AUDIT_INTERVAL_SECONDS", "1.5", "PRODREADY_AUDIT_INTERVAL_SECONDS: must be"),
        ("PRODREADY_REPORT_MAX_RESULTS", "0", "PRODREADY_REPORT_MAX_RESULTS: must be"),
        ("PRODREADY_STATUS_MAX_FINDINGS", "none", "PRODREADY_STATUS_MAX_FINDINGS: must be"),
        ("PRODREADY_LOG_LEVEL", "verbose", "must be one of DEBUG, INFO, WARNING, ERROR"),
        ("PRODREADY_LOG_FORMAT", "xml", "PRODREADY_LOG_FORMAT: must be one of json, console"),
        ("PRODREADY_WEBHOOK_FAILURE_POLICY", "Maybe", "must be one of Fail, Ignore"),
        ("PRODREADY_ENVIRONMENT_DEFAULT", "production", "must be one of dev, staging, prod"),
        ("PRODREADY_STANDALONE", "perhaps", "PRODREADY_STANDALONE: must be true or false"),
        ("PRODREADY_NAMESPACES", "Team_A", "PRODREADY_NAMESPACES: 'Team_A' is not a valid"),
        ("PRODREADY_NAMESPACES", "x" * 64, "is not a valid namespace name"),
        ("PRODREADY_NAMESPACES", '["a",', "must be a comma-separated list or a JSON list"),
        ("PRODREADY_HEALTH_HOST", "local host", "PRODREADY_HEALTH_HOST: must be a host name"),
        ("PRODREADY_FIELD_MANAGER", "x" * 129, "must be 1 to 128 printable characters"),
        ("PRODREADY_FIELD_MANAGER", "a\tb", "must be 1 to 128 printable characters"),
        ("PRODREADY_LEASE_NAME", "Prod Ready", "PRODREADY_LEASE_NAME: must be a Kubernetes object"),
        ("PRODREADY_KUBECONFIG", "/does/not/exist", "PRODREADY_KUBECONFIG: file does not exist"),
        ("PRODREADY_RULES_CONFIG_FILE", "/nope.yaml", "PRODREADY_RULES_CONFIG_FILE: file does not"),
    ],
)
def test_invalid_values_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({variable: value})
    text = str(caught.value)
    assert message in text
    assert text.startswith(variable)
    # A person reads this at start-up: no pydantic jargon or documentation links.
    assert "pydantic" not in text
    assert "validation error" not in text
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("spelling", ["PRODREADY_PEERING", "prodready_peering"])
def test_the_old_lease_variable_stops_start_up_naming_the_new_one(spelling: str) -> None:
    # An upgrade that kept PRODREADY_PEERING would otherwise elect through another Lease.
    with pytest.raises(SettingsError) as caught:
        load_settings({spelling: "my-lease"})
    assert caught.value.problems == [
        "PRODREADY_PEERING: renamed to PRODREADY_LEASE_NAME; set PRODREADY_LEASE_NAME instead"
    ]


def test_the_old_lease_variable_is_reported_with_other_problems() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"PRODREADY_PEERING": "a", "PRODREADY_HEALTH_PORT": "x"})
    assert [problem.split(":")[0] for problem in caught.value.problems] == [
        "PRODREADY_PEERING",
        "PRODREADY_HEALTH_PORT",
    ]


def test_an_empty_old_lease_variable_is_not_set() -> None:
    # The same rule as every setting: `NAME=` in a manifest means "not set".
    assert load_settings({"PRODREADY_PEERING": ""}).lease_name == "prodready"


def test_the_lease_name_is_read_from_its_variable() -> None:
    assert load_settings({"PRODREADY_LEASE_NAME": "team-lease"}).lease_name == "team-lease"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"PRODREADY_HEALTH_PORT": "x", "PRODREADY_LOG_LEVEL": "loud"})
    assert len(caught.value.problems) == 2
    assert str(caught.value).count("\n") == 1


def test_existing_files_are_accepted(tmp_path: Path) -> None:
    cert, key, rules = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "rules.yaml"
    for path in (cert, key, rules):
        path.write_text("x")
    settings = load_settings(
        {
            "PRODREADY_WEBHOOK_CERT_FILE": str(cert),
            "PRODREADY_WEBHOOK_KEY_FILE": str(key),
            "PRODREADY_RULES_CONFIG_FILE": str(rules),
            "PRODREADY_KUBECONFIG": str(rules),
        }
    )
    assert settings.webhook_cert_file == cert
    assert settings.webhook_key_file == key
    assert settings.rules_config_file == rules


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="PRODREADY_KUBECONFIG: file does not exist"):
        load_settings({"PRODREADY_KUBECONFIG": str(tmp_path)})


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ("PRODREADY_WEBHOOK_CERT_FILE", "PRODREADY_WEBHOOK_KEY_FILE"),
        ("PRODREADY_WEBHOOK_KEY_FILE", "PRODREADY_WEBHOOK_CERT_FILE"),
    ],
)
def test_webhook_certificate_and_key_come_together(
    tmp_path: Path, given: str, missing: str
) -> None:
    path = tmp_path / "file.pem"
    path.write_text("x")
    with pytest.raises(SettingsError) as caught:
        load_settings({given: str(path)})
    assert str(caught.value) == f"{missing}: must be set together with {given}"


def test_env_name() -> None:
    assert env_name("health_port") == "PRODREADY_HEALTH_PORT"


def test_env_example_file_is_current() -> None:
    """`.env.example` is generated; regenerate it with `python -c 'from prodready.config
    import env_example; print(env_example(), end="")' > .env.example`."""
    assert (REPO_ROOT / ".env.example").read_text() == env_example()


def test_env_example_lists_every_variable_with_its_default() -> None:
    text = env_example()
    for name in Settings.model_fields:
        assert f"\n{env_name(name)}=" in text
    assert "\nPRODREADY_HEALTH_PORT=8080\n" in text
    assert "\nPRODREADY_NAMESPACES=\n" in text
    assert "\nPRODREADY_STANDALONE=false\n" in text


def test_env_example_loads_as_the_defaults() -> None:
    environ = {}
    for line in env_example().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            environ[key] = value
    assert load_settings(environ) == load_settings({})


def test_reference_markdown_is_a_table_of_every_variable() -> None:
    table = settings_reference_markdown()
    lines = table.splitlines()
    assert lines[0] == "| Variable | Default | Description |"
    assert len(lines) == 2 + len(Settings.model_fields)
    assert "| `PRODREADY_HEALTH_PORT` | `8080` |" in table
    assert "| `PRODREADY_KUBECONFIG` | (unset) |" in table
    assert "| `PRODREADY_NAMESPACES` | (empty) |" in table
    assert all(line.count(" | ") == 2 for line in lines[2:])
