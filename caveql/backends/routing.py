"""One datastack across the live service and its archives: every call goes where its version lives.

MICrONs expires a materialized version about a year after its release; the service stops
answering it and the version survives as Delta Lake exports (:class:`~caveql.backends.archive.
ArchiveBackend`). :class:`RoutingBackend` puts a service backend and archive backends behind one
Backend: every call names its version, and a call for version N goes

- to the **service** when the service lists N among its valid versions;
- else to the first **archive** holding N (N expired on the service, never on it, or the
  service unreachable);
- else to the service (whose error names the versions it has), or, with no service, the first
  archive.

Live and timestamp calls (no version) go to the service. Whether the service is reachable is
learned from its versions call: a :class:`~caveql.errors.TransportError` (refused, unresolved,
timed out), or any call of the service failing so, marks it down for ``retry_after`` seconds,
during which archived versions are answered without trying it again (a call that failed so is
answered by an archive holding its version); any other error (a 500, an auth failure) is raised
as it is.

Capabilities are the intersection of the backends' (the planner plans a statement once, and a
statement may read versions from both): the service's row cap and filters (an archive answers
anything under the cap, split by the executor as for the service), live queries only when the
service has them. They carry :meth:`RoutingBackend.describe`, so EXPLAIN names where every call
goes (``source:``).

>>> RoutingBackend(None, [])
Traceback (most recent call last):
caveql.errors.ConfigError: a routing backend needs a service or at least one archive
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from caveql.backends.base import Backend, Capabilities, QueryRequest, QueryResult
from caveql.errors import BackendError, ConfigError, TransportError

__all__ = ["RoutedCapabilities", "RoutingBackend"]


@dataclass(frozen=True)
class RoutedCapabilities(Capabilities):
    """:class:`Capabilities` plus ``source``: where a request goes, in words (for EXPLAIN)."""

    source: Callable[[QueryRequest], str] | None = field(default=None, compare=False, repr=False)


def _label(backend: Backend) -> str:
    where = getattr(backend, "server", None) or getattr(backend, "path", None)
    return str(where) if where is not None else getattr(backend, "name", type(backend).__name__)


class RoutingBackend:
    """The Backend protocol over a ``service`` (any backend, usually HTTP; ``None``: archives
    only) and ``archives`` (backends of frozen versions, usually :class:`ArchiveBackend`), each call
    routed by its version (see the module docstring). Closing it closes them all."""

    def __init__(self, service: Backend | None, archives: Sequence[Backend], *,
                 retry_after: float = 30.0) -> None:
        if service is None and not archives:
            raise ConfigError("a routing backend needs a service or at least one archive")
        self.service = service
        self.archives = list(archives)
        self.retry_after = retry_after
        first = service if service is not None else self.archives[0]
        self.name = first.name
        self._lock = threading.Lock()
        self._down: tuple[float, TransportError] | None = None  # (since, why) the service is unreachable

    # -- where each version lives -------------------------------------------------------------

    def _service_versions(self) -> list[int] | None:
        """The service's valid versions, or ``None`` when it is unreachable (or absent)."""
        if self.service is None:
            return None
        with self._lock:
            if self._down is not None and time.monotonic() - self._down[0] < self.retry_after:
                return None
        try:
            versions = list(self.service.versions())
        except TransportError as err:
            with self._lock:
                self._down = (time.monotonic(), err)
            return None
        with self._lock:
            self._down = None
        return versions

    def _call(self, version: int | None, call: Callable[[Backend], Any]) -> Any:
        """``call`` on the backend of ``version``; when the service fails to answer (a transport
        error) it is marked unreachable, and an archive holding the version answers instead."""
        backend, _why = self.route(version)
        try:
            return call(backend)
        except TransportError as err:
            if backend is not self.service:
                raise
            with self._lock:
                self._down = (time.monotonic(), err)
            archive = self._archive_of(version) if version is not None else None
            if archive is None:
                raise
            return call(archive)

    def _unreachable(self) -> TransportError | None:
        with self._lock:
            return self._down[1] if self._down is not None else None

    def _archive_of(self, version: int) -> Backend | None:
        return next((a for a in self.archives if version in a.versions()), None)

    def route(self, version: int | None) -> tuple[Backend, str]:
        """The backend answering calls for ``version`` (``None``: live), and why, in words."""
        served = self._service_versions()
        if version is None:
            if self.service is None:
                return self.archives[0], "archives only: no service"
            return self.service, "live: the service"
        if served is not None and version in served:
            return self.service, "listed by the service"  # type: ignore[return-value]
        archive = self._archive_of(version)
        if archive is not None:
            why = ("no service" if self.service is None else "service unreachable" if served is None
                   else f"version {version} not among the service's valid versions")
            return archive, why
        if self.service is not None:
            down = self._unreachable()
            if served is None and down is not None:
                raise TransportError(f"version {version}: the service is unreachable and no archive holds "
                                     f"it ({down.message})", hint=down.hint) from down
            return self.service, "not in any archive"
        return self.archives[0], "not in any archive"

    def describe(self, request: QueryRequest) -> str:
        """Where ``request`` goes, for EXPLAIN: ``service <url>`` or ``archive <path>``, and why."""
        try:
            backend, why = self.route(request.version if request.kind != "live" else None)
        except BackendError as err:
            return f"none ({err.message})"
        kind = "service" if backend is self.service else "archive"
        return f"{kind} {_label(backend)} ({why})"

    def version_location(self, version: int) -> tuple[str, bool | None, str]:
        """``(where version lives, expired on the service, who answers)``: where is ``service``,
        an archive's path, or ``service + <path>``; expired is ``None`` when the service cannot
        say (unreachable, absent, or it never had the version)."""
        served = self._service_versions()
        archive = self._archive_of(version)
        on_service = served is not None and version in served
        places = (["service"] if on_service else []) + ([_label(archive)] if archive is not None else [])
        expired: bool | None = False if on_service else None
        if not on_service and served is not None and self.service is not None:
            try:
                meta = self.service.version_metadata(version)
                expired = meta.get("valid") is False or str(meta.get("status", "")).upper() == "EXPIRED"
            except BackendError:
                expired = None  # the service never had it (or cannot say)
        backend, _why = self.route(version)
        return " + ".join(places) or "nowhere", expired, "service" if backend is self.service else "archive"

    # -- protocol: metadata -------------------------------------------------------------------

    @property
    def capabilities(self) -> RoutedCapabilities:  # type: ignore[override]
        """The intersection of the reachable backends' capabilities, with :meth:`describe`."""
        caps = [a.capabilities for a in self.archives]
        if self.service is not None and self._service_versions() is not None:
            caps.append(self.service.capabilities)
        service = caps[-1] if self.service is not None and len(caps) > len(self.archives) else None
        cap_values = [c.row_cap for c in caps if c.row_cap is not None]
        return RoutedCapabilities(
            row_cap=min(cap_values) if cap_values else None,
            max_in_batch=min(c.max_in_batch for c in caps),
            filters=frozenset.intersection(*(frozenset(c.filters) for c in caps)),
            parallel=min(c.parallel for c in caps),
            joins=all(c.joins for c in caps), views=all(c.views for c in caps),
            live=service.live if service is not None else False,
            select_columns=all(c.select_columns for c in caps), limit=all(c.limit for c in caps),
            offset=all(c.offset for c in caps), count=all(c.count for c in caps),
            graph=service.graph if service is not None else False,
            source=self.describe)

    def graph(self) -> Any:
        """The service's proofreading graph (it answers for archived versions too: root ids are
        judged at a version's time stamp), ``None`` when the service has none or is absent."""
        make = getattr(self.service, "graph", None)
        return make() if make is not None else None

    def info(self) -> dict[str, Any]:
        """The service's datastack info (an archive's while the service is unreachable)."""
        if self.service is not None and self._service_versions() is not None:
            return self.service.info()
        return self.archives[0].info() if self.archives else self.service.info()  # type: ignore[union-attr]

    def versions(self) -> list[int]:
        """Versions answerable: the service's valid ones and every archive's."""
        out = set(self._service_versions() or ())
        for a in self.archives:
            out.update(a.versions())
        return sorted(out)

    def all_versions(self) -> list[int]:
        """:meth:`versions` plus the service's expired ones (its ``?expired=true``)."""
        out = set(self.versions())
        every = getattr(self.service, "all_versions", None)
        if every is not None and self._service_versions() is not None:
            out.update(every())
        return sorted(out)

    def version_metadata(self, version: int) -> dict[str, Any]:
        """The service's record of ``version`` when it has one (also of an expired version: its
        time stamp), else the archive's."""
        backend, _why = self.route(version)
        if backend is not self.service and self.service is not None and self._service_versions() is not None:
            try:
                return self.service.version_metadata(version)
            except BackendError:
                pass  # the service never had it: the archive's record
        return backend.version_metadata(version)

    def tables(self, version: int) -> list[str]:
        """Tables of ``version`` where it is answered."""
        return self._call(version, lambda b: b.tables(version))  # type: ignore[no-any-return]

    def table_metadata(self, version: int, table: str) -> dict[str, Any]:
        """Table metadata of ``version`` where it is answered."""
        return self._call(version, lambda b: b.table_metadata(version, table))  # type: ignore[no-any-return]

    def table_columns(self, version: int, table: str) -> pa.Schema:
        """The columns of ``table`` at ``version`` where it is answered."""
        return self._call(version, lambda b: b.table_columns(version, table))  # type: ignore[no-any-return]

    def table_count(self, version: int, table: str) -> int:
        """Rows of ``table`` at ``version`` where it is answered."""
        return self._call(version, lambda b: b.table_count(version, table))  # type: ignore[no-any-return]

    def views(self, version: int) -> dict[str, dict[str, Any]]:
        """Views of ``version`` where it is answered."""
        return self._call(version, lambda b: b.views(version))  # type: ignore[no-any-return]

    def unique_string_values(self, table: str) -> dict[str, list[str | None]]:
        """The service's answer (the archives' while it is unreachable or lacks the table)."""
        if self.service is not None and self._service_versions() is not None:
            try:
                return self.service.unique_string_values(table)
            except BackendError:
                if not self.archives:
                    raise
        last: BackendError | None = None
        for a in self.archives:
            try:
                return a.unique_string_values(table)
            except BackendError as err:
                last = err
        assert last is not None
        raise last

    def query(self, request: QueryRequest) -> QueryResult:
        """Run one call where its version lives."""
        version = request.version if request.kind != "live" else None
        return self._call(version, lambda b: b.query(request))  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the service and every archive."""
        for b in ([self.service] if self.service is not None else []) + self.archives:
            b.close()

    def __enter__(self) -> RoutingBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        parts = ([f"service={_label(self.service)}"] if self.service is not None else []) + [
            f"archive={_label(a)}" for a in self.archives]
        return f"RoutingBackend({', '.join(parts)})"


def open_archive(location: str | Any, datastack: str | None = None) -> Backend:
    """An :class:`~caveql.backends.archive.ArchiveBackend` on ``location``: a datastack folder
    of Delta Lake exports (``<location>/v<N>/...``), or the folder holding datastack folders
    (``<location>/<datastack>/v<N>/...``, ``datastack`` given). Local paths, ``file://`` and
    fsspec URLs (``gs://``, ``s3://``, ``https://``, ...).

    >>> import tempfile; open_archive(tempfile.mkdtemp(), "x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    caveql.errors.DatastackError: no Delta Lake archive at ...
    """
    from caveql.backends.archive import ArchiveBackend, is_archive
    from caveql.errors import DatastackError

    text = str(location)
    if is_archive(text):
        return ArchiveBackend(text)
    if datastack is not None and is_archive(text.rstrip("/") + "/" + datastack):
        return ArchiveBackend(text, datastack=datastack)
    raise DatastackError(f"no Delta Lake archive at {text}"
                         + (f" (nor of {datastack!r} in it)" if datastack else ""),
                         hint="expected <location>/v<N>/<table>/<spec>/_delta_log, or "
                              "<location>/<datastack>/v<N>/... (docs/datastacks.md, 'Archives')")
