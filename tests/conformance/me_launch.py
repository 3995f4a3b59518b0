"""Run the genuine MaterializationEngine (its Flask app, in-process) as a conformance oracle.

Runs under the ENGINE's Python, with the engine's source on the path::

    PYTHONHASHSEED=0 PYTHONPATH=/tmp/me/src /tmp/me/env/bin/python me_launch.py \
        --pg-url postgresql://postgres@127.0.0.1:55432 --info-url http://127.0.0.1:8000 \
        --datastack tiny --query-limit 200000 [--port 0]

Prints exactly one line ``LISTENING http://127.0.0.1:PORT`` on stdout once it answers; all
other output (the engine's logs and prints) goes to stderr. Exits promptly on SIGTERM/SIGINT, or
when stdin reaches end of file (so a parent that dies takes it along); ``--no-stdin-watch``
turns the latter off (e.g. when started with stdin at /dev/null).

PYTHONHASHSEED=0 should be set by whoever starts the process: the engine orders the column
blocks of a join by iterating a Python ``set`` of table names (QueryManager._tables), so without
a fixed seed that order changes from run to run. If it is unset, this script re-executes itself
once with PYTHONHASHSEED=0 (same process id); another value is kept, with a warning.

``--info-url`` is the global server the engine asks for the datastack record (its
GLOBAL_SERVER_URL; INFOSERVICE_ENDPOINT is that + ``/info``), e.g. ``caveql serve``'s URL. The
engine reads ``aligned_volume.name`` (its metadata database) and ``segmentation_source`` (whose
last part names the ``{table}__{pcg}`` segmentation tables of split versions) from it.

Configuration goes through the engine's own mechanism: a pyfile named by
MATERIALIZATION_ENGINE_SETTINGS, read by ``configure_app`` on top of ``BaseConfig``. Around the
unmodified app this script only: sets the environment the engine reads at import time
(AUTH_DISABLED, QUEUE_LENGTH_LIMIT, QUEUES_TO_THROTTLE), sends stdout to stderr, releases each
request thread's database sessions at request end, runs requests one at a time by default
(``--concurrency``), and sets PGOPTIONS (``--pg-options``); the comments below say why. Nothing
outside (redis, auth, GCS) is contacted by the query endpoints; create_app() tries GCS once for
bucket CORS and logs the failure. The live endpoints (``POST .../datastack/{ds}/query``) ask a
ChunkedGraph: the engine reads its address from PCG_SERVER_URL at import
(chunkedgraph_gateway.py:28-34, default ``http://pychunkedgraph-read-service/``), set here to
``--pcg-url`` (default: the info URL, whose front serves caveql serve's ChunkedGraph routes
under ``/segmentation``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-url", required=True,
                   help="cluster URL, e.g. postgresql://postgres@127.0.0.1:55432 (a database part "
                        "is ignored: the engine derives every database URL from it)")
    p.add_argument("--info-url", required=True, help="info service / global server URL")
    p.add_argument("--datastack", required=True)
    p.add_argument("--query-limit", type=int, required=True, help="QUERY_LIMIT_SIZE (row cap)")
    p.add_argument("--port", type=int, default=0, help="0 = a free port (default)")
    p.add_argument("--pcg-url",
                   help="the ChunkedGraph the live endpoints ask (the engine's PCG_SERVER_URL, read at "
                        "import by chunkedgraph_gateway.py; default: --info-url, whose front serves "
                        "caveql serve's ChunkedGraph routes under /segmentation)")
    p.add_argument("--aligned-volume",
                   help="metadata database (default: the info record's aligned_volume.name)")
    p.add_argument("--db-pool-size", type=int, default=4,
                   help="connections kept per database (the engine's default 20+30 overflow is "
                        "too many for a shared cluster)")
    p.add_argument("--pg-options",
                   default="-c max_parallel_workers_per_gather=0 -c synchronize_seqscans=off",
                   help="libpq PGOPTIONS for the engine's connections; the default keeps "
                        "unordered sequential scans in physical (id) order. '' = server defaults")
    p.add_argument("--concurrency", type=int, default=1,
                   help="requests the engine runs at once (default 1, like one uwsgi worker; "
                        "more is not safe with the engine's shared state, see below)")
    p.add_argument("--no-stdin-watch", action="store_true", help="do not exit at stdin EOF")
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


def _reexec_with_hashseed() -> None:
    seed = os.environ.get("PYTHONHASHSEED")
    if seed is None:
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    if seed != "0":
        print(f"me_launch: PYTHONHASHSEED={seed}; join column blocks may be ordered differently "
              "than with PYTHONHASHSEED=0", file=sys.stderr)


def _global_url(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/info")] if url.endswith("/info") else url


def _aligned_volume(global_url: str, datastack: str, wait: float = 30.0) -> str:
    """The info record's aligned volume; waits for an info service that is still starting."""
    import requests

    end = time.monotonic() + wait
    while True:
        try:
            r = requests.get(f"{global_url}/info/api/v2/datastack/full/{datastack}", timeout=30)
            break
        except requests.ConnectionError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)
    r.raise_for_status()
    return r.json()["aligned_volume"]["name"]


