"""Config from the environment: one-line errors that name the variable, secrets never shown."""

from __future__ import annotations

import io
from typing import Literal

import pytest
from pydantic import Field, SecretStr, ValidationError, model_validator

from pipeline.common.config import ConfigError, EnvSettings, load_settings, settings_or_exit


class StorageSettings(EnvSettings):
    env_prefix = "CUTOVER_"

    influx_url: str
    influx_token: SecretStr = Field(min_length=8)
    batch_size: int = Field(default=500, ge=1)
    flush_interval: float = Field(default=1.0, gt=0)
    shadow: bool = False
    mode: Literal["legacy", "new"] = "new"
    tags: list[str] = []


GOOD = {"CUTOVER_INFLUX_URL": "http://127.0.0.1:8086", "CUTOVER_INFLUX_TOKEN": "s3cr3t-t0ken-xyz"}


def test_reads_prefixed_variables_and_converts_types() -> None:
    env = {
        **GOOD,
        "CUTOVER_BATCH_SIZE": "250",
        "CUTOVER_FLUSH_INTERVAL": "0.5",
        "CUTOVER_SHADOW": "yes",
        "CUTOVER_MODE": "legacy",
        "CUTOVER_TAGS": '["a", "b"]',
        "OTHER_BATCH_SIZE": "abc",  # another prefix: not ours, not looked at
    }
    s = load_settings(StorageSettings, env)
    assert (s.batch_size, s.flush_interval, s.shadow, s.mode, s.tags) == (
        250, 0.5, True, "legacy", ["a", "b"],
    )
    assert s.influx_token.get_secret_value() == "s3cr3t-t0ken-xyz"


def test_unset_variables_take_defaults() -> None:
    s = load_settings(StorageSettings, GOOD)
    assert (s.batch_size, s.shadow, s.mode) == (500, False, "new")


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("CUTOVER_BATCH_SIZE", "abc", "CUTOVER_BATCH_SIZE='abc': expected an integer >= 1"),
        ("CUTOVER_BATCH_SIZE", "0", "CUTOVER_BATCH_SIZE='0': expected an integer >= 1"),
        ("CUTOVER_FLUSH_INTERVAL", "-1", "CUTOVER_FLUSH_INTERVAL='-1': expected a number > 0"),
        (
            "CUTOVER_SHADOW",
            "maybe",
            "CUTOVER_SHADOW='maybe': expected a boolean (true/false, 1/0, yes/no, on/off)",
        ),
        ("CUTOVER_MODE", "both", "CUTOVER_MODE='both': expected one of 'legacy', 'new'"),
        ("CUTOVER_TAGS", "a,b", "CUTOVER_TAGS='a,b': expected a JSON list"),
    ],
)
def test_bad_value_message_is_exact(var: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(StorageSettings, {**GOOD, var: value})
    assert str(info.value) == message


def test_missing_required_variable_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(StorageSettings, {"CUTOVER_INFLUX_TOKEN": "s3cr3t-t0ken-xyz"})
    assert str(info.value) == "CUTOVER_INFLUX_URL is not set: expected a string"


def test_message_stays_one_line_even_for_a_multiline_value() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(StorageSettings, {**GOOD, "CUTOVER_BATCH_SIZE": "1\n2\n" + "9" * 200})
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("CUTOVER_BATCH_SIZE='1\\n2\\n")
    assert text.endswith("...': expected an integer >= 1")


def test_several_bad_values_are_all_named_on_one_line() -> None:
    env = {**GOOD, "CUTOVER_BATCH_SIZE": "x", "CUTOVER_MODE": "y"}
    with pytest.raises(ConfigError) as info:
        load_settings(StorageSettings, env)
    assert str(info.value) == (
        "CUTOVER_BATCH_SIZE='x': expected an integer >= 1; "
        "CUTOVER_MODE='y': expected one of 'legacy', 'new'"
    )


def test_a_bad_secret_is_named_but_its_value_never_printed() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(StorageSettings, {**GOOD, "CUTOVER_INFLUX_TOKEN": "hunter2"})
    assert str(info.value) == (
        "CUTOVER_INFLUX_TOKEN=<hidden>: expected a secret string of at least 8 characters"
    )
    assert "hunter2" not in str(info.value)


def test_a_loaded_secret_never_prints() -> None:
    s = load_settings(StorageSettings, GOOD)
    for text in (str(s), repr(s), str(s.safe_dump()), s.model_dump_json()):
        assert "s3cr3t-t0ken-xyz" not in text
    assert s.safe_dump()["influx_token"] == "**********"


def test_settings_are_frozen() -> None:
    s = load_settings(StorageSettings, GOOD)
    with pytest.raises(ValidationError, match="frozen"):
        s.batch_size = 3  # type: ignore[misc]


def test_cross_field_rule_reports_prefix_and_message() -> None:
    class Window(EnvSettings):
        env_prefix = "CUTOVER_W_"
        low: int = 0
        high: int = 10

        @model_validator(mode="after")
        def _ordered(self) -> Window:
            if self.low > self.high:
                raise ValueError("LOW must not exceed HIGH")
            return self

    with pytest.raises(ConfigError) as info:
        load_settings(Window, {"CUTOVER_W_LOW": "11"})
    assert str(info.value) == "CUTOVER_W_*: Value error, LOW must not exceed HIGH"


def test_settings_or_exit_prints_the_line_and_exits_2() -> None:
    err = io.StringIO()
    with pytest.raises(SystemExit) as info:
        settings_or_exit(StorageSettings, {**GOOD, "CUTOVER_BATCH_SIZE": "abc"}, stderr=err)
    assert info.value.code == 2
    assert err.getvalue() == "CUTOVER_BATCH_SIZE='abc': expected an integer >= 1\n"


def test_settings_or_exit_writes_to_real_stderr_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        settings_or_exit(StorageSettings, {**GOOD, "CUTOVER_INFLUX_TOKEN": "short"})
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        "CUTOVER_INFLUX_TOKEN=<hidden>: expected a secret string of at least 8 characters"
    )
    assert "short" not in captured.err


def test_settings_or_exit_returns_settings_when_valid() -> None:
    assert settings_or_exit(StorageSettings, GOOD).influx_url == "http://127.0.0.1:8086"
