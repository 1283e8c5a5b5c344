"""Typed settings of a tokenizer run: model sizes, optimizer and schedule, data stream.

Read from a YAML or JSON file (``biosig pretrain --config``); unknown keys are errors.
Needs no torch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import UsageError

QcFlag = Literal["flat", "clipped", "nan", "implausible", "missing"]


class TokenizerConfigError(UsageError):
    """The tokenizer configuration file is missing, unreadable or invalid."""


class ModelConfig(BaseModel):
    """Sizes and losses of the tokenizer (defaults: small, trains in minutes on a CPU)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patch_s: float = Field(1.0, gt=0, description="patch length in seconds, per channel (LaBraM: 1 s)")
    d_model: int = Field(64, ge=8, description="width of the encoder and decoder")
    conv_channels: int = Field(16, ge=1, description="feature maps of the temporal conv encoder")
    encoder_layers: int = Field(2, ge=0, description="transformer layers over a window's patches")
    decoder_layers: int = Field(1, ge=0)
    n_heads: int = Field(4, ge=1)
    ff_mult: int = Field(2, ge=1, description="feed-forward width as a multiple of d_model")
    dropout: float = Field(0.0, ge=0, lt=1)
    max_patches: int = Field(64, ge=1, description="time-embedding table size: patches per window at most")
    spectral_stem: bool = Field(True, description="also feed each patch's log-amplitude spectrum to the encoder (a linear stem)")
    use_positions: bool = Field(True, description="add an embedding of the channels' 3-D positions where the store has them")

    codebook_size: int = Field(64, ge=2, le=2**31 - 1)
    code_dim: int = Field(32, ge=2)
    n_codebooks: int = Field(1, ge=1, description=">1: residual VQ, each level quantizes what the previous left")
    update: Literal["ema", "straight_through"] = "ema"
    ema_decay: float = Field(0.99, gt=0, lt=1)
    commitment: float = Field(0.25, ge=0)
    dead_code_steps: int = Field(20, ge=0, description="a code no token chose for this many steps is restarted on a random token (0: never)")

    waveform: bool = Field(False, description="also reconstruct the patch waveform (LaBraM does not; it spends codes on slow waves)")
    amplitude_weight: float = Field(1.0, ge=0)
    phase_weight: float = Field(0.5, ge=0)
    waveform_weight: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelConfig:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        return self

    @property
    def index_dtype(self) -> str:
        """Smallest integer type that holds every code index."""
        return "int16" if self.codebook_size <= 2**15 - 1 else "int32"


class TrainConfig(BaseModel):
    """Optimizer, schedule and data stream of pretraining."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(1000, ge=1)
    batch_windows: int = Field(16, ge=1, description="windows per step; tokens = windows x channels x patches")
    lr: float = Field(1e-3, gt=0)
    min_lr_ratio: float = Field(0.05, ge=0, le=1, description="cosine decay ends at lr x this")
    warmup_steps: int = Field(50, ge=0)
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = Field(1.0, gt=0, description="max global gradient norm")
    seed: int = 0
    split: str = Field("train", description="split streamed for pretraining (held-out fallback where the store has none)")
    exclude_qc: tuple[QcFlag, ...] = Field(("nan", "missing"), description="QC flags whose channels are left out of the loss")
    shuffle_buffer: int = Field(512, ge=1, description="windows (whole chunks) decompressed and drawn from at random, per store")
    loader_workers: int = Field(0, ge=0, description="DataLoader worker processes (0: read in the training process, with a prefetch thread)")
    store_weights: tuple[float, ...] | None = Field(None, description="mixture weights per --store (default: window counts)")
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(200, ge=1)
    keep_checkpoints: int = Field(2, ge=1)


class TokenizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()

    def digest(self, *, ignore_steps: bool = True) -> str:
        """sha256 of the settings that determine the weights (a run's steps may be extended)."""
        d = self.model_dump(mode="json")
        if ignore_steps:
            d["train"].pop("steps")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def load_config(path: str | Path | None, **train_overrides: object) -> TokenizerConfig:
    """A config from a YAML/JSON file (``None``: the defaults), with train fields overridden."""
    data: dict = {}
    if path is not None:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except OSError as exc:
            raise TokenizerConfigError(f"cannot read tokenizer config {p}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise TokenizerConfigError(f"{p} is not YAML/JSON: {exc}") from None
        if not isinstance(data, dict):
            raise TokenizerConfigError(f"{p} must hold a mapping with 'model' and/or 'train'")
    overrides = {k: v for k, v in train_overrides.items() if v is not None}
    if overrides:
        data = {**data, "train": {**(data.get("train") or {}), **overrides}}
    try:
        return TokenizerConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise TokenizerConfigError(f"tokenizer config: {where}: {first['msg']}") from None