def _write_settings(args: argparse.Namespace, global_url: str, aligned: str) -> str:
    base = args.pg_url.rstrip("/")
    if base.count("/") > 2:
        base = base.rsplit("/", 1)[0]
    settings = {
        # the engine derives every database URL from this one's prefix; db.create_all() at
        # startup creates the (existing) metadata tables here, so it must be the aligned volume
        "SQLALCHEMY_DATABASE_URI": f"{base}/{aligned}",
        "GLOBAL_SERVER_URL": global_url,
        "INFOSERVICE_ENDPOINT": f"{global_url}/info",
        "AUTH_URI": f"{global_url}/auth",
        "SCHEMA_SERVICE_ENDPOINT": f"{global_url}/schema/",
        "SEGMENTATION_ENDPOINT": f"{global_url}/segmentation",
        "INFO_API_VERSION": 2,
        "DATASTACKS": [args.datastack],
        "QUERY_LIMIT_SIZE": args.query_limit,
        "STAGING_DATABASE_NAME": "",  # no staging database (the upload blueprint's)
        "CELERY_BROKER_URL": "memory://",
        "CELERY_RESULT_BACKEND": "cache+memory://",
        "AUTH_TOKEN": "",
        "DB_CONNECTION_POOL_SIZE": args.db_pool_size,
        "DB_CONNECTION_MAX_OVERFLOW": args.db_pool_size,
        "TEST_DB_NAME": aligned,  # what GET /health counts versions in
        "BEAT_SCHEDULES": [],
        "LOGGING_LEVEL": args.log_level.upper(),
    }
    fd, path = tempfile.mkstemp(prefix="me_launch_", suffix=".cfg")
    with os.fdopen(fd, "w") as f:
        for key, value in settings.items():
            f.write(f"{key} = {value!r}\n")
        f.write("import logging\nLOGGING_LEVEL = getattr(logging, LOGGING_LEVEL)\n")
    return path


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _reexec_with_hashseed()
    t0 = time.perf_counter()
    out = sys.stdout
    sys.stdout = sys.stderr  # the engine logs to (and prints on) stdout; keep ours clean

    global_url = _global_url(args.info_url)
    aligned = args.aligned_volume or _aligned_volume(global_url, args.datastack)
    settings = _write_settings(args, global_url, aligned)
    os.environ.update({
        "MATERIALIZATION_ENGINE_SETTINGS": settings,
        # read at import time by middle_auth_client 3.19.0: no auth service, user id 0
        "AUTH_DISABLED": "true",
        # read at import time (module-level get_config_param without an app context) by
        # materializationengine.throttle; values as in the engine's pytest.ini
        "QUEUE_LENGTH_LIMIT": os.environ.get("QUEUE_LENGTH_LIMIT", "10000"),
        "QUEUES_TO_THROTTLE": os.environ.get("QUEUES_TO_THROTTLE", '["process"]'),
    })
    if args.pg_options:
        os.environ["PGOPTIONS"] = args.pg_options
    # chunkedgraph_gateway.py:28-34: PCG_SERVER_URL or http://pychunkedgraph-read-service/
    os.environ["PCG_SERVER_URL"] = (args.pcg_url or global_url).rstrip("/")

    from werkzeug.serving import make_server

    from materializationengine.app import create_app
    from materializationengine.database import dynamic_annotation_cache

    t_import = time.perf_counter()
    try:
        app = create_app()
    finally:
        os.unlink(settings)

    # The engine queries through each DynamicAnnotationDB's thread-local scoped_session and never
    # removes it. Under uwsgi (single-threaded workers) that session is reused by the worker's
    # next request; with a thread per request each request strands one pooled connection until
    # garbage collection, and the pool runs dry ("QueuePool limit ... reached" 500s once
    # pool_size + max_overflow requests have run). Release the thread's sessions at request end.
    @app.teardown_appcontext
    def _release_thread_sessions(_exc):
        for iface in list(dynamic_annotation_cache._clients.values()):
            if iface._database is not None:
                iface._database.session.remove()

    # The engine's in-process state is built for uwsgi's single-threaded workers: every request's
    # teardown disposes all of db_manager's engines (stranding the connections other requests
    # still hold in orphaned pools), and DynamicAnnotationDB shares one cached session between
    # threads. Requests running in parallel threads exhausted the cluster's max_connections
    # (100) within two bursts of 8 parallel queries. So requests are accepted by a threaded
    # server but run one at a time (like one uwsgi worker) unless --concurrency says otherwise.
    gate = threading.BoundedSemaphore(args.concurrency)
    wsgi = app.wsgi_app

    def one_at_a_time(environ, start_response):
        with gate:
            body = wsgi(environ, start_response)
            try:
                data = b"".join(body)
            finally:
                getattr(body, "close", lambda: None)()
        return [data]

    app.wsgi_app = one_at_a_time
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    port = server.server_port
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                               name="me-serve", daemon=True)
    serving.start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if not args.no_stdin_watch:
        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read1(65536):
                    pass
            except (OSError, ValueError):
                pass
            stop.set()

        threading.Thread(target=watch_stdin, name="me-stdin", daemon=True).start()

    print(f"me_launch: engine {args.datastack} ready in {time.perf_counter() - t0:.1f}s "
          f"(imports {t_import - t0:.1f}s, create_app {time.perf_counter() - t_import:.1f}s; "
          f"aligned volume {aligned}, info {global_url})", file=sys.stderr, flush=True)
    out.write(f"LISTENING http://127.0.0.1:{port}\n")
    out.flush()

    stop.wait()  # a signal handler runs while the main thread waits here
    server.shutdown()
    server.server_close()
    sys.stderr.flush()
    # request threads are daemons and library threads may not be: do not wait for them
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
