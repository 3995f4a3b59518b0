"""Retries, timeouts, errors, auth and redaction of HttpBackend, against a scripted MockTransport."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pyarrow as pa
import pytest

from caveql.backends.base import QueryRequest
from caveql.backends.http import HttpBackend
from caveql.backends.wire import encode_arrow
from caveql.cache import ResultCache
from caveql.errors import AuthError, CaveqlError, ConfigError, ServiceError, TransportError

NUCQ = QueryRequest(kind="table", table="nucleus_detection_v0", version=661)
QUERY_PATH = "/materialize/api/v3/datastack/minnie65_demo/version/661/table/nucleus_detection_v0/query"


def make(ms, svc, **kw):
    kw.setdefault("cache", False)
    kw.setdefault("token", ms.TOKEN)
    sleeps: list[float] = []
    b = HttpBackend(ms.DS, server=ms.GLOBAL, transport=svc.transport(), sleep=sleeps.append, **kw)
    return b, sleeps


def on_query(fn):
    """A fault script that only touches query POSTs: fn(n) for the n-th query."""
    return lambda request, n: fn(n) if request.method == "POST" else None


def test_answer_is_decoded_with_warnings_and_resolution(ms):
    svc = ms.MockService(warnings=('201 - "Limited query to 2 rows', "Table Owner Notice on t: hi"))
    b, _ = make(ms, svc)
    r = b.query(NUCQ)
    assert r.table.equals(ms.NUC)
    assert r.warnings == ('201 - "Limited query to 2 rows', "Table Owner Notice on t: hi")
    assert r.capped
    assert r.resolution == (4.0, 4.0, 40.0)
    assert r.bytes_read > 0
    frame = r.table.to_pandas()
    assert str(frame["pt_root_id"].dtype) == "Int64" and str(frame["pt_position_x"].dtype) == "Int32"


@pytest.mark.parametrize("status", [502, 503, 504, 429])
def test_retriable_statuses_are_retried_then_succeed(ms, status):
    svc = ms.MockService(fault=on_query(lambda n: httpx.Response(status, json={"message": "busy"}) if n < 2 else None))
    b, sleeps = make(ms, svc, backoff=0.1, max_backoff=5)
    assert b.query(NUCQ).table.num_rows == 2
    assert len([r for r in svc.requests if r.url.path == QUERY_PATH]) == 3
    assert len(sleeps) == 2
    assert 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2  # exponential, jittered


def test_retry_after_is_honoured(ms):
    svc = ms.MockService(fault=on_query(
        lambda n: httpx.Response(429, headers={"Retry-After": "7"}, json={}) if n == 0 else None))
    b, sleeps = make(ms, svc, backoff=0.1)
    b.query(NUCQ)
    assert sleeps == [7.0]


def test_retriable_statuses_give_up_clearly(ms):
    svc = ms.MockService(fault=on_query(lambda n: httpx.Response(503, text="down")))
    b, sleeps = make(ms, svc, retries=3)
    with pytest.raises(ServiceError, match=r"HTTP 503") as err:
        b.query(NUCQ)
    assert err.value.status == 503 and len(sleeps) == 3
    svc = ms.MockService(fault=on_query(lambda n: httpx.Response(429, json={})))
    b, _ = make(ms, svc, retries=1)
    with pytest.raises(ServiceError, match="rate-limiting"):
        b.query(NUCQ)


@pytest.mark.parametrize("status", [400, 404, 405, 410, 422])
def test_other_4xx_are_not_retried(ms, status):
    svc = ms.MockService(fault=on_query(lambda n: httpx.Response(status, text="nope")))
    b, sleeps = make(ms, svc)
    with pytest.raises(ServiceError, match=f"HTTP {status}"):
        b.query(NUCQ)
    assert sleeps == [] and len(svc.posts()) == 1


def test_500_quotes_the_service_message_and_is_not_retried(ms):
    body = {"code": 500, "message": "404 Not Found: Cannot find table x in datastack y at version 661",
            "traceback": ["..."]}
    svc = ms.MockService(fault=on_query(lambda n: httpx.Response(500, json=body)))
    b, sleeps = make(ms, svc)
    with pytest.raises(ServiceError) as err:
        b.query(NUCQ)
    assert "Cannot find table x in datastack y" in str(err.value)
    assert err.value.detail == body["message"] and err.value.status == 500
    assert sleeps == [] and not isinstance(err.value, AuthError)


def test_schema_errors_are_quoted(ms):
    svc = ms.MockService(fault=on_query(
        lambda n: httpx.Response(500, json={"schema_errors": {"filter_out_dict": ["Unknown field."]}})))
    b, _ = make(ms, svc)
    with pytest.raises(ServiceError, match="filter_out_dict"):
        b.query(NUCQ)


def test_connection_errors_are_retried_then_fail(ms):
    def fault(request, n):
        if request.method == "POST":
            return httpx.ConnectError("connection refused", request=request)
        return None

    b, sleeps = make(ms, ms.MockService(fault=fault), retries=2)
    with pytest.raises(TransportError, match=r"failed after 3 attempt\(s\).*ConnectError") as err:
        b.query(NUCQ)
    assert len(sleeps) == 2 and err.value.hint
    assert isinstance(err.value.__cause__, httpx.ConnectError)


def test_timeouts_fail_clearly(ms):
    def fault(request, n):
        if request.method == "POST":
            return httpx.ReadTimeout("timed out", request=request)
        return None

    b, _ = make(ms, ms.MockService(fault=fault), retries=1)
    with pytest.raises(TransportError, match="timed out after 2 attempt"):
        b.query(NUCQ)


def test_dropped_connection_then_success(ms):
    def fault(request, n):
        if request.method == "POST" and n == 0:
            return httpx.RemoteProtocolError("peer closed connection", request=request)
        return None

    svc = ms.MockService(fault=fault)
    b, sleeps = make(ms, svc)
    assert b.query(NUCQ).table.equals(ms.NUC) and len(sleeps) == 1


def test_truncated_arrow_body_is_retried_and_never_partial(ms):
    full = encode_arrow(ms.NUC, "zstd")
    cut = full[: len(full) // 2]
    svc = ms.MockService(fault=on_query(
        lambda n: httpx.Response(200, headers={"Content-Type": "data.arrow"}, content=cut) if n < 1 else None))
    b, sleeps = make(ms, svc)
    assert b.query(NUCQ).table.equals(ms.NUC) and len(sleeps) == 1
    svc = ms.MockService(fault=on_query(
        lambda n: httpx.Response(200, headers={"Content-Type": "data.arrow"}, content=cut)))
    b, _ = make(ms, svc, retries=2)
    with pytest.raises(TransportError, match="malformed or truncated"):
        b.query(NUCQ)
    assert len(svc.posts()) == 3


def test_html_instead_of_data_is_an_auth_error(ms):
    svc = ms.MockService(fault=on_query(
        lambda n: httpx.Response(200, headers={"Content-Type": "text/html"}, content=b"<html>login</html>")))
    b, _ = make(ms, svc)
    with pytest.raises(AuthError, match="HTML page"):
        b.query(NUCQ)


def test_redirect_to_login_is_an_auth_error(ms):
    svc = ms.MockService(fault=on_query(
        lambda n: httpx.Response(302, headers={"Location": "https://global/auth/login"})))
    b, _ = make(ms, svc)
    with pytest.raises(AuthError, match="redirected"):
        b.query(NUCQ)


def test_401_without_token_says_how_to_get_one(ms, tmp_path):
    svc = ms.MockService(fault=lambda r, n: httpx.Response(401, json={"error": "Unauthorized"}))
    b = HttpBackend(ms.DS, server=ms.GLOBAL, transport=svc.transport(), cache=False, env={},
                    secrets_dir=tmp_path, sleep=lambda s: None)
    with pytest.raises(AuthError) as err:
        b.versions()
    assert "none was found" in str(err.value)
    assert "create_token" in err.value.hint and "CAVE_TOKEN" in err.value.hint
    assert "Authorization" not in svc.requests[0].headers  # no token, no header


def test_403_never_shows_the_token(ms):
    svc = ms.MockService(fault=on_query(
        lambda n: httpx.Response(403, text=f"token {ms.TOKEN} lacks permission view")))
    b, sleeps = make(ms, svc)
    with pytest.raises(AuthError) as err:
        b.query(NUCQ)
    rendered = err.value.render() + str(err.value) + repr(err.value) + (err.value.detail or "") + repr(b)
    assert ms.TOKEN not in rendered
    assert "<token>" in str(err.value) and "argument" in str(err.value)
    assert sleeps == []


def test_terms_of_service_403(ms):
    svc = ms.MockService(fault=on_query(lambda n: httpx.Response(
        403, json={"error": "missing_tos", "data": {"tos_form_url": "https://global/tos/2/accept"}})))
    b, _ = make(ms, svc)
    with pytest.raises(AuthError, match="terms of service.*tos/2/accept"):
        b.query(NUCQ)


def test_token_sources_in_order(ms, tmp_path, monkeypatch):
    host = "global.caveql.test"
    (tmp_path / "cave-secret.json").write_text(json.dumps({"token": "generic"}))
    (tmp_path / f"{host}-cave-secret.json").write_text(json.dumps({"token": "hosted"}))

    def sent_token(**kw):
        svc = ms.MockService()
        b = HttpBackend(ms.DS, server=ms.GLOBAL, transport=svc.transport(), cache=False, secrets_dir=tmp_path, **kw)
        b.versions()
        return svc.requests[0].headers["Authorization"], svc.requests[0].headers["Cookie"]

    assert sent_token(env={}) == ("Bearer hosted", "middle_auth_token=hosted")
    assert sent_token(env={"CAVE_TOKEN": "fromenv"})[0] == "Bearer fromenv"
    assert sent_token(env={"CAVE_TOKEN": "fromenv"}, token="arg")[0] == "Bearer arg"
    (tmp_path / f"{host}-cave-secret.json").unlink()
    assert sent_token(env={})[0] == "Bearer generic"
    (tmp_path / "cave-secret.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read the token file"):
        sent_token(env={})


def test_discovery_and_api_negotiation(ms):
    svc = ms.MockService(api_versions=[2])
    b, _ = make(ms, svc)
    assert b.api_version == 2 and b.local_server == ms.LOCAL
    b.query(NUCQ)
    assert svc.posts()[0].url.path.startswith("/materialize/api/v2/")
    assert not b.capabilities.views and b.capabilities.row_cap == 200_000
    assert "notin" not in b.capabilities.filters
    with pytest.raises(ServiceError, match="API v3"):
        b.query(QueryRequest(kind="view", table="v", version=661))
    assert b.views(661) == {}
    svc3 = ms.MockService()
    b3, _ = make(ms, svc3)
    assert b3.api_version == 3 and b3.info()["synapse_table"] == "synapses_pni_2"


def test_v2_converts_positions_like_caveclient(ms):
    svc = ms.MockService(api_versions=[2], resolution=())
    b, _ = make(ms, svc)
    r = b.query(QueryRequest(kind="table", table="nucleus_detection_v0", version=661,
                             desired_resolution=(1.0, 1.0, 1.0)))
    assert r.table.column("pt_position_z").to_pylist() == [480, 880]
    assert r.resolution == (1.0, 1.0, 1.0)


def test_old_server_is_refused(ms):
    b, _ = make(ms, ms.MockService(server_version="4.30.0"))
    with pytest.raises(ServiceError, match=">= 5.13.0"):
        b.versions()


def test_unknown_datastack(ms):
    svc = ms.MockService()
    b = HttpBackend("no_such_stack", server=ms.GLOBAL, transport=svc.transport(), cache=False, token="t")
    with pytest.raises(ServiceError, match="datastack info.*HTTP 404.*datastack not found"):
        b.info()


def test_cache_serves_versioned_answers_and_never_live(ms, tmp_path):
    cache = ResultCache(tmp_path)
    svc = ms.MockService()
    b, _ = make(ms, svc, cache=cache)
    first = b.query(NUCQ)
    second = b.query(NUCQ)
    assert len(svc.posts()) == 1 and second.table.equals(first.table) and second.resolution == first.resolution
    other = HttpBackend(ms.DS, server=ms.GLOBAL, transport=svc.transport(), cache=cache, token=ms.TOKEN)
    other.query(NUCQ)
    assert len(svc.posts()) == 1  # shared across backends: keyed by server, datastack, version, request
    b.query(QueryRequest(kind="table", table="nucleus_detection_v0", version=343))
    assert len(svc.posts()) == 2
    from datetime import datetime
    live = QueryRequest(kind="live", table="nucleus_detection_v0", timestamp=datetime(2024, 1, 1))
    b.query(live)
    b.query(live)
    assert len(svc.posts()) == 4
    assert len(cache.entries()) == 2
    for p in cache.entries():  # damaged entries are misses
        p.write_bytes(b"garbage")
    b.query(NUCQ)
    assert len(svc.posts()) == 5
    assert cache.clear() == 2 and cache.entries() == []


def test_capped_answers_are_not_cached(ms, tmp_path):
    svc = ms.MockService(warnings=('201 - "Limited query to 2 rows',))
    b, _ = make(ms, svc, cache=ResultCache(tmp_path))
    b.query(NUCQ)
    b.query(NUCQ)
    assert len(svc.posts()) == 2


def test_live_cap_warning_is_recognised(ms):
    svc = ms.MockService(warnings=("result has 2 entries, which is equal or more than limit of 2 there may be "
                                   "more results which are not shown",))
    b, _ = make(ms, svc)
    from datetime import datetime
    r = b.query(QueryRequest(kind="live", table="nucleus_detection_v0", timestamp=datetime(2024, 1, 1), limit=2))
    assert r.capped


def test_query_many_is_parallel_bounded_and_all_or_nothing(ms):
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def fault(request, n):
        if request.method != "POST":
            return None
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
        return None

    svc = ms.MockService(fault=fault)
    b, _ = make(ms, svc, parallel=3)
    reqs = [QueryRequest(kind="table", table="nucleus_detection_v0", version=661, offset=i) for i in range(12)]
    results = b.query_many(reqs)
    assert len(results) == 12 and all(r.table.num_rows == 2 for r in results)
    assert 1 < state["peak"] <= 3
    offsets = [json.loads(r.content)["offset"] for r in svc.posts()]
    assert sorted(offsets) == list(range(12))

    def failing(request, n):
        if request.method == "POST" and json.loads(request.content).get("offset") == 5:
            return httpx.Response(500, json={"message": "boom on 5"})
        return None

    b2, _ = make(ms, ms.MockService(fault=failing), parallel=3)
    with pytest.raises(ServiceError, match="boom on 5"):
        b2.query_many(reqs)


def test_backend_protocol_and_metadata(ms):
    from caveql.backends.base import Backend

    svc = ms.MockService()
    b, _ = make(ms, svc)
    assert isinstance(b, Backend)
    assert b.versions() == [343, 661]
    assert b.tables(661) == ms.TABLES
    assert b.table_count(661, "nucleus_detection_v0") == 144120
    assert b.unique_string_values("aibs_soma_nuc_metamodel_preds_v117") == {"cell_type": ["BC", "23P"]}
    schema = b.table_columns(661, "nucleus_detection_v0")
    assert schema.names == ms.NUC.column_names and schema.field("pt_root_id").type == pa.int64()
    b.table_columns(661, "nucleus_detection_v0")
    assert len(svc.posts()) == 1  # cached: versions are frozen
    assert json.loads(svc.posts()[0].content) == {"limit": 1}
    b.table_metadata(661, "nucleus_detection_v0")
    b.table_metadata(661, "nucleus_detection_v0")
    assert sum(r.url.path.endswith("/metadata") for r in svc.requests) == 1
    from caveql.errors import UnknownTableError
    with pytest.raises(UnknownTableError, match="nucleus_detection_v1") as err:
        b.table_columns(661, "nucleus_detection_v1")
    assert err.value.candidates == ("nucleus_detection_v0",)


def test_bad_settings(ms):
    with pytest.raises(ConfigError):
        HttpBackend("", transport=ms.MockService().transport())
    with pytest.raises(ConfigError):
        HttpBackend("x", retries=-1, transport=ms.MockService().transport())
    b = HttpBackend("x", server="ftp://nowhere", token="t", cache=False)
    with pytest.raises(CaveqlError):
        b.versions()


class _Tty:
    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("enabled", [None, False])
def test_progress_line_on_a_terminal_for_long_fetches(ms, monkeypatch, enabled):
    tty = _Tty()
    monkeypatch.setattr("sys.stderr", tty)

    def slow(request, n):
        if request.method == "POST":
            time.sleep(0.35)
        return None

    b, _ = make(ms, ms.MockService(fault=slow), parallel=2, progress=enabled)
    reqs = [QueryRequest(kind="table", table="nucleus_detection_v0", version=661, offset=i) for i in range(4)]
    assert len(b.query_many(reqs)) == 4
    if enabled is None:
        assert "caveql: fetching: " in tty.text and " calls, " in tty.text and "rows" in tty.text
        assert tty.text.endswith("\r\x1b[K")  # the line is erased when the fetch ends
    else:
        assert tty.text == ""


def test_no_progress_line_off_a_terminal(ms, capsys):
    def slow(request, n):
        if request.method == "POST":
            time.sleep(0.6)
        return None

    b, _ = make(ms, ms.MockService(fault=slow))
    b.query(NUCQ)
    assert capsys.readouterr().err == ""


def test_an_answer_that_hit_its_own_limit_is_cached(ms, tmp_path):
    svc = ms.MockService(warnings=('201 - "Limited query to 2 rows',))
    b, _ = make(ms, svc, cache=ResultCache(tmp_path))
    req = QueryRequest(kind="table", table="nucleus_detection_v0", version=661, limit=2)
    assert b.query(req).capped
    b.query(req)
    assert len(svc.posts()) == 1


# the genuine engine's live notice: its source continues the f-string over a line break, so the
# text holds a run of spaces (materializationengine/blueprints/client/api2.py)
GENUINE_LIVE = ("result has 2 entries, which is equal or more         than limit of 2 there may be more "
                "results which are not shown")


def test_genuine_live_cap_wording_is_recognised(ms):
    from datetime import datetime

    b, _ = make(ms, ms.MockService(warnings=(GENUINE_LIVE,)))
    r = b.query(QueryRequest(kind="live", table="nucleus_detection_v0", timestamp=datetime(2024, 1, 1)))
    assert r.capped and '201 - "Limited query to 2 rows' in r.warnings
    assert b.row_cap == 2 and b.row_cap_learned and b.capabilities.row_cap == 2


def test_a_smaller_cap_is_learned_from_a_cut_answer_and_kept(ms, tmp_path):
    svc = ms.MockService(warnings=('201 - "Limited query to 2 rows',))
    b, _ = make(ms, svc, cache=ResultCache(tmp_path))
    assert b.capabilities.row_cap == 200_000
    # stopped at the limit it asked for: nothing learned (the notice names the request's own limit)
    b.query(QueryRequest(kind="table", table="nucleus_detection_v0", version=661, limit=2))
    assert b.row_cap == 200_000 and not b.row_cap_learned
    # a limit of 10 answered with "limited to 2": the deployment caps at 2, and the answer is short
    r = b.query(QueryRequest(kind="table", table="nucleus_detection_v0", version=661, limit=10))
    assert r.capped and b.capabilities.row_cap == 2 and b.row_cap_learned
    before = len(svc.posts())
    b.query(QueryRequest(kind="table", table="nucleus_detection_v0", version=661, limit=10))
    assert len(svc.posts()) == before + 1  # a cut answer was not cached
    # a later, larger notice never raises the cap again
    svc.warnings = ('201 - "Limited query to 5 rows',)
    b.query(NUCQ)
    assert b.row_cap == 2


def test_a_lone_column_is_padded_on_the_wire_and_dropped_from_the_answer(ms):
    svc = ms.MockService()
    b, _ = make(ms, svc)
    r = b.query(QueryRequest(kind="table", table="nucleus_detection_v0", version=661,
                             select_columns={"nucleus_detection_v0": ("id",)}))
    sent = ms.body_of(svc.posts()[-1])
    assert sent["select_columns"] == ["id", "valid"]  # the cheapest other column of its schema
    assert "valid" not in r.table.column_names and "id" in r.table.column_names
    r = b.query(QueryRequest(kind="join", join=(("aibs_soma_nuc_metamodel_preds_v117", "target_id"),
                                                ("nucleus_detection_v0", "id")), version=661,
                             select_columns={"nucleus_detection_v0": ("pt_root_id",)}))
    assert ms.body_of(svc.posts()[-1])["select_column_map"] == {"nucleus_detection_v0": ["pt_root_id", "valid"]}


def test_a_lone_column_is_padded_even_without_a_schema(ms):
    """When the table's schema cannot be read, ``id`` (or ``valid`` beside ``id``) is added."""
    def no_probe(request, n):
        if request.method == "POST" and ms.body_of(request) == {"limit": 1}:
            return httpx.Response(500, json={"message": "no schema today"})
        return None

    svc = ms.MockService(fault=no_probe)
    b, _ = make(ms, svc)
    b.query(QueryRequest(kind="table", table="nucleus_detection_v0", version=661,
                         select_columns={"nucleus_detection_v0": ("id",)}))
    assert ms.body_of(svc.posts()[-1])["select_columns"] == ["id", "valid"]
    b.query(QueryRequest(kind="table", table="nucleus_detection_v0", version=661,
                         select_columns={"nucleus_detection_v0": ("volume",)}))
    assert ms.body_of(svc.posts()[-1])["select_columns"] == ["volume", "id"]


def test_a_live_request_selects_every_column_it_filters_on(ms):
    """The live endpoint filters its answer again by column name (KeyError, HTTP 500, on a
    filtered column it was not asked for): the backend adds them and drops them again."""
    from datetime import datetime

    svc = ms.MockService()
    b, _ = make(ms, svc)
    r = b.query(QueryRequest(kind="live", table="nucleus_detection_v0", timestamp=datetime(2024, 1, 1),
                             select_columns={"nucleus_detection_v0": ("id", "pt_root_id")},
                             filter_greater={"nucleus_detection_v0": {"volume": 1.0}},
                             filter_spatial={"nucleus_detection_v0": {"pt_position": [[0, 0, 0], [1, 1, 1]]}}))
    sent = ms.body_of(svc.posts()[-1])
    assert sent["select_columns"] == {"nucleus_detection_v0": ["id", "pt_root_id", "volume"]}  # not the box's
    assert "volume" not in r.table.column_names
