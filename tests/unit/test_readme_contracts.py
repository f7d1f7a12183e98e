"""README documents every contract the code exposes: settings, keys, fields, topics, CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.cli import _COMMANDS
from pipeline.config import Settings
from pipeline.features.state import UserContext, UserState
from pipeline.stores.codec import features_fields
from pipeline.stores.keys import RedisKeys
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
