"""README documents every contract the code exposes: settings, keys, fields, topics, CLI."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import click
import pytest

from pipeline.cli import _COMMANDS
from pipeline.config import Settings
from pipeline.features.state import UserContext, UserState
from pipeline.serve.metrics import ServeMetrics
from pipeline.stores.codec import features_fields
from pipeline.stores.keys import RedisKeys
from pipeline.worker.metrics import WorkerMetrics
from schemas.dead_letter import RejectReason

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented_with_its_variable(name: str) -> None:
    assert f"`RECLOOP_{name.upper()}`" in README


def test_every_features_field_is_documented() -> None:
    state = UserState("u", context=UserContext("en-GB", "tv", "home"))
    for field in features_fields(state, 0):
        assert f"`{field}`" in README, field


def test_documented_user_keys_are_the_ones_the_code_writes() -> None:
    keys = RedisKeys()
    for key in keys.user_keys("USER_ID"):
        assert f"`{key}`" in README, key
    assert "`recloop:user:{USER_ID}:features`" in README


def test_topics_cli_commands_and_reasons_are_documented() -> None:
    s = Settings()
    for topic in (s.topic_events, s.topic_items, s.topic_dlq, s.topic_recommendations):
        assert f"`{topic}`" in README
    for command in _COMMANDS:
        assert re.search(rf"`recloop {command}\b", README), command
    for reason in RejectReason:
        assert f"`{reason.value}`" in README, reason


# --- tables checked cell by cell --------------------------------------------------------


def _table(header: str) -> list[list[str]]:
    """Rows (cells stripped) of the README table whose header line starts with ``header``."""
    lines = README[README.index(header) :].splitlines()
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _outside_parentheses(text: str) -> str:
    kept, depth = [], 0
    for char in text:
        depth += char == "("
        if depth == 0:
            kept.append(char)
        depth -= char == ")" and depth > 0
    return "".join(kept)


def _key_template(keys: RedisKeys, name: str) -> str:
    """A key of the layout with its parameters shown as README shows them."""
    member = getattr(RedisKeys, name)
    if isinstance(member, property):
        return str(getattr(keys, name))
    params = [p for p in inspect.signature(member).parameters if p != "self"]
    shown = {"user_id": "USER_ID", "partition": "P", "version": "<N>"}
    return str(getattr(keys, name)(*(shown.get(p, f"<{p}>") for p in params)))


def test_key_table_is_the_key_layout() -> None:
    keys = RedisKeys()
    generic = {"user", "user_keys", "partition", "forget_token"}  # building blocks, not keys
    names = [
        name
        for name, member in vars(RedisKeys).items()
        if not name.startswith("_")
        and name not in generic
        and (isinstance(member, property) or inspect.isfunction(member))
    ]
    in_code = {_key_template(keys, n) for n in names}
    documented = {re.sub(r"`", "", row[0]) for row in _table("| key | type | holds |")}
    assert in_code == documented, (
        f"in keys.py, not README: {sorted(in_code - documented)}; "
        f"in README, not keys.py: {sorted(documented - in_code)}"
    )


def test_metrics_table_has_every_series_with_its_type() -> None:
    documented = {row[0].strip("`"): row[1] for row in _table("| metric | type | labels | what |")}
    in_code = {}
    for registry in (WorkerMetrics().registry, ServeMetrics().registry):
        for family in registry.collect():
            suffix = "_total" if family.type == "counter" else ""
            in_code[family.name + suffix] = family.type
    assert documented == in_code


def _label_names() -> dict[str, set[str]]:
    """Declared label names per metric (children need not exist yet)."""
    names: dict[str, set[str]] = {}
    for metrics in (WorkerMetrics(), ServeMetrics()):
        for attribute in vars(metrics).values():
            labelnames = getattr(attribute, "_labelnames", None)
            if labelnames is not None:
                names[attribute._name + ("_total" if attribute._type == "counter" else "")] = set(
                    labelnames
                )
    return names


def test_metrics_table_labels_are_the_declared_ones() -> None:
    documented = {
        row[0].strip("`"): set(re.findall(r"`([a-z_]+)`", _outside_parentheses(row[2])))
        for row in _table("| metric | type | labels | what |")
    }
    for name, labels in _label_names().items():
        assert documented.get(name) == labels, (name, documented.get(name), labels)


# the option names that stand for a setting, wherever they appear
SETTING_OPTIONS = {
    "--bootstrap": "kafka_bootstrap",
    "--redis-url": "redis_url",
    "--web-port": "web_port",
    "--data-dir": "data_dir",
    "--dir": "stack_dir",
    "--kafka-port": "stack_kafka_port",
    "--controller-port": "stack_kafka_controller_port",
    "--redis-port": "stack_redis_port",
    "--partitions": "topic_partitions",
    "--replication": "topic_replication",
}
SERVE_OPTIONS = {"--host": "api_host", "--port": "api_port"}


def _options() -> list[tuple[str, click.Option]]:
    from agents.cli import main

    ctx = click.Context(main)
    found: list[tuple[str, click.Option]] = []

    def walk(command: click.Command, path: str) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(sub, f"{path} {name}")
            return
        found.extend((path, p) for p in command.params if isinstance(p, click.Option))

    walk(main, "recloop")
    return found


@pytest.mark.parametrize(
    ("command", "option"), _options(), ids=lambda v: v if isinstance(v, str) else v.opts[-1]
)
def test_cli_option_env_vars_are_settings_and_shown(command: str, option: click.Option) -> None:
    """README: an option that stands for a setting reads its variable and shows it."""
    long_name = option.opts[-1]
    setting = SETTING_OPTIONS.get(long_name)
    if command == "recloop serve":
        setting = SERVE_OPTIONS.get(long_name, setting)
    if setting is not None:
        assert option.envvar == f"RECLOOP_{setting.upper()}", (command, long_name)
    if option.envvar is not None:
        assert isinstance(option.envvar, str) and option.envvar.startswith("RECLOOP_")
        assert option.envvar.removeprefix("RECLOOP_").lower() in Settings.model_fields
        assert option.show_envvar, f"{command} {long_name}: --help must show {option.envvar}"
    # click shows the variable itself; a hand-written "[env: ...]" goes stale
    assert "[env:" not in (option.help or ""), (command, long_name)
