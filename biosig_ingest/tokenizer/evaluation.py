"""Evaluate a trained tokenizer on a store's held-out windows: reconstruction error (overall and
per band), codebook usage, encoding speed, and linear probes for every label column, each beside
the same numbers for the randomly initialized tokenizer and (probes) for DE features.

Writes ``report.json``, ``report.md`` and, with matplotlib, ``report.png``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UsageError
from ..features import DEFAULT_BANDS, differential_entropy
from ..store.reader import Store, open_store
from ..torch.selection import qc_bits
from .data import ChannelInfo, evaluation_windows, training_windows
from .run import TrainedTokenizer, load_run, write_json_atomic

MAX_WINDOWS = 2000  # per role (test, probe training), evenly spaced: keeps a CPU evaluation in minutes
PROBE_L2 = 1e-2
EXAMPLES = 3


def de_bands(fs_hz: float) -> tuple[tuple[str, float, float], ...]:
    """The DE bands below the Nyquist rate."""
    return tuple(b for b in DEFAULT_BANDS if b[2] <= fs_hz / 2)


def _subsample(windows: np.ndarray, n: int | None) -> np.ndarray:
    if n is None or len(windows) <= n:
        return windows
    return windows[np.unique(np.linspace(0, len(windows) - 1, n).round().astype(np.int64))]


# -- one pass of a model over windows ------------------------------------------------------------
@dataclass
class PassResult:
    pooled: np.ndarray  # (windows, code_dim) mean of the quantized vectors over valid tokens
    counts: list[np.ndarray]  # per level: how often each code was chosen
    tokens: int
    seconds: float
    recon: dict[str, Any] | None = None
    examples: dict[str, np.ndarray] = field(default_factory=dict)


class _ReconSums:
    """Running sums per frequency bin for normalized MSEs: sum err^2 / sum t^2 (the target's
    energy), and sum err^2 / sum (t - mean_bin t)^2 (against the average spectrum)."""

    def __init__(self, n_freq: int, patch_samples: int, waveform: bool):
        z = lambda: np.zeros(n_freq, np.float64)  # noqa: E731
        self.amp_err, self.amp_sum, self.amp_sq = z(), z(), z()
        self.wave_err, self.wave_pow = z(), z()  # spectral power of the waveform error and target
        self.phase_err = 0.0
        self.loss = 0.0
        self.n_patches = 0
        self.n_batches = 0
        self.waveform = waveform
        self.patch_samples = patch_samples

    def add(self, out: Any, valid: torch.Tensor) -> None:
        v = valid[:, :, None].expand(out.amplitude.shape[:3])  # (B, C, P)
        t = out.targets
        err = (out.amplitude.float() - t.amplitude)[v]
        tgt = t.amplitude[v]
        self.amp_err += err.pow(2).sum(0).double().cpu().numpy()
        self.amp_sum += tgt.sum(0).double().cpu().numpy()
        self.amp_sq += tgt.pow(2).sum(0).double().cpu().numpy()
        self.phase_err += float((out.phase.float() - t.phase)[v].pow(2).mean(-1).sum())
        if out.waveform is not None:
            # Parseval: the error's power per frequency bin, so per-band NMSE is a sum over bins
            e = torch.fft.rfft((out.waveform.float() - t.waveform)[v], dim=-1).abs().pow(2)
            p = torch.fft.rfft(t.waveform[v], dim=-1).abs().pow(2)
            self.wave_err += e.sum(0).double().cpu().numpy()
            self.wave_pow += p.sum(0).double().cpu().numpy()
        self.loss += float(out.losses["recon"])
        self.n_patches += int(v.sum())
        self.n_batches += 1

    def result(self, fs_hz: float) -> dict[str, Any]:
        n = max(self.n_patches, 1)
        freqs = np.fft.rfftfreq(self.patch_samples, 1.0 / fs_hz)
        bands = [("all", 0.0, fs_hz / 2 + 1), *de_bands(fs_hz)]
        spectrum, vs_mean, wave = {}, {}, {}
        for name, lo, hi in bands:
            m = (freqs >= lo) & (freqs < hi) if name != "all" else np.ones_like(freqs, bool)
            spectrum[name] = float(self.amp_err[m].sum() / max(self.amp_sq[m].sum(), 1e-12))
            # against the average spectrum of these windows, bin by bin: what the codes add to it
            per_bin = self.amp_sq[m] - self.amp_sum[m] ** 2 / n
            vs_mean[name] = float(self.amp_err[m].sum() / max(per_bin.sum(), 1e-12))
            if self.waveform:
                wave[name] = float(self.wave_err[m].sum() / max(self.wave_pow[m].sum(), 1e-12))
        return {
            "loss": self.loss / max(self.n_batches, 1),
            "spectrum_nmse": spectrum,
            "spectrum_nmse_vs_mean": vs_mean,
            "phase_mse": self.phase_err / n,
            "waveform_nmse": wave if self.waveform else None,
        }


def _model_pass(
    tt: TrainedTokenizer,
    store: Store,
    windows: np.ndarray,
    ch: ChannelInfo,
    scale: float,
    exclude_bits: int,
    batch_windows: int,
    reconstruct: bool,
    de: list[np.ndarray] | None = None,
) -> PassResult:
    model = tt.model
    cfg = tt.config.model
    counts = [np.zeros(cfg.codebook_size, np.int64) for _ in range(cfg.n_codebooks)]
    pooled, tokens, seconds = [], 0, 0.0
    sums = _ReconSums(model.n_freq, model.patch_samples, cfg.waveform) if reconstruct else None
    examples: dict[str, np.ndarray] = {}
    for lo in range(0, len(windows), batch_windows):
        idx = windows[lo : lo + batch_windows]
        raw = store.read(idx)
        if de is not None:
            de.append(differential_entropy(raw, store.fs_hz, de_bands(store.fs_hz)).reshape(len(idx), -1))
        valid = (store.qc[idx] & exclude_bits) == 0 if exclude_bits else np.ones(raw.shape[:2], bool)
        valid &= np.isfinite(raw).all(axis=-1)
        batch = tt.batch(raw, ch, scale, valid)
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast(device_type=tt.device.type, dtype=torch.bfloat16, enabled=tt.device.type == "cuda"):
            if reconstruct:
                out = model(batch)
                codes, quantized = out.codes, out.quantized
            else:
                codes, quantized = model.tokenize(batch)
        if tt.device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
        v = batch.valid
        w = v[:, :, None].float()
        q = quantized.float()
        denom = (w.sum((1, 2)) * q.shape[2]).clamp_min(1.0)
        pooled.append(((q * w[..., None]).sum((1, 2)) / denom[:, None]).cpu().numpy())
        sel = codes[v].reshape(-1, codes.shape[-1]).cpu().numpy()
        for level in range(len(counts)):
            counts[level] += np.bincount(sel[:, level], minlength=cfg.codebook_size)
        tokens += int(v.sum()) * codes.shape[2]
        if sums is not None:
            sums.add(out, v)
            if not examples:
                # the first window's most variable valid channels, first patch of each
                var = raw[0].var(axis=-1) * valid[0]
                chans = np.argsort(-var)[:EXAMPLES]
                examples = {
                    "channels": np.array([ch.names[c] for c in chans]),
                    "freqs_hz": np.fft.rfftfreq(model.patch_samples, 1.0 / store.fs_hz),
                    "amplitude_target": out.targets.amplitude[0, chans, 0].float().cpu().numpy(),
                    "amplitude_pred": out.amplitude[0, chans, 0].float().cpu().numpy(),
                }
                if out.waveform is not None:
                    examples["waveform_target"] = out.targets.waveform[0, chans, 0].float().cpu().numpy()
                    examples["waveform_pred"] = out.waveform[0, chans, 0].float().cpu().numpy()
    dim = cfg.code_dim
    return PassResult(
        np.concatenate(pooled) if pooled else np.zeros((0, dim), np.float32),
        counts,
        tokens,
        seconds,
        sums.result(store.fs_hz) if sums is not None else None,
        examples,
    )


def codebook_usage(counts: list[np.ndarray]) -> list[dict[str, Any]]:
    rows = []
    for level, c in enumerate(counts):
        total = c.sum()
        p = c[c > 0] / max(total, 1)
        rows.append(
            {
                "level": level,
                "size": int(len(c)),
                "used": int((c > 0).sum()),
                "used_share": float((c > 0).mean()),
                "dead": int((c == 0).sum()),
                "perplexity": float(np.exp(-(p * np.log(p)).sum())) if total else 0.0,
                "tokens": int(total),
            }
        )
    return rows


# -- linear probes ---------------------------------------------------------------------------------
def _standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = train.mean(0)
    sd = train.std(0)
    sd[sd < 1e-12] = 1.0
    return (train - mu) / sd, (test - mu) / sd


def fit_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float = PROBE_L2, max_iter: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression, L2-penalized, full-batch L-BFGS in float64 (deterministic)."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.int64)
    w = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)  # type: ignore[arg-type]
    return w.detach().numpy(), b.detach().numpy()


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    recalls = [float((pred[y == k] == k).mean()) for k in np.unique(y)]
    return float(np.mean(recalls)) if recalls else math.nan


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties averaged)."""
    pos, neg = score[y == 1], score[y == 0]
    if not len(pos) or not len(neg):
        return math.nan
    ranks = np.empty(len(score))
    order = np.argsort(score, kind="stable")
    ranks[order] = np.arange(1, len(score) + 1)
    for v in np.unique(score):  # average the ranks of ties
        tie = score == v
        ranks[tie] = ranks[tie].mean()
    return float((ranks[y == 1].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _categorical_probe(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray) -> dict[str, Any]:
    classes = np.unique(ytr)
    remap = {c: i for i, c in enumerate(classes)}
    a, b = _standardize(xtr, xte)
    w, bias = fit_logistic(a, np.array([remap[c] for c in ytr]), len(classes))
    pred = classes[np.argmax(b @ w + bias, axis=1)]
    return {"accuracy": float((pred == yte).mean()), "balanced_accuracy": balanced_accuracy(yte, pred)}


def _multilabel_probe(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray, classes: list[str]) -> dict[str, Any]:
    a, b = _standardize(xtr, xte)
    per_class = {}
    for k, name in enumerate(classes):
        t, s = ytr[:, k].astype(int), yte[:, k].astype(int)
        if min(t.sum(), (1 - t).sum()) < 2 or min(s.sum(), (1 - s).sum()) < 1:
            continue  # too few positives or negatives to fit or to score
        w, bias = fit_logistic(a, t, 2)
        logit = b @ w + bias
        pred = np.argmax(logit, axis=1)
        per_class[name] = {"balanced_accuracy": balanced_accuracy(s, pred), "auroc": auroc(s, logit[:, 1] - logit[:, 0])}
    if not per_class:
        return {"skipped": "no class with enough positives and negatives"}
    return {
        "balanced_accuracy": float(np.mean([r["balanced_accuracy"] for r in per_class.values()])),
        "auroc": float(np.mean([r["auroc"] for r in per_class.values()])),
        "classes_scored": len(per_class),
        "per_class": per_class,
    }


def _numeric_probe(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray) -> dict[str, Any]:
    a, b = _standardize(xtr, xte)
    mu = ytr.mean()
    lam = PROBE_L2 * len(a)
    w = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ (ytr - mu))
    pred = b @ w + mu
    ss = ((yte - yte.mean()) ** 2).sum()
    return {"r2": float(1 - ((yte - pred) ** 2).sum() / ss) if ss > 0 else math.nan}


def probe_label(spec: dict[str, Any], y_train: np.ndarray, y_test: np.ndarray, features: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Probe results for one label column, for each feature set ``name -> (train, test)``."""
    kind = spec["kind"]
    row: dict[str, Any] = {"label": spec["name"], "kind": kind}
    if kind == "categorical":
        keep_tr, keep_te = y_train >= 0, y_test >= 0
        row["metric"] = "balanced_accuracy"
        present = np.unique(y_train[keep_tr])
        row["chance"] = 1.0 / len(present) if len(present) else math.nan
        row["classes"] = [spec["classes"][int(c)] for c in present]
    elif kind == "multilabel":
        keep_tr, keep_te = np.ones(len(y_train), bool), np.ones(len(y_test), bool)
        row["metric"], row["chance"] = "balanced_accuracy (macro)", 0.5
    else:
        keep_tr, keep_te = np.isfinite(y_train), np.isfinite(y_test)
        row["metric"], row["chance"] = "r2", 0.0
    row["n_train"], row["n_test"] = int(keep_tr.sum()), int(keep_te.sum())
    if kind == "categorical" and len(np.unique(y_train[keep_tr])) < 2:
        row["skipped"] = "fewer than two classes in the training windows"
        return row
    if row["n_train"] < 2 or row["n_test"] < 1:
        row["skipped"] = "too few labelled windows"
        return row
    for name, (xtr, xte) in features.items():
        a, b = xtr[keep_tr], xte[keep_te]
        if kind == "categorical":
            row[name] = _categorical_probe(a, y_train[keep_tr], b, y_test[keep_te])
        elif kind == "multilabel":
            row[name] = _multilabel_probe(a, y_train[keep_tr], b, y_test[keep_te], list(spec["classes"]))
        else:
            row[name] = _numeric_probe(a, y_train[keep_tr].astype(np.float64), b, y_test[keep_te].astype(np.float64))
    return row


# -- the report --------------------------------------------------------------------------------------
def evaluate(
    run_dir: str | Path,
    store_path: str | Path,
    out_dir: str | Path | None = None,
    *,
    device: str = "auto",
    max_windows: int | None = MAX_WINDOWS,
    batch_windows: int = 32,
) -> dict[str, Any]:
    """Evaluate the run's newest checkpoint on ``store_path``; returns the report (also written
    to ``out_dir``, default ``RUN/eval/<store name>/``)."""
    t_start = time.perf_counter()
    trained = load_run(run_dir, device)
    initial = load_run(run_dir, device, initial=True)
    store = open_store(store_path)
    trained.check_store(store)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "eval" / store.path.name.removesuffix(".zarr")
    test, test_how = evaluation_windows(store)
    train, train_how = training_windows(store, trained.config.train.split)
    train = np.setdiff1d(train, test)
    if len(test) == 0:
        raise UsageError(f"{store.path.name} has no window to evaluate on ({test_how})")
    test, train = _subsample(test, max_windows), _subsample(train, max_windows)
    ch = trained.channels(store)
    scale = trained.scale_for(store)
    bits = qc_bits(trained.config.train.exclude_qc)

    de_test: list[np.ndarray] = []
    de_train: list[np.ndarray] = []
    res_t = _model_pass(trained, store, test, ch, scale, bits, batch_windows, True, de_test)
    res_i = _model_pass(initial, store, test, ch, scale, bits, batch_windows, True)
    tr_t = _model_pass(trained, store, train, ch, scale, bits, batch_windows, False, de_train)
    tr_i = _model_pass(initial, store, train, ch, scale, bits, batch_windows, False)

    features = {"tokens": (tr_t.pooled, res_t.pooled), "random_tokenizer": (tr_i.pooled, res_i.pooled)}
    if de_train and de_test:
        features["de"] = (np.concatenate(de_train).astype(np.float64), np.concatenate(de_test).astype(np.float64))
    probes = []
    for spec in store.label_specs:
        y = store.label_array(spec["name"])
        probes.append(probe_label(spec, y[train], y[test], features))

    encode_tokens = tr_t.tokens or res_t.tokens
    encode_s = tr_t.seconds if tr_t.tokens else res_t.seconds
    report: dict[str, Any] = {
        "run": str(Path(run_dir)),
        "step": trained.step,
        "store": str(store.path),
        "device": str(trained.device),
        "windows": {
            "test": int(len(test)),
            "test_from": test_how,
            "probe_train": int(len(train)),
            "probe_train_from": train_how,
            "max_windows": max_windows,
        },
        "unknown_channels": ch.unknown,
        "scale": scale,
        "tokens_per_s": {"encode": encode_tokens / max(encode_s, 1e-9), "forward_with_decoder": res_t.tokens / max(res_t.seconds, 1e-9)},
        "reconstruction": {"trained": res_t.recon, "initial": res_i.recon},
        "codebook": {"trained": codebook_usage(res_t.counts), "initial": codebook_usage(res_i.counts)},
        "probes": probes,
        "probe_features": {
            "tokens": f"mean over channels and patches of the quantized vectors ({trained.config.model.code_dim} dims)",
            "random_tokenizer": "the same, from the run's architecture at its seed, untrained",
            "de": f"differential entropy per channel and band (biosig_ingest.features, {', '.join(b[0] for b in de_bands(store.fs_hz))}; "
            f"{len(ch.names) * len(de_bands(store.fs_hz))} dims)",
            "classifier": f"logistic regression on standardized features, L2 {PROBE_L2}, L-BFGS; trained on the probe_train windows",
        },
        "wall_s": 0.0,
    }
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": str(out / "report.json"), "markdown": str(out / "report.md")}
    png = write_plot(out / "report.png", res_t, res_i, trained.step)
    files["png"] = str(png) if png else None  # type: ignore[assignment]
    report["files"] = files
    if png is None:
        report["png_missing"] = "install matplotlib for report.png"
    report["wall_s"] = time.perf_counter() - t_start
    write_json_atomic(out / "report.json", report)
    (out / "report.md").write_text(markdown(report))
    return report


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def markdown(report: dict[str, Any]) -> str:
    w = report["windows"]
    lines = [
        f"# Tokenizer evaluation: {Path(report['run']).name} (step {report['step']}) on {Path(report['store']).name}",
        "",
        f"Evaluated on {w['test']} windows ({w['test_from']}); probes trained on {w['probe_train']} windows ({w['probe_train_from']}).",
        f"Device {report['device']}; encoding {report['tokens_per_s']['encode']:,.0f} tokens/s (one token = one channel x one patch).",
        "",
        "## Reconstruction (normalized MSE; lower is better)",
        "",
        "Spectrum: the standardized log-amplitude of each 1-s patch; NMSE = sum of squared errors / sum of squared "
        "targets. 'vs average spectrum' divides by the spread around the average spectrum instead (1.0: no better than "
        "decoding every patch to the average). Waveform: store-scaled samples, per band by Parseval.",
        "",
    ]
    rt, ri = report["reconstruction"]["trained"], report["reconstruction"]["initial"]
    bands = list(rt["spectrum_nmse"])
    lines += ["| | " + " | ".join(bands) + " |", "|---|" + "---|" * len(bands)]
    lines.append("| spectrum, trained | " + " | ".join(_fmt(rt["spectrum_nmse"][b]) for b in bands) + " |")
    lines.append("| spectrum, initial | " + " | ".join(_fmt(ri["spectrum_nmse"][b]) for b in bands) + " |")
    lines.append("| spectrum vs average spectrum, trained | " + " | ".join(_fmt(rt["spectrum_nmse_vs_mean"][b]) for b in bands) + " |")
    if rt["waveform_nmse"] is not None:
        lines.append("| waveform, trained | " + " | ".join(_fmt(rt["waveform_nmse"][b]) for b in bands) + " |")
        lines.append("| waveform, initial | " + " | ".join(_fmt(ri["waveform_nmse"][b]) for b in bands) + " |")
    lines += [
        "",
        f"Training loss on these windows: trained {_fmt(rt['loss'])}, initial {_fmt(ri['loss'])}; "
        f"phase MSE (cos, sin) trained {_fmt(rt['phase_mse'])}, initial {_fmt(ri['phase_mse'])}.",
        "",
        "## Codebook usage",
        "",
        "| model | level | size | used | share used | dead | perplexity |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("trained", "initial"):
        for r in report["codebook"][name]:
            lines.append(f"| {name} | {r['level']} | {r['size']} | {r['used']} | {_fmt(r['used_share'])} | {r['dead']} | {_fmt(r['perplexity'], 1)} |")
    lines += [
        "",
        "## Linear probes (test windows)",
        "",
        "| label | metric | chance | tokens | DE | random tokenizer | train / test windows |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in report["probes"]:
        if "skipped" in p:
            lines.append(f"| {p['label']} | {p.get('metric', '')} | {_fmt(p.get('chance'))} | skipped: {p['skipped']} | | | {p['n_train']} / {p['n_test']} |")
            continue
        key = "r2" if p["kind"] == "numeric" else "balanced_accuracy"

        def cell(name: str, p: dict[str, Any] = p, key: str = key) -> str:
            r = p.get(name)
            return "-" if r is None else ("skipped" if "skipped" in r else _fmt(r.get(key)))

        lines.append(
            f"| {p['label']} | {p['metric']} | {_fmt(p['chance'])} | {cell('tokens')} | {cell('de')} | {cell('random_tokenizer')} | {p['n_train']} / {p['n_test']} |"
        )
    f = report["probe_features"]
    lines += ["", f"Features: tokens = {f['tokens']}; DE = {f['de']}; random tokenizer = {f['random_tokenizer']}. {f['classifier']}.", ""]
    if report.get("png_missing"):
        lines += [f"No plot: {report['png_missing']}.", ""]
    else:
        lines += ["![reconstruction examples and code usage](report.png)", ""]
    return "\n".join(lines)


def write_plot(path: Path, trained: PassResult, initial: PassResult, step: int) -> Path | None:
    """Reconstruction examples (spectrum, waveform) and code-usage histograms, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ex = trained.examples
    n = len(ex.get("channels", []))
    rows = 3 if "waveform_target" in ex else 2
    fig, axes = plt.subplots(rows, max(n, 1), figsize=(4 * max(n, 1), 2.6 * rows), squeeze=False)
    for i in range(n):
        ax = axes[0, i]
        ax.plot(ex["freqs_hz"], ex["amplitude_target"][i], color="k", lw=1, label="target")
        ax.plot(ex["freqs_hz"], ex["amplitude_pred"][i], color="tab:red", lw=1, label="decoded")
        ax.set_title(f"{ex['channels'][i]}: log-amplitude (standardized)", fontsize=9)
        ax.set_xlabel("Hz", fontsize=8)
        if "waveform_target" in ex:
            ax = axes[1, i]
            ax.plot(ex["waveform_target"][i], color="k", lw=1, label="target")
            ax.plot(ex["waveform_pred"][i], color="tab:red", lw=1, label="decoded")
            ax.set_title(f"{ex['channels'][i]}: waveform (scaled)", fontsize=9)
            ax.set_xlabel("sample", fontsize=8)
    axes[0, 0].legend(fontsize=8)
    gs = axes[-1, 0].get_gridspec()
    for ax in axes[-1, :]:
        ax.remove()
    ax = fig.add_subplot(gs[-1, :])
    for res, name, color in ((trained, f"trained (step {step})", "tab:blue"), (initial, "initial", "tab:gray")):
        c = np.sort(res.counts[0])[::-1]
        ax.bar(np.arange(len(c)), c / max(c.sum(), 1), color=color, alpha=0.6, label=name, width=1.0)
    ax.set_title("code usage, level 0 (codes sorted by frequency)", fontsize=9)
    ax.set_xlabel("code rank", fontsize=8)
    ax.set_ylabel("share of tokens", fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
