"""Where a CAVE token comes from, and keeping it out of everything a person can see.

Resolution order: the ``token=`` argument, the ``CAVE_TOKEN`` environment
variable, then caveclient's secret files in ``~/.cloudvolume/secrets``:
``{global-host}-cave-secret.json``, ``cave-secret.json`` and the deprecated
``chunkedgraph-secret.json`` (JSON key ``token``). The token travels as
``Authorization: Bearer`` and the ``middle_auth_token`` cookie, like caveclient.

A :class:`Token` never shows its value in ``repr``/``str``; :func:`redact`
scrubs it from any text that leaves the backend (errors, logs).

>>> t = Token("0123456789abcdef0123456789abcdef", source="argument")
>>> t
Token(source='argument', value=<redacted>)
>>> redact("sent 0123456789abcdef0123456789abcdef to the server", t)
'sent <token> to the server'
>>> redact("datastack not found", Token("t"))
'datastack not found'
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from caveql.errors import ConfigError

__all__ = ["DEFAULT_SECRETS_DIR", "Token", "auth_headers", "find_token", "redact", "token_help"]

#: caveclient's (and cloud-volume's) secrets folder.
DEFAULT_SECRETS_DIR = Path("~/.cloudvolume/secrets")


@dataclass(frozen=True)
class Token:
    """A bearer token and where it came from; its value is never printed."""

    value: str = field(repr=False)
    source: str = "argument"

    def __repr__(self) -> str:
        return f"Token(source={self.source!r}, value=<redacted>)"

    __str__ = __repr__


def secret_files(server: str, secrets_dir: Path | str | None = None) -> list[Path]:
    """The secret files caveclient reads for a global server, in order.

    >>> [p.name for p in secret_files("https://global.daf-apis.com", "/s")]
    ['global.daf-apis.com-cave-secret.json', 'cave-secret.json', 'chunkedgraph-secret.json']
    """
    folder = Path(secrets_dir if secrets_dir is not None else DEFAULT_SECRETS_DIR).expanduser()
    host = urlparse(server).netloc or server
    return [folder / f"{host}-cave-secret.json", folder / "cave-secret.json",
            folder / "chunkedgraph-secret.json"]


def find_token(
    server: str,
    token: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    secrets_dir: Path | str | None = None,
) -> Token | None:
    """The token to use for ``server`` (the global server), or ``None`` for public access only.

    >>> find_token("https://global.daf-apis.com", env={"CAVE_TOKEN": "abc"}, secrets_dir="/nonexistent")
    Token(source='CAVE_TOKEN', value=<redacted>)
    >>> find_token("https://global.daf-apis.com", env={}, secrets_dir="/nonexistent") is None
    True
    """
    if token:
        return Token(token.strip(), "argument")
    env = os.environ if env is None else env
    if env.get("CAVE_TOKEN", "").strip():
        return Token(env["CAVE_TOKEN"].strip(), "CAVE_TOKEN")
    for path in secret_files(server, secrets_dir):
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the token file {path}: {type(exc).__name__}") from None
        value = data.get("token") if isinstance(data, dict) else None
        if isinstance(value, str) and value.strip():
            return Token(value.strip(), str(path))
        raise ConfigError(f"the token file {path} has no \"token\" key")
    return None


def auth_headers(token: Token | None) -> dict[str, str]:
    """The headers caveclient's sessions send with a token (none without one).

    >>> sorted(auth_headers(Token("t")))
    ['Authorization', 'Cookie']
    """
    if token is None:
        return {}
    return {"Authorization": f"Bearer {token.value}", "Cookie": f"middle_auth_token={token.value}"}


def redact(text: str, token: Token | None) -> str:
    """``text`` with the token's value replaced by ``<token>``."""
    if token is None or not token.value:
        return text
    # whole-token matches only: a short token must not mangle the words around it
    pattern = rf"(?<![A-Za-z0-9_-]){re.escape(token.value)}(?![A-Za-z0-9_-])"
    return re.sub(pattern, "<token>", text)


def token_help(server: str) -> str:
    """How to get and install a token, for 401/403 and missing-token errors.

    >>> "create_token" in token_help("https://global.daf-apis.com")
    True
    """
    host = urlparse(server).netloc or server
    return (
        f"get a token at {server.rstrip('/')}/auth/api/v1/create_token (or see your tokens at "
        f"{server.rstrip('/')}/sticky_auth/settings/tokens), then pass it as token=..., set the "
        f"CAVE_TOKEN environment variable, or save it as {{\"token\": \"...\"}} in "
        f"~/.cloudvolume/secrets/{host}-cave-secret.json (caveclient's client.auth.save_token does this)"
    )
