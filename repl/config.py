"""``~/.config/caveql/config.toml``: defaults for the CLI and the REPL.

Every key is optional; unknown keys and wrong types are errors naming the key
(a typo in a config file should not be silently ignored)::

    [repl]
    editing_mode = "vi"        # or "emacs"
    format = "table"           # table, vertical, csv, tsv, json, jsonl, markdown, parquet
    expanded = "auto"          # on, off, auto
    pager = "auto"             # on, off, auto
    timing = true
    max_rows = 40
    null = "NULL"
    syntax_style = "monokai"   # any pygments style
    history = true

    [connection]
    datastack = "minnie65_public"
    server = "https://global.daf-apis.com"
    path = "~/data/my_datastack"
    version = 1300
    archives = ["gs://bucket/exports/minnie65_public"]   # Delta Lake exports of expired versions

``$CAVEQL_CONFIG`` points elsewhere; ``$XDG_CONFIG_HOME`` is honoured.

>>> cfg = Config.from_toml('[repl]\\nediting_mode = "vi"\\n[connection]\\nversion = 343\\n')
>>> cfg.editing_mode, cfg.version, cfg.format
('vi', 343, 'table')
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

from caveql.errors import ConfigError, did_you_mean

__all__ = ["Config", "config_path", "load_config"]

_SECTIONS = {
    "repl": {"editing_mode": str, "format": str, "expanded": str, "pager": str, "timing": bool,
             "max_rows": int, "null": str, "syntax_style": str, "history": bool},
    "connection": {"datastack": str, "server": str, "path": str, "version": int, "archives": list},
}
_CHOICES = {"editing_mode": ("vi", "emacs"), "expanded": ("on", "off", "auto"),
            "pager": ("on", "off", "auto")}


@dataclass
class Config:
    """The settings a config file can give (defaults when absent)."""

    editing_mode: str = "emacs"
    format: str = "table"
    expanded: str = "off"
    pager: str = "auto"
    timing: bool = False
    max_rows: int = 40
    null: str = "NULL"
    syntax_style: str = "default"
    history: bool = True
    datastack: str | None = None
    server: str | None = None
    path: str | None = None
    version: int | None = None
    archives: list[str] | None = None
    source: str | None = None

    @classmethod
    def from_toml(cls, text: str, source: str | None = None) -> Config:
        """Parse config text; :class:`ConfigError` names a bad key or value."""
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source or 'config'}: {exc}", filename=source) from exc
        values: dict[str, Any] = {}
        for section, body in data.items():
            keys = _SECTIONS.get(section)
            if keys is None or not isinstance(body, dict):
                raise ConfigError(f"{source or 'config'}: unknown section [{section}]",
                                  hint=_hint(section, _SECTIONS), filename=source)
            for key, value in body.items():
                typ = keys.get(key)
                if typ is None:
                    raise ConfigError(f"{source or 'config'}: unknown key '{key}' in [{section}]",
                                      hint=_hint(key, keys), filename=source)
                if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
                    raise ConfigError(f"{source or 'config'}: '{key}' must be {typ.__name__}, "
                                      f"not {value!r}", filename=source)
                if key in _CHOICES and value not in _CHOICES[key]:
                    raise ConfigError(f"{source or 'config'}: '{key}' must be one of "
                                      f"{', '.join(_CHOICES[key])}, not {value!r}", filename=source)
                values[key] = value
        if "format" in values:
            from caveql.repl.formatting import FORMATS

            if values["format"] not in FORMATS:
                raise ConfigError(f"{source or 'config'}: unknown format {values['format']!r}",
                                  hint=_hint(values["format"], dict.fromkeys(FORMATS)), filename=source)
        if "path" in values:
            values["path"] = os.path.expanduser(values["path"])
        if "archives" in values:
            if not all(isinstance(a, str) for a in values["archives"]):
                raise ConfigError(f"{source or 'config'}: 'archives' must be a list of paths or URLs, "
                                  f"not {values['archives']!r}", filename=source)
            values["archives"] = [a if "://" in a else os.path.expanduser(a) for a in values["archives"]]
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known}, source=source)


def _hint(word: str, choices: Any) -> str | None:
    close = did_you_mean(word, list(choices))
    return f"did you mean '{close[0]}'?" if close else None


def config_path() -> str:
    """The config file's path (``$CAVEQL_CONFIG``, else ``$XDG_CONFIG_HOME/caveql/config.toml``).

    >>> config_path().endswith("config.toml") or "CAVEQL_CONFIG" in os.environ
    True
    """
    env = os.environ.get("CAVEQL_CONFIG")
    if env:
        return os.path.expanduser(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "caveql", "config.toml")


def load_config(path: str | None = None) -> Config:
    """The config from ``path`` (default :func:`config_path`); defaults if the file is absent."""
    path = path or config_path()
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", filename=path) from exc
    return Config.from_toml(text, source=path)
