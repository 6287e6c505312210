"""A real PostgreSQL for these tests: one throw-away cluster per session
(``evals.servers.PostgresServer``: Debian's initdb/pg_ctl in a temp dir, on a
loopback port, as the ``postgres`` user when run as root), and a fresh
database in it for each test that asks for ``database_url``."""

from __future__ import annotations

import itertools
import os

import pytest

from ...servers import PostgresServer, postgres_missing

_names = itertools.count(1)


@pytest.fixture(scope="session")
def postgres():
    """Skipped, saying what to install, when the binaries are missing; failed instead when CI is set."""
    problem = postgres_missing()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    with PostgresServer() as server:
        yield server


@pytest.fixture
def database_url(postgres):
    return postgres.create_database(f"test_{os.getpid()}_{next(_names)}")
