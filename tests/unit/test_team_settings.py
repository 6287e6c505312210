"""The settings of running for a team and of the insights (app/config.py): each read from its variable,
each malformed value a BadSetting that names the variable and what to write."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.errors import BadSetting


@pytest.mark.parametrize("env,field,want", [
    ({}, "database_url", None),
    ({"BOUNCEBOT_DATABASE_URL": " postgresql://u:p@db:5432/bb "}, "database_url", "postgresql://u:p@db:5432/bb"),
    ({"BOUNCEBOT_DATABASE_URL": "postgres://u@db/bb"}, "database_url", "postgres://u@db/bb"),
    ({}, "workers", 1),
    ({"BOUNCEBOT_WORKERS": "4"}, "workers", 4),
    ({"BOUNCEBOT_INDEX_POLL": "0.5"}, "index_poll", 0.5),
    ({}, "log_format", "text"),
    ({"BOUNCEBOT_LOG_FORMAT": "JSON"}, "log_format", "json"),
    ({}, "log_questions", False),
    ({"BOUNCEBOT_LOG_QUESTIONS": "on"}, "log_questions", True),
    ({"BOUNCEBOT_METRICS": "off"}, "metrics", False),
    ({}, "conversation_log", True),
    ({"BOUNCEBOT_CONVERSATION_LOG": "no"}, "conversation_log", False),
    ({"BOUNCEBOT_LOG_KEEP_PERSONAL_DATA": "1"}, "log_keep_personal_data", True),
    ({"BOUNCEBOT_LOG_RETENTION_DAYS": "30"}, "log_retention_days", 30),
    ({}, "insights_token", None),
    ({"BOUNCEBOT_INSIGHTS_TOKEN": "  s3cret  "}, "insights_token", "s3cret"),
    ({}, "multilingual_max_docs", 2000),
    ({"BOUNCEBOT_MULTILINGUAL_MAX_DOCS": "0"}, "multilingual_max_docs", 0),
])
def test_each_setting_is_read_from_its_variable(env, field, want):
    assert getattr(Settings.from_env(env), field) == want


@pytest.mark.parametrize("name,raw,says", [
    ("BOUNCEBOT_DATABASE_URL", "mysql://u@db/bb", "PostgreSQL URL"),
    ("BOUNCEBOT_WORKERS", "0", "greater than 0"),
    ("BOUNCEBOT_WORKERS", "two", "BOUNCEBOT_WORKERS"),
    ("BOUNCEBOT_INDEX_POLL", "-1", "greater than 0"),
    ("BOUNCEBOT_LOG_FORMAT", "xml", "text, json"),
    ("BOUNCEBOT_LOG_QUESTIONS", "maybe", "on or off"),
    ("BOUNCEBOT_CONVERSATION_LOG", "sometimes", "on or off"),
    ("BOUNCEBOT_LOG_RETENTION_DAYS", "0", "greater than 0"),
    ("BOUNCEBOT_MULTILINGUAL_MAX_DOCS", "-5", "0 or more"),
])
def test_a_malformed_value_names_its_variable_and_what_to_write(name, raw, says):
    with pytest.raises(BadSetting) as e:
        Settings.from_env({name: raw})
    assert name in str(e.value) and says in str(e.value)


def test_the_database_url_is_never_shown_in_the_settings_repr():
    assert "secret" not in repr(Settings.from_env({"BOUNCEBOT_DATABASE_URL": "postgresql://u:secret@db/bb",
                                                   "BOUNCEBOT_INSIGHTS_TOKEN": "secret"}))
