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
    """Benchmarks: ingest against MNE (arguments after -- go to it), DE features, scaling on Dask."""
    # torch first, pinned: the CPU build on disk; anything that pulls torch in before would
    # download the newest CUDA build (GBs)
    session.install("torch==2.13.0")
    session.install(".")
    # torcheeg 1.1.3 pins scipy<=1.10.1 (no wheel for this numpy): install it without its
    # dependencies, plus the few its transforms import; only BandDifferentialEntropy is used
    session.install("--no-deps", "torcheeg==1.1.3")
    session.install("spectrum", "PyWavelets", "scikit-learn")
    session.run("python", "benchmarks/bench_ingest.py", *session.posargs)
    session.run("python", "benchmarks/bench_features.py")
    session.run("python", "benchmarks/bench_scaling.py")
