"""Run the genuine MaterializationEngine 5.26.4 here, as the conformance oracle.

One entry point, :func:`start_genuine`, gives a running engine over a caveql datastack
folder: a private PostgreSQL 15 + PostGIS 3 cluster on 127.0.0.1 (:class:`PgCluster`),
the engine's own Python 3.12 environment built from its ``uv.lock`` and cached in the
user cache dir (:func:`engine_env`), the datastack loaded into the engine's database
layout (``me_loader.py``, run in that environment), the Flask app served on loopback
(``me_launch.py``), and a "global server" front (:class:`GlobalFront`) that answers the
info and schema routes caveclient and the engine ask for, naming the engine as the
datastack's ``local_server``, and the ChunkedGraph the engine's live endpoints ask (caveql
serve's own, ``caveql/server/chunkedgraph.py``, under ``/segmentation``: the datastack's history).

Missing prerequisites raise :class:`HarnessError` with the command that installs them;
the conformance tests fail with it (never skip).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
COMMIT = "6cb08eb953b83798978272e0991b4d0e581fc780"
ARCHIVE = "MaterializationEngine-5.26.4-6cb08eb.tar.gz"
PG_VERSION = 15
PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")
PG_INSTALL = f"apt-get install -y postgresql-{PG_VERSION} postgresql-{PG_VERSION}-postgis-3"
# bump when the way the environment is built changes (part of the cache key)
ENV_RECIPE = 1


class HarnessError(RuntimeError):
    """A prerequisite of the conformance harness is missing or the engine failed to start."""


def cache_root() -> Path:
    """Where the engine's source and environment are kept between runs (``CAVEQL_ME_CACHE``)."""
    return Path(os.environ.get("CAVEQL_ME_CACHE") or Path(platformdirs.user_cache_dir("caveql")) / "genuine-me")


# --------------------------------------------------------------------------- the source


def _archive() -> tuple[Path | None, str]:
    """The upstream archive: ../shared/upstream, else ``CAVEQL_ME_SOURCE`` (a path or URL)."""
    shared = ROOT.parent / "shared" / "upstream" / ARCHIVE
    if shared.is_file():
        return shared, str(shared)
    src = os.environ.get("CAVEQL_ME_SOURCE")
    if not src:
        raise HarnessError(
            f"the MaterializationEngine source is missing: {shared} does not exist; set CAVEQL_ME_SOURCE to "
            f"a path or URL of {ARCHIVE} (CAVEconnectome/MaterializationEngine at {COMMIT}) or of its "
            "extracted folder")
    print(f"conformance: MaterializationEngine source from CAVEQL_ME_SOURCE={src}", file=sys.stderr)
    if src.startswith(("http://", "https://")):
        import httpx

        target = cache_root() / ARCHIVE
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            with httpx.stream("GET", src, follow_redirects=True, timeout=120) as r:
                r.raise_for_status()
                tmp = target.with_suffix(".part")
                with open(tmp, "wb") as f:
                    for chunk in r.iter_bytes():
                        f.write(chunk)
            tmp.replace(target)
        return target, src
    path = Path(src)
    if path.is_dir():
        return None, str(path)
    if path.is_file():
        return path, src
    raise HarnessError(f"CAVEQL_ME_SOURCE={src} is neither a file, a folder nor a URL")


def engine_source() -> Path:
    """The extracted engine source (the folder holding ``materializationengine/`` and ``uv.lock``)."""
    archive, where = _archive()
    if archive is None:
        folder = Path(where)
    else:
        folder = cache_root() / f"src-{COMMIT[:12]}"
        if not (folder / "uv.lock").is_file():
            tmp = Path(tempfile.mkdtemp(prefix="src-", dir=_mkdir(cache_root())))
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
            (inner,) = [p for p in tmp.iterdir() if p.is_dir()]
            shutil.rmtree(folder, ignore_errors=True)
            inner.rename(folder)
            shutil.rmtree(tmp, ignore_errors=True)
    if not (folder / "materializationengine" / "app.py").is_file() or not (folder / "uv.lock").is_file():
        raise HarnessError(f"{where} does not hold MaterializationEngine's source with its uv.lock")
    return folder


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


# --------------------------------------------------------------------------- the environment


def python312() -> str:
    """A CPython 3.12 interpreter (the engine requires ``==3.12.*``)."""
    candidates = [shutil.which("python3.12") or ""]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv.is_dir():
        candidates += [str(p / "bin" / "python3.12") for p in sorted(pyenv.glob("3.12*"), reverse=True)]
    for c in candidates:
        if c and Path(c).is_file():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                out = subprocess.run([c, "-c", "import sys; print(sys.version_info[:2])"],
                                     capture_output=True, text=True, timeout=30)
                if out.stdout.strip() == "(3, 12)":
                    return c
    raise HarnessError("the genuine engine needs Python 3.12, which is not installed: "
                       "`pyenv install 3.12` (or `uv python install 3.12`)")


def _uv() -> str:
    try:
        from uv import find_uv_bin
    except ImportError as e:
        raise HarnessError("uv is missing: `.venv/bin/pip install -e '.[test]'` (make test does it)") from e
    return find_uv_bin()


