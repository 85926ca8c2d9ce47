"""Fixtures every test module may use: where a test's ledger lives, on each engine (see ledger_locations)."""

from .ledger_locations import ledger_at, postgres_dsn, postgres_url  # noqa: F401 - fixtures, found by name

