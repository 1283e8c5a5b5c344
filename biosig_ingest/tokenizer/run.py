"""A run folder: ``run.json`` (config, channel vocabulary, stores), checkpoints (safetensors
weights + optimizer/scheduler/RNG/data position), ``metrics.jsonl``; and loading a trained
tokenizer back for evaluation and encoding.

```
RUN/
  run.json                      what was trained on what (written once, at the start)
  metrics.jsonl                 one JSON object per logged step
  checkpoints/step_0000200/     model.safetensors, state.pt (renamed into place when complete)
  checkpoints/latest            name of the newest complete checkpoint
  tensorboard/                  event files, when tensorboard is installed
```
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UsageError
from ..store.reader import Store
from .config import TokenizerConfig
from .data import ChannelInfo, channel_info, store_scale
from .model import Batch, Tokenizer

RUN_FORMAT = "biosig-tokenizer-run/1"
CHECKPOINTS = "checkpoints"
LATEST = "latest"


class RunError(UsageError):
    """The run folder is missing, incomplete or belongs to another configuration."""


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def read_run_info(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    if info.get("format") != RUN_FORMAT:
        raise RunError(f"{path} is not a tokenizer run ({info.get('format')!r})")
    return info


def require_safetensors() -> Any:
    try:
        import safetensors.torch as st
    except ImportError:
        raise UsageError("checkpoints need the safetensors package: pip install 'biosig-ingest[torch]'") from None
    return st


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = Path(run_dir) / CHECKPOINTS / LATEST
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text().strip()
    return path if (path / "model.safetensors").is_file() and (path / "state.pt").is_file() else None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, state: dict[str, Any], keep: int) -> Path:
    """Weights (safetensors) and ``state`` (torch.save) into ``checkpoints/step_N``, atomically."""
    st = require_safetensors()
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:07d}"
    tmp = root / f".{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    st.save_file(weights, str(tmp / "model.safetensors"), metadata={"step": str(step), "format": RUN_FORMAT})
    torch.save(state, tmp / "state.pt")
    for f in (tmp / "model.safetensors", tmp / "state.pt", tmp):
        _fsync(f)
    final = root / name
    if final.exists():  # the same step saved by an earlier, interrupted attempt
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer = root / f".{LATEST}.{uuid.uuid4().hex[:8]}"
    pointer.write_text(name + "\n")
    os.replace(pointer, root / LATEST)
    _fsync(root)
    done = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_weights(model: torch.nn.Module, checkpoint: Path) -> None:
    st = require_safetensors()
    state = st.load_file(str(checkpoint / "model.safetensors"))
    model.load_state_dict(state, strict=True)


# -- a trained tokenizer -----------------------------------------------------------------------
@dataclass
class TrainedTokenizer:
    """A run's model (weights of its newest checkpoint, or freshly initialized) ready to encode."""

    run_dir: Path
    info: dict[str, Any]
    config: TokenizerConfig
    model: Tokenizer
    device: torch.device
    step: int  # 0: the randomly initialized model

    @property
    def vocab(self) -> list[str]:
        return list(self.info["channel_vocabulary"])

    @property
    def fs_hz(self) -> float:
        return float(self.info["fs_hz"])

    def check_store(self, store: Store) -> None:
        if abs(store.fs_hz - self.fs_hz) > 1e-9:
            raise UsageError(
                f"{store.path.name} is sampled at {store.fs_hz:g} Hz but the tokenizer was trained at "
                f"{self.fs_hz:g} Hz; ingest it with a profile at {self.fs_hz:g} Hz"
            )
        n_patches = store.window_samples // self.model.patch_samples
        if not 1 <= n_patches <= self.config.model.max_patches:
            raise UsageError(
                f"{store.path.name}: windows of {store.window_samples} samples make {n_patches} patches; "
                f"the tokenizer takes 1 to {self.config.model.max_patches}"
            )

    def scale_for(self, store: Store) -> float:
        """The training-time scale for a store it was trained on, else the store's own."""
        for row in self.info["stores"]:
            if row["path"] == str(store.path.resolve()) and row["profile_hash"] == store.attrs.get("profile_hash"):
                return float(row["scale"])
        return store_scale(store)

    def channels(self, store: Store) -> ChannelInfo:
        return channel_info(store, self.vocab)

    def batch(self, signals: np.ndarray, channels: ChannelInfo, scale: float, valid: np.ndarray | None = None) -> Batch:
        x = np.nan_to_num(np.asarray(signals, np.float32) / np.float32(scale))
        ok = np.ones(x.shape[:2], bool) if valid is None else valid
        return to_device_batch(x, ok, channels, self.device)


def to_device_batch(x: np.ndarray, valid: np.ndarray, ch: ChannelInfo, device: torch.device, pinned: bool = False) -> Batch:
    def move(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a))
        if device.type == "cuda":
            # pinned host memory lets the copy overlap with compute
            return (t if pinned else t.pin_memory()).to(device, non_blocking=True)
        return t.to(device)

    return Batch(move(x), move(ch.ids), move(ch.positions), move(ch.has_position), move(valid))


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise UsageError(f"--device must be auto, cpu or cuda[:N], not {device!r}")
    return torch.device(device)


def build_model(info: dict[str, Any], config: TokenizerConfig) -> Tokenizer:
    return Tokenizer(config.model, int(info["patch_samples"]), len(info["channel_vocabulary"]))


def load_run(run_dir: str | Path, device: str = "auto", *, initial: bool = False) -> TrainedTokenizer:
    """The run's tokenizer from its newest checkpoint; ``initial=True``: the same architecture
    initialized as pretraining initialized it (the seed of the run), untrained."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    if info is None:
        raise RunError(f"{run_dir} is not a tokenizer run (no run.json); train one with `biosig pretrain`")
    config = TokenizerConfig.model_validate(info["config"])
    dev = resolve_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        model = build_model(info, config)
    step = 0
    if not initial:
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise RunError(f"{run_dir} has no complete checkpoint yet")
        load_weights(model, ckpt)
        step = int(ckpt.name.split("_")[1])
    model.to(dev).eval()
    return TrainedTokenizer(run_dir, info, config, model, dev, step)
