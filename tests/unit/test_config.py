"""init_config parsing: Go plugin keys and defaults, environment fallbacks, messages naming the key."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from k8saudit_eks_py.config import PluginConfig, config_table_markdown, init_schema, parse_config
from k8saudit_eks_py.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)


# `init_config: {}` in falco.yaml reaches the plugin as the JSON text null; `init_config: ""` as "".
@pytest.mark.parametrize("text", ["", "  ", "{}", "null", '""'])
def test_empty_config_gives_go_defaults(text: str) -> None:
    config = parse_config(text)
    assert config == PluginConfig()
    assert (config.buffer_size, config.shift, config.polling_interval, config.use_async) == (200, 1, 5, True)
    assert config.max_event_size == 1024 * 1024


def test_environment_fallbacks_in_go_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_PROFILE", "dflt")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert (parse_config("{}").profile, parse_config("{}").region) == ("dflt", "eu-west-1")
    monkeypatch.setenv("AWS_PROFILE", "prof")
    monkeypatch.setenv("AWS_REGION", "us-east-2")
    assert (parse_config("{}").profile, parse_config("{}").region) == ("prof", "us-east-2")
    assert parse_config('{"region": "ap-south-1"}').region == "ap-south-1"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('{"buffer_size": "200"}', "buffer_size"),
        ('{"buffer_size": 2.5}', "buffer_size"),
        ('{"use_async": "yes"}', "use_async"),
        ('{"shift": true}', "shift"),
        ('{"profile": 1}', "profile"),
        ('{"buffer_size": 0}', "buffer_size"),
        ('{"max_api_calls_per_second": 0}', "max_api_calls_per_second"),
    ],
)
def test_wrong_values_name_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"'{key}'"):
        parse_config(text)


@pytest.mark.parametrize("text", ["[]", "5", '"x"', "true"])
def test_config_that_is_not_a_map_fails(text: str) -> None:
    with pytest.raises(ConfigError, match="JSON object"):
        parse_config(text)


def test_unknown_keys_are_accepted_with_a_warning_naming_the_closest_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = parse_config('{"chekpoint_file": "/tmp/x", "someFutureKey": {"a": 1}, "region": "eu-west-1"}')
    assert config == PluginConfig(region="eu-west-1")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert "'chekpoint_file'" in lines[0] and "did you mean 'checkpoint_file'?" in lines[0]
    assert "'someFutureKey'" in lines[1] and "did you mean" not in lines[1]
    assert all("warning" in line for line in lines)


def test_known_keys_give_no_warning(capsys: pytest.CaptureFixture[str]) -> None:
    parse_config('{"checkpoint_file": "/tmp/x", "region": "eu-west-1"}')
    assert capsys.readouterr().err == ""


def test_schema_root_accepts_null_and_empty_string_and_rejects_other_roots() -> None:
    schema = init_schema()
    validator = jsonschema.Draft4Validator(schema)
    for ok in (None, "", {}, {"region": "eu-west-1", "someFutureKey": 1}):
        assert not list(validator.iter_errors(ok)), ok
    for bad in ("x", [], 5, {"buffer_size": "200"}, {"buffer_size": 0}):
        assert list(validator.iter_errors(bad)), bad


def test_schema_and_readme_table_cover_every_key() -> None:
    schema = init_schema()
    keys = set(PluginConfig.__dataclass_fields__)
    assert set(schema["properties"]) == keys
    table = config_table_markdown()
    assert all(f"`{key}`" in table for key in keys)


def test_readme_documents_the_current_config_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert config_table_markdown() in readme