def engine_env(source: Path | None = None) -> Path:
    """The engine's Python, in a venv built from its lock file (``uv sync --frozen``), cached.

    The cache key is the lock file, the interpreter and :data:`ENV_RECIPE`; a build goes
    into a temporary folder renamed into place, so an interrupted build is never used.
    """
    source = source or engine_source()
    py = python312()
    key = hashlib.sha256((source / "uv.lock").read_bytes() + (source / "pyproject.toml").read_bytes()
                         + f"{py}|{ENV_RECIPE}".encode()).hexdigest()[:16]
    env = cache_root() / f"env-{key}"
    python = env / "bin" / "python"
    if python.is_file():
        return python
    tmp = Path(tempfile.mkdtemp(prefix=f"env-{key}-", dir=_mkdir(cache_root())))
    shutil.rmtree(tmp)
    cmd = [_uv(), "sync", "--frozen", "--no-install-project", "--no-default-groups", "--python", py,
           "--directory", str(source)]
    environ = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp), "UV_PYTHON_DOWNLOADS": "never"}
    print(f"conformance: building the engine's environment in {env} (once)", file=sys.stderr)
    done = subprocess.run(cmd, env=environ, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise HarnessError(f"`{' '.join(cmd)}` failed:\n{done.stderr[-4000:]}")
    os.replace(tmp, env)
    # stale environments of older lock files
    for old in cache_root().glob("env-*"):
        if old != env and old.is_dir() and "-" not in old.name[4:]:
            shutil.rmtree(old, ignore_errors=True)
    return python


# --------------------------------------------------------------------------- PostgreSQL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    """The server refuses to run as root: run its commands as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        raise HarnessError("running as root needs `runuser` (util-linux) to start PostgreSQL as postgres")
    return [runuser, "-u", "postgres", "--", *cmd]


@dataclass
class PgCluster:
    """A private PostgreSQL cluster on 127.0.0.1 and a free port, trust auth, no durability."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="caveql-pg-")))
    port: int = 0

    def url(self, database: str = "postgres") -> str:
        """A TCP URL (the engine rebuilds URLs with ``rpartition('/')``)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PgCluster:
        for tool in ("initdb", "pg_ctl", "postgres"):
            if not (PG_BIN / tool).is_file():
                raise HarnessError(f"PostgreSQL {PG_VERSION} is not installed: `{PG_INSTALL}`")
        if not list(Path(f"/usr/share/postgresql/{PG_VERSION}/extension").glob("postgis.control")):
            raise HarnessError(f"PostGIS 3 for PostgreSQL {PG_VERSION} is not installed: `{PG_INSTALL}`")
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        data = self.folder / "data"
        self._run([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--locale=C.UTF-8", "-N"])
        self.port = self.port or free_port()
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                "-c shared_buffers=256MB")
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(self.folder / "log"),
                   "-w", "-t", "60", "start"])
        return self

    def stop(self) -> None:
        data = self.folder / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(HarnessError):
                self._run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self, n: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "log").read_text(errors="replace")[-n:]
        return ""

    def _run(self, cmd: list[str]) -> None:
        done = subprocess.run(_as_postgres(cmd), capture_output=True, text=True, cwd=self.folder)
        if done.returncode != 0:
            raise HarnessError(f"`{' '.join(cmd)}` failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
                               f"{self.log_tail()}")


# --------------------------------------------------------------------------- the global server


class GlobalFront:
    """caveql serve's info/schema routes as the "global server", naming the engine as local_server,
    and caveql serve's ChunkedGraph routes under ``/segmentation``.

    The engine asks ``GLOBAL_SERVER_URL/info`` for the datastack; caveclient asks the same
    front and then talks to ``local_server``. Everything but the info record is caveql serve's
    answer unchanged. The engine's live endpoints ask the ChunkedGraph at its PCG_SERVER_URL,
    which me_launch.py sets to this front: the datastack's proofreading history answers them.
    """

    def __init__(self, datastack_path: Path) -> None:
        from caveql.backends.local import LocalBackend
        from caveql.server import ServerThread, create_app

        self.backend = LocalBackend(datastack_path, server_compat=True)
        self.local_server = ""
        # its /segmentation routes are the ChunkedGraph (the table its info record's
        # segmentation_source ends with, which the engine names)
        self._inner = create_app(self.backend)
        self.server = ServerThread(self._app, interface="asgi3").start()

    @property
    def url(self) -> str:
        return self.server.url

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/info/api/v2/datastack/full/"):
            await self._inner(scope, receive, send)
            return
        parts: list[dict[str, Any]] = []

        async def keep(message: dict[str, Any]) -> None:
            parts.append(message)

        # uncompressed, to rewrite it
        scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"]}
        await self._inner(scope, receive, keep)
        start, *bodies = parts
        body = b"".join(m.get("body", b"") for m in bodies)
        if start["status"] == 200:
            record = json.loads(body)
            record["local_server"] = self.local_server
            body = json.dumps(record).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def stop(self) -> None:
        self.server.stop()
        self.backend.close()


