"""The ``biosig`` command: a thin typer layer over the library API.

Exit codes: 0 success; 1 recordings failed under --strict, or validation failed;
2 usage error (one line on stderr).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import BiosigError, StoreError, UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Harmonized Zarr stores from EEG and ECG corpora.")
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def _fail(exc: BiosigError, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc.one_line()}", highlight=False)
    return typer.Exit(code)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("windows {task.fields[windows]}"),
        TextColumn("{task.fields[speed]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )


def run_ingest(
    corpus: str,
    source: str | Path,
    store: str | Path,
    profile: str,
    limit: int | None,
    overwrite: bool,
    subset: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> Any:
    """Ingest with a progress bar; returns the :class:`IngestReport`."""
    import time

    from .ingest import ingest
    from .store.location import StoreLocation

    progress = _progress()
    state: dict[str, Any] = {"task": None, "failed": 0, "windows": 0, "seconds": 0.0, "t0": time.perf_counter()}

    def on_plan(n_recordings: int, n_shards: int) -> None:
        state["task"] = progress.add_task(f"{corpus} -> {StoreLocation(store).name}", total=n_recordings, failed=0, windows=0, speed="")

    def on_recording(row: dict[str, Any]) -> None:
        if row["status"] == "ok":
            state["windows"] += row["n_windows"]
            state["seconds"] += row.get("duration_s") or 0.0
        else:
            state["failed"] += 1
        rate = state["seconds"] / max(time.perf_counter() - state["t0"], 1e-9)
        progress.update(state["task"], advance=1, failed=state["failed"], windows=state["windows"], speed=f"{rate:,.0f}x realtime")

    with progress:
        return ingest(
            corpus, source, store, profile, limit=limit, overwrite=overwrite, subset=subset,
            workers=workers, scheduler=scheduler, on_plan=on_plan, on_recording=on_recording,
        )


def print_report(report: Any) -> None:
    out.print(
        f"[bold]{report.corpus}[/bold] -> {report.store}  profile {report.profile} ({report.profile_hash[:12]})\n"
        f"  recordings ok {report.recordings_ok}, failed {report.recordings_failed}; "
        f"windows {report.windows_written}; shards written {report.shards_written}, already there {report.shards_skipped}\n"
        f"  {report.recording_seconds:,.0f} s of recording in {report.wall_s:.1f} s ({report.realtime_factor:,.0f}x realtime)",
        highlight=False,
    )
    for f in report.failures[:20]:
        out.print(f"  [yellow]failed[/yellow] {f['relpath']}: {f['error_type']}: {f['error']}", highlight=False)
    if len(report.failures) > 20:
        out.print(f"  ... and {len(report.failures) - 20} more (see the store's recordings table)")
    for w in report.warnings[:10]:
        out.print(f"  [yellow]warning[/yellow] {w['recording_id']}: {w['warning']}", highlight=False)
    if len(report.warnings) > 10:
        out.print(f"  ... and {len(report.warnings) - 10} more warnings (recordings table, column warnings)")


@app.command("ingest")
def ingest_cmd(
    corpus: str = typer.Argument(..., help="corpus id: tuh, ptbxl, mimic-iv-ecg, seed, seed-iv, deap, edf (see `biosig list`)"),
    source: str = typer.Option(..., "--source", help="root folder of the corpus, or an fsspec URL (s3://bucket/tuh_eeg)"),
    store: str = typer.Option(..., "--out", help="store to create or complete: a folder or an fsspec URL (s3://bucket/x.zarr)"),
    profile: str = typer.Option("default", "--profile", help="profile name or a profile .yaml file"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the first N recordings"),
    strict: bool = typer.Option(False, "--strict", help="exit 1 if any recording failed"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace a store built with another profile"),
    subset: str | None = typer.Option(None, "--subset", help="TUH subset (tueg, tuab, tuev, tusz, tuar); detected if omitted"),
    workers: int | None = typer.Option(None, "--workers", min=1, help="local Dask worker processes (default: in-process)"),
    scheduler: str | None = typer.Option(None, "--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786"),
) -> None:
    """Ingest a corpus into a harmonized Zarr store (re-running finishes or skips)."""
    try:
        report = run_ingest(corpus, source, store, profile, limit, overwrite, subset, workers, scheduler)
    except (UsageError, StoreError) as exc:
        raise _fail(exc) from None
    print_report(report)
    if strict and report.recordings_failed:
        raise typer.Exit(1)


@app.command("list")
def list_cmd() -> None:
    """Corpora and their profiles."""
    from .corpora import registry

    table = Table("corpus", "aliases", "modality", "profile", "what it makes")
    for corpus, cls in sorted(registry().items()):
        if corpus != cls.corpus:
            continue
        m = cls().manifest
        for i, (name, body) in enumerate(m.profiles.items()):
            table.add_row(
                corpus if i == 0 else "",
                ", ".join(cls.aliases) if i == 0 else "",
                m.modality if i == 0 else "",
                name,
                body.get("description", ""),
            )
    out.print(table)


@app.command("inspect")
def inspect_cmd(
    store: str = typer.Argument(..., help="store folder or URL"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Counts of windows, recordings, channels, labels and splits."""
    from .store.inspect import summary
    from .store.reader import open_store

    try:
        info = summary(open_store(store))
    except StoreError as exc:
        raise _fail(exc) from None
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
        return
    out.print(f"[bold]{info['path']}[/bold]  {info['corpus']} ({info['modality']}), profile {info['profile']} {info['profile_hash'][:12]}")
    rec = info["recordings"]
    out.print(f"  windows {info['n_windows']} in {info['n_shards']} shards; recordings ok {rec['ok']}, failed {rec['failed']} {rec['errors'] or ''}")
    out.print(f"  {len(info['channels'])} channels @ {info['fs_hz']:g} Hz ({info['unit']}): {' '.join(info['channels'])}")
    out.print(f"  window {info['window_samples']} samples, stride {info['stride_samples']}; subjects {info['subjects']}")
    out.print(f"  splits {info['splits']}")
    for name, counts in info["labels"].items():
        out.print(f"  label {name}: {counts}")
    out.print(f"  QC (windows with any channel flagged): {info['qc_windows_flagged']}")


