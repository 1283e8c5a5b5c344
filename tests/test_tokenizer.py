"""The discrete tokenizer: pretraining on a store, exact resume after a kill, evaluation against
DE and a random tokenizer, token sets written into shards (CPU, fixed seeds, small config)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zlib

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch", reason="the tokenizer needs PyTorch (pip install torch)")
pytest.importorskip("safetensors", reason='tokenizer checkpoints need safetensors (pip install "biosig-ingest[torch]")')

from biosig_ingest import ingest, open_store  # noqa: E402
from biosig_ingest.cli import app  # noqa: E402
from biosig_ingest.samples import tuab as tuab_samples  # noqa: E402
from biosig_ingest.samples import write_tuab_replica  # noqa: E402
from biosig_ingest.store.layout import SHARDS, staging_root  # noqa: E402
from biosig_ingest.tokenizer import (  # noqa: E402
    TokenizerConfig,
    evaluate,
    load_run,
    pretrain,
    read_tokens,
    token_sets,
)
from biosig_ingest.tokenizer.data import evaluation_windows, training_windows  # noqa: E402
from biosig_ingest.tokenizer.model import Tokenizer  # noqa: E402

# Small enough for seconds on two CPU cores; the default config is the same architecture, wider.
SMALL = {
    "model": {"d_model": 32, "encoder_layers": 1, "decoder_layers": 1, "codebook_size": 32, "code_dim": 16},
    "train": {"steps": 150, "batch_windows": 8, "lr": 3e-3, "log_every": 10, "checkpoint_every": 50},
}
BAND_HZ = (18.0, 24.0)  # injected into every EEG channel of the "abnormal" files
BAND_RMS_UV = 10.0  # the background is 10-25 uV RMS, 1/f


def small(**train: object) -> TokenizerConfig:
    cfg = json.loads(json.dumps(SMALL))
    cfg["train"].update(train)
    return TokenizerConfig.model_validate(cfg)


def _band_noise(rng: np.random.Generator, n: int, fs_hz: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / fs_hz)
    spectrum[(f < BAND_HZ[0]) | (f > BAND_HZ[1])] = 0
    x = np.fft.irfft(spectrum, n=n)
    return x / x.std()


@pytest.fixture(scope="module")
def band_store(tmp_path_factory):
    """A TUAB replica whose label is in the signal: abnormal files carry an 18-24 Hz band."""
    render = tuab_samples._render

    def with_band(plan, duration_s, rng, sine):
        headers, samples = render(plan, duration_s, rng, sine)
        if plan.label == "abnormal":
            band_rng = np.random.default_rng(zlib.crc32(plan.subject.encode()))
            for h, s in zip(headers, samples, strict=True):
                if h["label"].startswith("EEG ") and h["dimension"] == "uV" and "EKG" not in h["label"]:
                    lsb = (h["physical_max"] - h["physical_min"]) / (h["digital_max"] - h["digital_min"])
                    s += np.round(BAND_RMS_UV * _band_noise(band_rng, len(s), h["sample_frequency"]) / lsb).astype(s.dtype)
        return headers, samples

    root = tmp_path_factory.mktemp("band")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tuab_samples, "_render", with_band)
        replica = write_tuab_replica(root / "src", n_per_group=3, broken=False)
    ingest("tuh", replica.root, root / "band.zarr")
    return root / "band.zarr"


@pytest.fixture(scope="module")
def demo_run(tuab_store, tmp_path_factory):
    store, _ = tuab_store
    run = tmp_path_factory.mktemp("runs") / "demo-run"
    report = pretrain([store], run, small(), device="cpu")
    return run, report


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_short_cpu_pretraining_on_the_demo_store_beats_the_initial_model_and_uses_most_of_a_small_codebook(tuab_store, demo_run, tmp_path):
    store, _ = tuab_store
    run, report = demo_run
    lines = _metrics(run)
    assert [r["step"] for r in lines] == list(range(10, 151, 10))
    assert lines[-1]["recon"] < 0.5 * lines[0]["recon"]
    assert (run / "checkpoints" / "step_0000150" / "model.safetensors").is_file()
    info = json.loads((run / "run.json").read_text())
    assert info["patch_samples"] == 200 and info["stores"][0]["windows"] == "split 'train'"
    assert info["channel_vocabulary"][0] == "<unk>" and "cz" in info["channel_vocabulary"]

    result = evaluate(run, store, tmp_path / "eval", device="cpu")
    trained, initial = result["reconstruction"]["trained"], result["reconstruction"]["initial"]
    assert trained["loss"] < 0.5 * initial["loss"]
    assert trained["spectrum_nmse"]["all"] < 0.5 * initial["spectrum_nmse"]["all"]
    usage = result["codebook"]["trained"][0]
    assert usage["size"] == 32 and usage["used_share"] > 0.5 and usage["dead"] == 32 - usage["used"]
    assert result["windows"]["test_from"] == "split 'test'" and result["windows"]["test"] == 24
    assert result["tokens_per_s"]["encode"] > 0


def test_a_pretraining_killed_after_a_checkpoint_resumes_with_the_same_loss_curve(tuab_store, tmp_path):
    store, _ = tuab_store
    config = tmp_path / "resume.yaml"
    config.write_text(
        json.dumps({**SMALL, "model": {**SMALL["model"], "dead_code_steps": 3}, "train": {**SMALL["train"], "steps": 24, "log_every": 1, "checkpoint_every": 12, "warmup_steps": 5}})
    )

    def run(out, **env):
        cmd = [sys.executable, "-m", "biosig_ingest.cli", "pretrain", "--store", str(store), "--out", str(out), "--config", str(config), "--device", "cpu"]
        return subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)

    whole = run(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    killed = run(tmp_path / "killed", BIOSIG_FAILPOINT="tokenizer-after-checkpoint")
    assert killed.returncode in (-9, 137)  # SIGKILL right after the step-12 checkpoint
    assert (tmp_path / "killed" / "checkpoints" / "latest").read_text().strip() == "step_0000012"
    resumed = run(tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr
    assert "steps 12 -> 24" in resumed.stdout

    keys = ("step", "loss", "recon", "amplitude", "phase", "vq", "grad_norm", "lr", "codes_used", "perplexity", "epoch")
    a = [{k: r[k] for k in keys} for r in _metrics(tmp_path / "whole")]
    b = [{k: r[k] for k in keys} for r in _metrics(tmp_path / "killed")]
    assert len(a) == 24 and a == b  # exactly, float for float
    wa = load_run(tmp_path / "whole", "cpu").model.state_dict()
    wb = load_run(tmp_path / "killed", "cpu").model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_on_a_replica_whose_label_is_an_injected_band_the_token_probe_beats_chance_beside_the_de_probe(band_store, tmp_path):
    run = tmp_path / "band-run"
    pretrain([band_store], run, small(), device="cpu")
    result = evaluate(run, band_store, tmp_path / "eval", device="cpu")
    (probe,) = result["probes"]
    assert probe["label"] == "abnormal" and probe["chance"] == 0.5 and probe["n_test"] == 36
    assert probe["tokens"]["balanced_accuracy"] >= 0.75
    assert probe["de"]["balanced_accuracy"] >= 0.75  # the band is what DE measures
    assert "random_tokenizer" in probe
    table = (tmp_path / "eval" / "report.md").read_text()
    assert "| label | metric | chance | tokens | DE | random tokenizer |" in table
    assert f"| abnormal | balanced_accuracy | 0.500 | {probe['tokens']['balanced_accuracy']:.3f} | {probe['de']['balanced_accuracy']:.3f} |" in table


def test_biosig_evaluate_writes_the_json_markdown_and_png_report(tuab_store, demo_run, tmp_path):
    store, _ = tuab_store
    run, _ = demo_run
    result = CliRunner().invoke(app, ["evaluate", "--run", str(run), "--store", str(store), "--out", str(tmp_path / "r"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert {"reconstruction", "codebook", "probes", "tokens_per_s", "windows"} <= set(report)
    assert set(report["reconstruction"]["trained"]["spectrum_nmse"]) == {"all", "delta", "theta", "alpha", "beta", "gamma"}
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Reconstruction" in md and "## Codebook usage" in md and "## Linear probes" in md
    pytest.importorskip("matplotlib", reason="report.png needs matplotlib")
    assert (tmp_path / "r" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "report.png" in result.output


def test_biosig_tokenize_writes_the_codes_of_every_window_into_each_shard_and_skips_them_on_rerun(tuab_store, demo_run, tmp_path):
    src, _ = tuab_store
    store = tmp_path / "tuab.zarr"
    shutil.copytree(src, store)  # the session store stays untouched
    run, _ = demo_run
    runner = CliRunner()
    first = runner.invoke(app, ["tokenize", "--run", str(run), "--store", str(store), "--name", "demo", "--device", "cpu"])
    assert first.exit_code == 0, first.output
    assert "shards written 2" in first.output
    st = open_store(store)
    for shard in st.shard_names:
        assert (store / SHARDS / shard / "tokens_demo" / "codes" / "zarr.json").is_file()
    assert not any(staging_root(store).glob("*tokens_demo*"))
    codes = read_tokens(store, "demo")
    assert codes.shape == (48, 19, 10) and codes.dtype == np.int16
    assert codes.min() >= 0 and codes.max() < 32

    tt = load_run(run, "cpu")
    idx = np.array([0, 5, 47])
    batch = tt.batch(st.read(idx), tt.channels(st), tt.scale_for(st))
    expected, _ = tt.model.tokenize(batch)
    np.testing.assert_array_equal(codes[idx], expected[..., 0].numpy())
    assert token_sets(store)["demo"]["complete"]

    again = runner.invoke(app, ["tokenize", "--run", str(run), "--store", str(store), "--name", "demo", "--device", "cpu"])
    assert again.exit_code == 0 and "already there 2" in again.output


def test_a_token_set_name_taken_by_another_tokenizer_is_refused_with_exit_2(tuab_store, demo_run, tmp_path):
    src, _ = tuab_store
    store = tmp_path / "tuab.zarr"
    shutil.copytree(src, store)
    run, _ = demo_run
    other = tmp_path / "other-run"
    pretrain([src], other, small(steps=5), device="cpu")
    runner = CliRunner()
    assert runner.invoke(app, ["tokenize", "--run", str(run), "--store", str(store), "--name", "x", "--device", "cpu"]).exit_code == 0
    result = runner.invoke(app, ["tokenize", "--run", str(other), "--store", str(store), "--name", "x", "--device", "cpu"])
    assert result.exit_code == 2
    assert "another tokenizer" in result.output


def test_pretraining_on_a_mixture_of_stores_shares_one_channel_vocabulary(tuab_store, band_store, tmp_path):
    store, _ = tuab_store
    run = tmp_path / "mix"
    report = pretrain([store, band_store], run, small(steps=6, log_every=3), device="cpu")
    assert report.last is not None and report.last["step"] == 6
    info = json.loads((run / "run.json").read_text())
    assert [row["name"] for row in info["stores"]] == ["tuab.zarr", "band.zarr"]
    assert len(info["channel_vocabulary"]) == 20  # <unk> + the 19 channels both stores share


def test_stores_at_different_rates_or_a_different_config_for_a_run_are_usage_errors(tuab_store, ptbxl_store, demo_run, tmp_path):
    runner = CliRunner()
    tuab, _ = tuab_store
    ptbxl, _ = ptbxl_store
    mixed = runner.invoke(app, ["pretrain", "--store", str(tuab), "--store", str(ptbxl), "--out", str(tmp_path / "m"), "--steps", "2"])
    assert mixed.exit_code == 2 and "sampling rates" in mixed.output
    run, _ = demo_run
    other = tmp_path / "other.yaml"
    other.write_text("model: {codebook_size: 16}\n")
    changed = runner.invoke(app, ["pretrain", "--store", str(tuab), "--out", str(run), "--config", str(other)])
    assert changed.exit_code == 2 and "another config" in changed.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {codebook_sise: 16}\n")
    typo = runner.invoke(app, ["pretrain", "--store", str(tuab), "--out", str(tmp_path / "t"), "--config", str(bad)])
    assert typo.exit_code == 2 and "codebook_sise" in typo.output
    wrong_rate = runner.invoke(app, ["evaluate", "--run", str(run), "--store", str(ptbxl), "--device", "cpu"])
    assert wrong_rate.exit_code == 2 and "200 Hz" in wrong_rate.output


def test_the_tokenizer_commands_without_torch_exit_2_with_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    for args in (["pretrain", "--store", "s", "--out", "r"], ["evaluate", "--run", "r", "--store", "s"], ["tokenize", "--run", "r", "--store", "s"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2
        assert result.output.strip().count("\n") == 0 and "needs PyTorch" in result.output


def test_a_store_without_a_test_split_is_evaluated_on_held_out_subjects(tuab_store):
    store, _ = tuab_store
    st = open_store(store)
    meta = st.metadata.copy()
    meta["split"] = "train"
    st.__dict__["metadata"] = meta  # as if the corpus had no official split
    test, how = evaluation_windows(st)
    train, train_how = training_windows(st, "val")  # no such split either
    assert "held-out subjects" in how and "but the evaluation ones" in train_how
    assert len(test) and not set(test) & set(train) and len(test) + len(train) == len(st)
    held = set(meta["subject"].to_numpy()[test])
    assert not held & set(meta["subject"].to_numpy()[train])  # whole subjects, never split


def test_residual_vq_gives_one_code_per_level_and_straight_through_codebooks_get_gradients():
    cfg = TokenizerConfig.model_validate({"model": {**SMALL["model"], "n_codebooks": 3, "update": "straight_through", "waveform": True}}).model
    torch.manual_seed(0)
    model = Tokenizer(cfg, patch_samples=100, n_channel_ids=5)
    from biosig_ingest.tokenizer.model import Batch

    batch = Batch(
        torch.randn(2, 4, 300),
        torch.tensor([1, 2, 3, 0]),
        torch.zeros(4, 3),
        torch.tensor([True, False, True, False]),
        torch.tensor([[True, True, True, False], [True, True, True, True]]),
    )
    out = model(batch)
    assert out.codes.shape == (2, 4, 3, 3) and out.waveform is not None and out.waveform.shape == (2, 4, 3, 100)
    out.losses["total"].backward()
    assert all(vq.embed.grad is not None and vq.embed.grad.abs().sum() > 0 for vq in model.vq.quantizers())
    codes, quantized = model.eval().tokenize(batch)
    flat = codes.reshape(-1, 3)
    np.testing.assert_allclose(model.vq.embed_codes(flat).detach().numpy(), quantized.reshape(-1, cfg.code_dim).numpy(), atol=1e-5)