# --------------------------------------------------------------------------- the engine


@dataclass
class EngineProcess:
    """``me_launch.py`` in the engine's environment: create_app() served on a loopback port."""

    python: Path
    source: Path
    pg_url: str
    info_url: str
    datastack: str
    query_limit: int
    log: Path
    url: str = ""
    proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 180.0) -> EngineProcess:
        env = {**os.environ, "PYTHONPATH": str(self.source), "PYTHONHASHSEED": "0",
               "PYTHONDONTWRITEBYTECODE": "1"}
        for k in ("VIRTUAL_ENV", "PYTHONHOME"):
            env.pop(k, None)
        cmd = [str(self.python), str(HERE / "me_launch.py"), "--pg-url", self.pg_url, "--info-url",
               self.info_url, "--datastack", self.datastack, "--query-limit", str(self.query_limit),
               "--port", "0"]
        self._log = open(self.log, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.PIPE,
                                     text=True, env=env, cwd=self.source)
        found: list[str] = []

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                if line.startswith("LISTENING "):
                    found.append(line.split()[1])
                    break

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.stop()
            raise HarnessError(f"the engine did not start within {timeout:.0f} s; its log:\n"
                               f"{self.log.read_text(errors='replace')[-6000:]}")
        self.url = found[0].rstrip("/")
        return self

    def log_tail(self, n: int = 6000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-n:]
        return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
        if getattr(self, "_log", None) is not None:
            self._log.close()


def load(python: Path, source: Path, datastack_path: Path, pg: PgCluster, info_url: str, *,
         layout: str = "merged") -> dict:
    """Load a caveql datastack folder into the cluster in the engine's layout; the loader's summary."""
    env = {**os.environ, "PYTHONPATH": str(source), "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("VIRTUAL_ENV", None)
    cmd = [str(python), str(HERE / "me_loader.py"), "--datastack-path", str(datastack_path),
           "--pg-url", pg.url().rpartition("/")[0], "--layout", layout, "--info-url", info_url]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=source)
    if done.returncode != 0:
        raise HarnessError(f"loading {datastack_path} failed:\n{done.stdout[-3000:]}{done.stderr[-6000:]}")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


@dataclass
class Genuine:
    """A running genuine engine over one datastack folder: ``url`` (materialize), ``global_url``."""

    datastack: str
    datastack_path: Path
    engine: EngineProcess
    front: GlobalFront
    summary: dict

    @property
    def url(self) -> str:
        return self.engine.url

    @property
    def global_url(self) -> str:
        return self.front.url

    def stop(self) -> None:
        self.engine.stop()
        self.front.stop()


@dataclass
class Oracle:
    """The shared pieces: source, environment, one PostgreSQL cluster for every engine."""

    source: Path
    python: Path
    pg: PgCluster
    workdir: Path
    engines: list[Genuine] = field(default_factory=list)
    _loaded: dict[tuple[str, str], dict] = field(default_factory=dict)

    def start_engine(self, datastack_path: Path, *, layout: str | None = None,
                     query_limit: int = 200_000) -> Genuine:
        """Load ``datastack_path`` (once per layout) and serve it with a ``QUERY_LIMIT_SIZE``.

        ``layout`` defaults to what the datastack's versions declare (``is_merged``): the
        layout caveql serve mirrors for that folder.
        """
        datastack_path = Path(datastack_path)
        front = GlobalFront(datastack_path)
        name = front.backend.name
        if layout is None:
            merged = [front.backend.version_metadata(v).get("is_merged", True) for v in front.backend.versions()]
            layout = "merged" if all(merged) else "split"
        try:
            key = (str(datastack_path), layout)
            if key not in self._loaded:
                # one cluster holds one layout of a datastack (databases are named after it)
                self._loaded = {k: v for k, v in self._loaded.items() if v.get("datastack") != name}
                self._loaded[key] = load(self.python, self.source, datastack_path, self.pg, front.url, layout=layout)
            log = self.workdir / f"engine-{name}-{layout}-{query_limit}-{len(self.engines)}.log"
            engine = EngineProcess(self.python, self.source, self.pg.url(), front.url, name, query_limit, log)
            engine.start()
        except BaseException:
            front.stop()
            raise
        front.local_server = engine.url
        g = Genuine(name, datastack_path, engine, front, self._loaded[key])
        self.engines.append(g)
        return g

    def stop(self) -> None:
        for g in self.engines:
            g.stop()
        self.engines.clear()
        self.pg.stop()


@contextlib.contextmanager
def start_genuine(workdir: Path) -> Iterator[Oracle]:
    """The conformance oracle: engine source and environment, a fresh PostgreSQL cluster.

    Used as ``with start_genuine(tmp) as oracle: g = oracle.start_engine(path, query_limit=1000)``,
    then ``caveclient.CAVEclient(g.datastack, server_address=g.global_url)`` talks to the engine.
    """
    source = engine_source()
    python = engine_env(source)
    pg = PgCluster().start()
    oracle = Oracle(source, python, pg, Path(workdir))
    try:
        yield oracle
    finally:
        oracle.stop()

