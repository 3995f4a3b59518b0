"""~/.config/caveql/config.toml: every key, and errors naming the bad key."""

from __future__ import annotations

import pytest

from caveql.errors import ConfigError
from caveql.repl.config import Config, config_path, load_config

FULL = """
[repl]
editing_mode = "vi"
format = "markdown"
expanded = "auto"
pager = "off"
timing = true
max_rows = 12
null = "∅"
syntax_style = "monokai"
history = false

[connection]
datastack = "minnie65_public"
server = "https://example.org"
path = "~/data/ds"
version = 1300
"""


def test_every_key() -> None:
    cfg = Config.from_toml(FULL, source="c.toml")
    assert (cfg.editing_mode, cfg.format, cfg.expanded, cfg.pager, cfg.timing, cfg.max_rows, cfg.null,
            cfg.syntax_style, cfg.history) == ("vi", "markdown", "auto", "off", True, 12, "∅", "monokai", False)
    assert cfg.datastack == "minnie65_public" and cfg.version == 1300 and not cfg.path.startswith("~")


@pytest.mark.parametrize(("text", "message"), [
    ("[repl]\neditng_mode = 'vi'", "unknown key 'editng_mode'"),
    ("[repel]\n", "unknown section [repel]"),
    ("[repl]\nmax_rows = '12'", "'max_rows' must be int"),
    ("[repl]\ntiming = 1", "'timing' must be bool"),
    ("[connection]\nversion = true", "'version' must be int"),
    ("[repl]\nediting_mode = 'nano'", "must be one of vi, emacs"),
    ("[repl\n", "c.toml"),
])
def test_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as err:
        Config.from_toml(text, source="c.toml")
    if "editng" in text:
        assert err.value.hint == "did you mean 'editing_mode'?"


def test_load_and_path(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CAVEQL_CONFIG", str(tmp_path / "missing.toml"))
    assert load_config() == Config()
    f = tmp_path / "c.toml"
    f.write_text("[repl]\ntiming = true\n")
    monkeypatch.setenv("CAVEQL_CONFIG", str(f))
    assert config_path() == str(f) and load_config().timing is True
    monkeypatch.delenv("CAVEQL_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path() == str(tmp_path / "caveql" / "config.toml")
