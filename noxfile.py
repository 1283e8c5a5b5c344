"""Nox sessions for biosig-ingest.

    nox                      # tests + lint
    nox -s typecheck
    nox -s bench -- --skip-long --json bench.json

Sessions run on the Python that runs nox (no pinned versions).
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (arguments after -- go to pytest)."""
    session.install(".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check (formatting is not enforced)."""
    session.install("ruff")
    session.run("ruff", "check", "biosig_ingest", "tests", "benchmarks")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy on the package, with its dependencies and stubs installed."""
    session.install(".", "mypy", "pandas-stubs", "types-PyYAML")
    session.run("mypy", "biosig_ingest")


@nox.session
def bench(session: nox.Session) -> None:
    """End-to-end ingest benchmark against MNE (arguments after -- go to the script)."""
    session.install(".")
    session.run("python", "benchmarks/bench_ingest.py", *session.posargs)
