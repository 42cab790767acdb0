"""Opens the log's database: SQLite in WAL mode (one host) or PostgreSQL by URL (several replicas).

SQLite needs help to behave like a server database: WAL so readers never block the writer,
a busy timeout so two processes wait instead of failing, foreign keys switched on, and real
transactions (Python's sqlite3 otherwise runs DDL outside them and begins lazily). Writers ask for
BEGIN IMMEDIATE so a read-then-write transaction cannot fail halfway on a lock upgrade.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

WRITE_OPTION = "faqbot_write"


def open_engine(url: str) -> Engine:
    """An Engine for `url`; a relative SQLite path resolves against the working folder, its folder is created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    engine = create_engine(parsed, pool_pre_ping=True)
    if parsed.get_backend_name() == "postgresql":
        event.listen(engine, "connect", _postgres_utc)
    return engine


def _sqlite_engine(url: Any) -> Engine:
    database = url.database
    if not database or database == ":memory:":
        raise ValueError("the question log needs a file (sqlite:///path/questions.db), not an in-memory SQLite")
    path = Path(database).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url.set(database=str(path)), connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")

    return engine


def _postgres_utc(dbapi_connection: Any, _record: Any) -> None:
    """Day boundaries in stats are UTC days whatever the server's time zone."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.autocommit = autocommit


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: BEGIN IMMEDIATE on SQLite, a plain one elsewhere."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn
