"""Where a test's ledger lives: a SQLite file, or a fresh schema in a real PostgreSQL database.

PostgreSQL comes from KLING_MCP_TEST_DATABASE_URL (a database in which the tests may create and
drop schemas; .ci/run starts a server and sets it). Without it, PostgreSQL tests skip, saying so;
in CI (CI=true, or KLING_MCP_REQUIRE_POSTGRES=1) they fail instead, so a broken set-up cannot
pass unnoticed. conftest.py makes the fixtures available to every test module.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pytest

TEST_DATABASE_URL = "KLING_MCP_TEST_DATABASE_URL"


def postgres_required() -> bool:
    return (
        os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
        or os.environ.get("KLING_MCP_REQUIRE_POSTGRES", "").strip() == "1"
    )


def with_schema(url: str, schema: str) -> str:
    """The URL, with every connection's search_path set to ``schema``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-c search_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    dsn = os.environ.get(TEST_DATABASE_URL, "").strip()
    if not dsn:
        reason = (f"PostgreSQL ledger tests need {TEST_DATABASE_URL}=postgresql://user:password@host/db "
                  "(a database the tests may create schemas in; .ci/run starts one)")  # fmt: skip
        if postgres_required():
            pytest.fail(f"CI requires PostgreSQL: {reason}")
        pytest.skip(reason)
    return dsn


@pytest.fixture
def postgres_url(postgres_dsn: str) -> Iterator[str]:
    """A URL whose connections see a schema of their own, dropped after the test."""
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_schema(postgres_dsn, schema)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_at(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Run the test once on each engine: a SQLite file's path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return tmp_path / "ledger.sqlite3"
    return str(request.getfixturevalue("postgres_url"))