@app.command("validate")
def validate_cmd(store: str = typer.Argument(..., help="store folder or URL")) -> None:
    """Check the store's structure, metadata and profile hash; exit 1 on any problem."""
    from .store.inspect import validate

    problems = validate(store)
    for p in problems:
        out.print(f"[red]invalid:[/red] {p}", highlight=False)
    if problems:
        raise typer.Exit(1)
    out.print(f"[green]valid[/green] {store}")


@app.command("demo")
def demo_cmd(
    out_dir: Path = typer.Option(Path("biosig-demo"), "--out", help="folder for the replicas and stores"),
) -> None:
    """Write miniature replica corpora (TUAB, PTB-XL), ingest them and show what was built."""
    from .demo import run_demo

    try:
        run_demo(out_dir, run_ingest=run_ingest, print_report=print_report, inspect=inspect_cmd)
    except BiosigError as exc:
        raise _fail(exc, 1) from None


@app.command("features")
def features_cmd(
    store: Path = typer.Argument(..., help="store folder"),
    bands: str | None = typer.Option(None, "--bands", help='"name:low-high,..." in Hz (default delta:1-4,theta:4-8,alpha:8-14,beta:14-31,gamma:31-49)'),
    estimator: str = typer.Option("spectral", "--estimator", help="spectral (periodogram), filter (Butterworth) or torcheeg"),
    taper: str = typer.Option("hann", "--taper", help="spectral: hann or boxcar"),
    order: int = typer.Option(4, "--order", help="filter: Butterworth order (torcheeg: always 5)"),
    causal: bool = typer.Option(False, "--causal", help="filter: causal instead of zero-phase"),
    smoothing: str = typer.Option("none", "--smoothing", help="none, moving_average or lds (SEED), across windows of a recording"),
    smoothing_windows: int = typer.Option(5, "--smoothing-windows", help="moving_average: windows, odd"),
    measures: str = typer.Option("de,log_power,power,relative_power", "--measures", help="arrays to write"),
    name: str | None = typer.Option(None, "--name", help="feature set name (default: estimator-<hash of the parameters>)"),
    workers: int = typer.Option(1, "--workers", min=1, help="local Dask worker processes, one shard each at a time (default: in-process)"),
    scheduler: str | None = typer.Option(None, "--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786"),
) -> None:
    """Differential entropy and band power per window, channel and band, into every shard (re-running skips)."""
    from .features import FeatureSpec, compute_features, parse_bands
    from .features.de import DEFAULT_BANDS

    try:
        spec = FeatureSpec(
            bands=parse_bands(bands) if bands else DEFAULT_BANDS,
            estimator=estimator,
            taper=taper,
            order=order,
            zero_phase=not causal,
            smoothing=smoothing,
            smoothing_windows=smoothing_windows,
            measures=tuple(m.strip() for m in measures.split(",") if m.strip()),
        )
        report = compute_features(store, spec, name=name, workers=workers, scheduler=scheduler)
    except (UsageError, StoreError) as exc:
        raise _fail(exc) from None
    out.print(
        f"features [bold]{report.name}[/bold] -> {report.store}\n"
        f"  shards written {report.shards_written}, already there {report.shards_skipped}; "
        f"windows {report.windows_written} in {report.wall_s:.1f} s ({report.windows_per_s:,.0f} windows/s)",
        highlight=False,
    )


def _require_torch() -> None:
    """The tokenizer commands need PyTorch; without it, one line and exit 2."""
    try:
        import torch  # noqa: F401
    except ImportError:
        console.print('[red]error:[/red] this command needs PyTorch: pip install "biosig-ingest[torch]"', highlight=False)
        raise typer.Exit(2) from None


