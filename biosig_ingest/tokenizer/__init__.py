"""A discrete tokenizer for multichannel biosignal windows (LaBraM's VQ tokenizer, NeuroRVQ's
residual codebooks), pretrained by streaming stores; see docs/tokenizer.md.

The config needs only pydantic; everything else needs torch (``pip install "biosig-ingest[torch]"``)
and is imported on first use, so ``from biosig_ingest.tokenizer import TokenizerConfig`` works without it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .config import ModelConfig, TokenizerConfig, TokenizerConfigError, TrainConfig, load_config

_LAZY = {
    "pretrain": ".train",
    "PretrainReport": ".train",
    "evaluate": ".evaluation",
    "tokenize_store": ".encode",
    "read_tokens": ".encode",
    "token_sets": ".encode",
    "TokenizeReport": ".encode",
    "TokenSetError": ".encode",
    "load_run": ".run",
    "TrainedTokenizer": ".run",
    "Tokenizer": ".model",
}

__all__ = ["ModelConfig", "TokenizerConfig", "TokenizerConfigError", "TrainConfig", "load_config", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
