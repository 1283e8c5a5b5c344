"""Vector quantizers: a cosine-similarity codebook (LaBraM) with EMA or straight-through updates
and dead-code restart, and residual VQ over several codebooks (NeuroRVQ)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Quantized:
    quantized: torch.Tensor  # (N, D) straight-through: gradients flow to the encoder
    codes: torch.Tensor  # (N, levels) int64
    loss: torch.Tensor  # commitment (+ codebook loss for straight-through)


class VectorQuantizer(nn.Module):
    """One codebook. ``cosine``: inputs and codes live on the unit sphere and the nearest code is
    the most similar one (LaBraM's normalized EMA quantizer); otherwise Euclidean."""

    embed: torch.Tensor  # a buffer (EMA updates) or a parameter (straight-through)
    ema_sum: torch.Tensor
    ema_count: torch.Tensor
    idle_steps: torch.Tensor
    initted: torch.Tensor

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        *,
        cosine: bool = True,
        update: str = "ema",
        decay: float = 0.99,
        commitment: float = 0.25,
        dead_code_steps: int = 20,
    ):
        super().__init__()
        self.codebook_size = codebook_size
        self.dim = dim
        self.cosine = cosine
        self.update = update
        self.decay = decay
        self.commitment = commitment
        self.dead_code_steps = dead_code_steps
        embed = torch.randn(codebook_size, dim)
        if cosine:
            embed = F.normalize(embed, dim=-1)
        if update == "ema":
            self.register_buffer("embed", embed)
            self.register_buffer("ema_sum", embed.clone())
        else:
            self.embed = nn.Parameter(embed)
        self.register_buffer("ema_count", torch.zeros(codebook_size))  # EMA of each code's count per batch
        # training steps since each code was last chosen: codes idle too long are restarted
        self.register_buffer("idle_steps", torch.zeros(codebook_size, dtype=torch.int64))
        # codes start from data (the first training batch), as k-means init does in LaBraM
        self.register_buffer("initted", torch.zeros((), dtype=torch.bool))

    def codebook(self) -> torch.Tensor:
        embed: torch.Tensor = self.embed
        return F.normalize(embed, dim=-1) if self.cosine and self.update != "ema" else embed

    def lookup(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of ``z`` (already normalized when cosine)."""
        cb = self.codebook()
        if self.cosine:
            return (z @ cb.t()).argmax(dim=-1)
        dist = z.pow(2).sum(-1, keepdim=True) - 2 * z @ cb.t() + cb.pow(2).sum(-1)[None]
        return dist.argmin(dim=-1)

    def forward(self, z: torch.Tensor, valid: torch.Tensor | None = None) -> Quantized:
        """Quantize ``z`` (N, D) float32; ``valid`` (N,) bool marks rows that may update the codebook."""
        if self.cosine:
            z = F.normalize(z, dim=-1)
        train_rows = z if valid is None else z[valid]
        if self.training and train_rows.shape[0]:
            with torch.no_grad():
                if not bool(self.initted):
                    self._init_from(train_rows.detach())
        idx = self.lookup(z.detach())
        q = self.codebook()[idx]
        rows = slice(None) if valid is None else valid
        loss = self.commitment * F.mse_loss(z[rows], q.detach()[rows]) if train_rows.shape[0] else z.sum() * 0.0
        if self.update != "ema":
            loss = loss + F.mse_loss(q[rows], z.detach()[rows]) if train_rows.shape[0] else loss
        if self.training and train_rows.shape[0]:
            with torch.no_grad():
                self._update(train_rows.detach(), idx if valid is None else idx[valid])
        quantized = z + (q - z).detach()
        return Quantized(quantized, idx[:, None], loss)

    def _random_rows(self, z: torch.Tensor, n: int) -> torch.Tensor:
        # the default generator: seeded by the run and saved in checkpoints, so restarts resume exactly
        return z[torch.randint(0, z.shape[0], (n,), device=z.device)]

    def _init_from(self, z: torch.Tensor) -> None:
        embed = self._random_rows(z, self.codebook_size)
        if self.cosine:
            embed = F.normalize(embed, dim=-1)
        self._set(torch.arange(self.codebook_size, device=z.device), embed, z.shape[0])
        self.initted.fill_(True)

    def _set(self, which: torch.Tensor, vectors: torch.Tensor, n_tokens: int) -> None:
        fresh = n_tokens / self.codebook_size  # a restarted code starts with an average count
        self.ema_count[which] = fresh
        self.idle_steps[which] = 0
        if self.update == "ema":
            self.embed[which] = vectors
            self.ema_sum[which] = vectors * fresh
        else:
            self.embed.data[which] = vectors

    def _update(self, z: torch.Tensor, idx: torch.Tensor) -> None:
        n = z.shape[0]
        count = torch.bincount(idx, minlength=self.codebook_size).to(z.dtype)
        self.ema_count.mul_(self.decay).add_(count, alpha=1 - self.decay)
        if self.update == "ema":
            total = torch.zeros_like(self.ema_sum).index_add_(0, idx, z)
            self.ema_sum.mul_(self.decay).add_(total, alpha=1 - self.decay)
            # Laplace smoothing keeps rarely used codes finite
            m = self.ema_count.sum()
            smoothed = (self.ema_count + 1e-5) / (m + self.codebook_size * 1e-5) * m
            embed = self.ema_sum / smoothed[:, None]
            self.embed.copy_(F.normalize(embed, dim=-1) if self.cosine else embed)
        self.idle_steps.add_(1).masked_fill_(count > 0, 0)
        if self.dead_code_steps <= 0:
            return
        dead = self.idle_steps > self.dead_code_steps
        if bool(dead.any()):
            which = dead.nonzero().squeeze(1)
            vectors = self._random_rows(z, which.numel())
            self._set(which, F.normalize(vectors, dim=-1) if self.cosine else vectors, n)


class ResidualVQ(nn.Module):
    """``levels`` codebooks: the first quantizes the direction (cosine), each next one what the
    previous levels left (Euclidean: the residual's length matters). One level is plain VQ."""

    def __init__(self, levels: int, codebook_size: int, dim: int, **kwargs: object):
        super().__init__()
        self.levels = nn.ModuleList(
            [VectorQuantizer(codebook_size, dim, cosine=(i == 0), **kwargs) for i in range(levels)]  # type: ignore[arg-type]
        )

    def forward(self, z: torch.Tensor, valid: torch.Tensor | None = None) -> Quantized:
        z = F.normalize(z, dim=-1)
        residual = z
        total = torch.zeros_like(z)
        codes, loss = [], z.sum() * 0.0
        for vq in self.quantizers():
            out = vq(residual, valid)
            # values only: the straight-through estimator is applied once, to the sum, below
            q = out.quantized.detach()
            total = total + q
            residual = residual - q
            codes.append(out.codes)
            loss = loss + out.loss
        quantized = z + (total - z).detach()
        return Quantized(quantized, torch.cat(codes, dim=1), loss)

    def quantizers(self) -> list[VectorQuantizer]:
        return [vq for vq in self.levels if isinstance(vq, VectorQuantizer)]

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """The quantized vectors (N, D) of code indices (N, levels)."""
        out = torch.zeros(codes.shape[0], self.quantizers()[0].dim, device=codes.device)
        for i, vq in enumerate(self.quantizers()):
            out = out + vq.codebook()[codes[:, i]]
        return out