@app.command("pretrain")
def pretrain_cmd(
    stores: list[Path] = typer.Option(..., "--store", help="store folder (repeat for a mixture of stores)"),
    run_dir: Path = typer.Option(..., "--out", help="run folder: created, or resumed from its newest checkpoint"),
    config: Path | None = typer.Option(None, "--config", help="YAML/JSON with model: and train: sections (docs/tokenizer.md)"),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if present), cpu or cuda"),
    steps: int | None = typer.Option(None, "--steps", min=1, help="total training steps (overrides the config)"),
) -> None:
    """Pretrain the discrete tokenizer on the stores' training windows (re-running resumes)."""
    _require_torch()
    from .tokenizer.config import load_config
    from .tokenizer.train import pretrain

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[speed]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    task: dict[str, Any] = {}

    def on_start(total: int, start: int) -> None:
        task["id"] = progress.add_task(f"pretrain -> {run_dir.name}", total=total, completed=start, loss="-", speed="")

    def on_log(record: dict[str, Any]) -> None:
        progress.update(task["id"], completed=record["step"], loss=f"{record['loss']:.4f}", speed=f"{record['tokens_per_s']:,.0f} tokens/s")

    try:
        cfg = load_config(config) if config is not None else None
        with progress:
            report = pretrain(stores, run_dir, cfg, device=device, steps=steps, on_start=on_start, on_log=on_log)
    except (UsageError, StoreError) as exc:
        raise _fail(exc) from None
    last = report.last or {}
    first = report.first or {}
    out.print(
        f"pretrain [bold]{run_dir}[/bold] on {report.device}: steps {report.start_step} -> {report.steps}, "
        f"{report.n_parameters:,} parameters, {report.wall_s:.1f} s",
        highlight=False,
    )
    if last:
        out.print(
            f"  loss {first.get('loss', float('nan')):.4f} -> {last['loss']:.4f} (reconstruction {last.get('recon', float('nan')):.4f}); "
            f"codes used {', '.join(f'{u:.0%}' for u in last.get('codes_used', []))}; {last.get('tokens_per_s', 0):,.0f} tokens/s",
            highlight=False,
        )


@app.command("evaluate")
def evaluate_cmd(
    run_dir: Path = typer.Option(..., "--run", help="run folder of `biosig pretrain`"),
    store: Path = typer.Option(..., "--store", help="store to evaluate on (its test split, or held-out subjects)"),
    out_dir: Path | None = typer.Option(None, "--out", help="report folder (default RUN/eval/<store>)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    max_windows: int = typer.Option(2000, "--max-windows", min=1, help="evaluate and fit probes on at most this many windows each, evenly spaced"),
    as_json: bool = typer.Option(False, "--json", help="print the report as one JSON object"),
) -> None:
    """Reconstruction error, codebook usage, speed and linear probes (vs DE and a random tokenizer)."""
    _require_torch()
    from .tokenizer.evaluation import evaluate

    try:
        report = evaluate(run_dir, store, out_dir, device=device, max_windows=max_windows)
    except (UsageError, StoreError) as exc:
        raise _fail(exc) from None
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    rt, ri = report["reconstruction"]["trained"], report["reconstruction"]["initial"]
    out.print(f"evaluate [bold]{run_dir}[/bold] (step {report['step']}) on {report['store']}: {report['windows']['test']} windows ({report['windows']['test_from']})", highlight=False)
    out.print(f"  reconstruction loss {rt['loss']:.4f} (initial model {ri['loss']:.4f}); spectrum NMSE {rt['spectrum_nmse']['all']:.4f}", highlight=False)
    for row in report["codebook"]["trained"]:
        out.print(f"  codebook level {row['level']}: {row['used']}/{row['size']} codes used, perplexity {row['perplexity']:.1f}", highlight=False)
    table = Table("label", "metric", "chance", "tokens", "DE", "random tokenizer")
    for p in report["probes"]:
        key = "r2" if p["kind"] == "numeric" else "balanced_accuracy"
        cells = [f"{p[n][key]:.3f}" if isinstance(p.get(n), dict) and key in p[n] else "-" for n in ("tokens", "de", "random_tokenizer")]
        table.add_row(p["label"], p.get("metric", ""), f"{p.get('chance', float('nan')):.3f}", *cells)
    out.print(table)
    files = report["files"]
    out.print(f"  wrote {files['json']}, {files['markdown']}" + (f", {files['png']}" if files.get("png") else f" ({report.get('png_missing')})"), highlight=False)


@app.command("tokenize")
def tokenize_cmd(
    run_dir: Path = typer.Option(..., "--run", help="run folder of `biosig pretrain`"),
    store: Path = typer.Option(..., "--store", help="store to write the token set into"),
    name: str | None = typer.Option(None, "--name", help="token set name (default <run folder>-step<N>)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
) -> None:
    """Write the code indices of every window into each shard as token set tokens_<name> (re-running skips)."""
    _require_torch()
    from .tokenizer.encode import tokenize_store

    try:
        report = tokenize_store(run_dir, store, name, device=device)
    except (UsageError, StoreError) as exc:
        raise _fail(exc) from None
    out.print(
        f"tokens [bold]{report.name}[/bold] (step {report.step}) -> {report.store}\n"
        f"  shards written {report.shards_written}, already there {report.shards_skipped}; "
        f"windows {report.windows_written}, {report.tokens_per_s:,.0f} tokens/s",
        highlight=False,
    )


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # python -m biosig_ingest.cli
    main()
