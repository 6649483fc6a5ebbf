"""Database URLs: the forms the two backends accept, checked before anything is opened, and the
one way a URL is quoted in a message.

A PostgreSQL URL may carry a password (before the host, or as `?password=`), and error messages
reach the terminal through `print`, outside the log redaction. So every message that names a
database quotes `describe(url)`: scheme, host, port and database name, nothing else.

`sqlite:///relative.db`, `sqlite:////absolute/path.db`, `sqlite:///:memory:`;
`postgresql://user:password@host:port/database` (or `postgres://`), where `?pool_size=`,
`?lock_connections=` and `?lock_wait=` size the pools (storage.postgres.pool) and the other
query parameters go to the driver.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

SQLITE_PREFIX = "sqlite:///"
MEMORY = ":memory:"
POSTGRES_SCHEMES = ("postgresql", "postgres")
SQLITE_FORMS = "sqlite:///relative/path.db or sqlite:////absolute/path.db"
POSTGRES_FORM = "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
# Our query parameters and their type: taken out before the driver sees the URL (asyncpg would
# pass them to the server as settings). Each must be positive.
POOL_OPTIONS: Mapping[str, type[int] | type[float]] = {
    "pool_size": int,
    "lock_connections": int,
    "lock_wait": float,
}
_ENCODE = "percent-encode / ? # @ in the user name and password (/ is %2F, @ is %40)"


class UrlError(ValueError):
    """A database URL that no backend can open; the message quotes no part of a password."""


@dataclass(frozen=True, slots=True)
class PostgresUrl:
    dsn: str  # for the driver: the URL without our pool options
    host: str
    port: int | None
    database: str
    password: str | None = field(repr=False)
    pool_options: Mapping[str, int | float]

    def describe(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        scheme = self.dsn.split(":", 1)[0]
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6
        return f"{scheme}://{host}{port}/{self.database}"


def check(url: str) -> None:
    """Raise UrlError unless `url` is a database URL one of the backends can open."""
    if url.startswith("sqlite:"):
        sqlite_path(url)
    elif url.split(":", 1)[0] in POSTGRES_SCHEMES:
        parse_postgres(url)
    else:
        raise UrlError(f"must start with sqlite:/// or postgresql:// (e.g. {SQLITE_FORMS})")


def describe(url: str) -> str:
    """The URL as messages may quote it: scheme, host, port and database name only."""
    scheme = url.split(":", 1)[0]
    if scheme == "sqlite":
        return url.split("?", 1)[0]  # no password in a file path
    try:
        return parse_postgres(url).describe()
    except UrlError:  # malformed: which part is the host and which the password is unknown
        return f"{scheme}://…"


def hide_password(text: str, url: str) -> str:
    """`text` (a driver's message about `url`) without the URL's password."""
    try:
        password = parse_postgres(url).password
    except UrlError:
        return text
    if not password:
        return text
    for form in {password, urllib.parse.quote(password, safe="")}:
        text = text.replace(form, "***")
    return text


def sqlite_path(url: str) -> str:
    """`sqlite:///x.db` -> 'x.db'; `sqlite:////abs/x.db` -> '/abs/x.db'; ':memory:' stays."""
    if not url.startswith(SQLITE_PREFIX) or url == SQLITE_PREFIX:
        name = url.removeprefix("sqlite:").lstrip("/") or "switchboard.db"
        raise UrlError(
            f"a SQLite URL has three slashes before a relative path and four before an absolute"
            f" one ({SQLITE_FORMS}): {url!r} could be sqlite:///{name} or sqlite:////{name}"
        )
    if "?" in url:
        raise UrlError(f"a SQLite URL takes no query parameters: {url!r}")
    return url[len(SQLITE_PREFIX) :]


def parse_postgres(url: str) -> PostgresUrl:
    """The parts of a PostgreSQL URL; UrlError names what is wrong or missing."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        raise UrlError(f"expected {POSTGRES_FORM}")
    _check_reserved(parts)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    host = parts.hostname or query.get("host", "")
    database = urllib.parse.unquote(parts.path.lstrip("/")) or query.get(
        "dbname", query.get("database", "")
    )
    missing = [name for name, value in (("host", host), ("database", database)) if not value]
    if missing:
        raise UrlError(f"no {' and no '.join(missing)} given: expected {POSTGRES_FORM}")
    password = parts.password
    return PostgresUrl(
        dsn=_without(parts, POOL_OPTIONS),
        host=host,
        port=_port(parts, query),
        database=database,
        password=urllib.parse.unquote(password) if password else query.get("password"),
        pool_options=_pool_options(query),
    )


def _check_reserved(parts: urllib.parse.SplitResult) -> None:
    """An unencoded / ? # or @ in a password moves the host into the path, the query or the
    fragment; the driver would then connect somewhere else or fail quoting password fragments."""
    first_key = parts.query.split("&", 1)[0].split("=", 1)[0]
    moved = "@" not in parts.netloc and ("@" in parts.path or "@" in first_key)
    if parts.netloc.count("@") > 1 or moved or parts.fragment:
        raise UrlError(f"the part before the host is not a valid user and password: {_ENCODE}")


def _port(parts: urllib.parse.SplitResult, query: Mapping[str, str]) -> int | None:
    try:
        port = parts.port
        if port is None and "port" in query:
            port = int(query["port"])
    except ValueError:
        port = 0
    if port is not None and not 1 <= port <= 65535:
        # The value is not quoted: a mistyped URL may have a piece of the password there.
        raise UrlError("the port must be 1 to 65535 (and a password must be percent-encoded)")
    return port


def _pool_options(query: Mapping[str, str]) -> dict[str, int | float]:
    options: dict[str, int | float] = {}
    for name, kind in POOL_OPTIONS.items():
        if name not in query:
            continue
        try:
            value = kind(query[name])
        except ValueError:
            value = 0
        if not (math.isfinite(value) and value > 0):
            what = "a whole number" if kind is int else "a number of seconds"
            raise UrlError(f"{name} must be {what} above 0, got {query[name]!r}")
        options[name] = value
    return options


def _without(parts: urllib.parse.SplitResult, names: Mapping[str, object]) -> str:
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    rest = urllib.parse.urlencode([(key, value) for key, value in query if key not in names])
    return urllib.parse.urlunsplit(parts._replace(query=rest))
