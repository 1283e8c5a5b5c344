"""The tokenizer network: 1-s patches per channel -> temporal conv -> transformer with channel,
time and 3-D position embeddings -> VQ codes -> decoder predicting each patch's log-amplitude
spectrum and phase (as LaBraM) and, optionally, its waveform."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelConfig
from .vq import ResidualVQ

AMPLITUDE_FLOOR = 1e-2  # added to |X|/sqrt(L) before the log: bins the store's low-pass emptied stay finite


@dataclass
class Targets:
    """What the decoder reconstructs, per patch, in float32."""

    amplitude: torch.Tensor  # (..., F) log-amplitude, standardized over the patch's bins
    phase: torch.Tensor  # (..., 2F) cos and sin of the phase: no wrap-around at +-pi
    waveform: torch.Tensor  # (..., L) the patch in store-scaled units (keeps absolute amplitude)


def log_amplitude(patches: torch.Tensor) -> torch.Tensor:
    """log(|rfft| / sqrt(L) + floor) of each patch, float32 (..., F)."""
    n = patches.shape[-1]
    spec = torch.fft.rfft(patches.float(), dim=-1) / math.sqrt(n)
    return torch.log(spec.abs() + AMPLITUDE_FLOOR)


def patch_targets(patches: torch.Tensor) -> Targets:
    patches = patches.float()
    n = patches.shape[-1]
    spec = torch.fft.rfft(patches, dim=-1) / math.sqrt(n)
    amp = torch.log(spec.abs() + AMPLITUDE_FLOOR)
    # LaBraM standardizes amplitude per patch: the codes then carry spectral shape, the waveform head the scale
    amp = (amp - amp.mean(-1, keepdim=True)) / (amp.std(-1, keepdim=True) + 1e-6)
    angle = torch.angle(spec)
    return Targets(amp, torch.cat([torch.cos(angle), torch.sin(angle)], dim=-1), patches)


@dataclass
class Batch:
    """One batch on the model's device. Channels are the same for every window of a batch."""

    signals: torch.Tensor  # (B, C, T) float32, divided by the store's scale
    channel_ids: torch.Tensor  # (C,) int64 into the run's channel vocabulary
    positions: torch.Tensor  # (C, 3) float32 metres (0 where unknown)
    has_position: torch.Tensor  # (C,) bool
    valid: torch.Tensor  # (B, C) bool: channels that count in the loss and the codebook updates


@dataclass
class Output:
    codes: torch.Tensor  # (B, C, P, levels) int64
    quantized: torch.Tensor  # (B, C, P, code_dim)
    amplitude: torch.Tensor  # (B, C, P, F)
    phase: torch.Tensor  # (B, C, P, 2F)
    waveform: torch.Tensor | None  # (B, C, P, L)
    targets: Targets
    losses: dict[str, torch.Tensor]  # total, recon, amplitude, phase, waveform, vq


class TemporalConv(nn.Module):
    """Per-patch temporal convolutions (LaBraM's TemporalConv, over one channel's patch)."""

    def __init__(self, patch_samples: int, channels: int, d_model: int):
        super().__init__()
        groups = 4 if channels % 4 == 0 else 1
        self.net = nn.Sequential(
            nn.Conv1d(1, channels, 15, stride=8, padding=7),
            nn.GroupNorm(groups, channels),
            nn.GELU(),
            nn.Conv1d(channels, channels, 3, padding=1),
            nn.GroupNorm(groups, channels),
            nn.GELU(),
            nn.Conv1d(channels, channels, 3, padding=1),
            nn.GroupNorm(groups, channels),
            nn.GELU(),
        )
        out_len = (patch_samples + 2 * 7 - 15) // 8 + 1
        self.proj = nn.Linear(channels * out_len, d_model)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:  # (N, L) -> (N, d)
        h = self.net(patches[:, None, :])
        return self.proj(h.flatten(1))


def _stack(cfg: ModelConfig, layers: int) -> nn.Module:
    if layers == 0:
        return nn.Identity()
    layer = nn.TransformerEncoderLayer(
        cfg.d_model, cfg.n_heads, cfg.ff_mult * cfg.d_model, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class Tokenizer(nn.Module):
    """Discrete tokens for multichannel windows: one code (per level) per channel and patch."""

    def __init__(self, cfg: ModelConfig, patch_samples: int, n_channel_ids: int):
        super().__init__()
        self.cfg = cfg
        self.patch_samples = patch_samples
        self.n_freq = patch_samples // 2 + 1
        d = cfg.d_model
        self.patch_encoder = TemporalConv(patch_samples, cfg.conv_channels, d)
        # the patch's log-amplitude spectrum as a second stem: the conv alone learns spectral
        # content slowly, and the spectrum is what the decoder must reproduce
        self.spectral_stem = nn.Linear(self.n_freq + 2, d) if cfg.spectral_stem else None
        self.channel_embedding = nn.Embedding(n_channel_ids, d)
        self.time_embedding = nn.Embedding(cfg.max_patches, d)
        self.position_embedding = nn.Linear(3, d) if cfg.use_positions else None
        self.encoder = _stack(cfg, cfg.encoder_layers)
        self.encoder_norm = nn.LayerNorm(d)
        self.to_code = nn.Linear(d, cfg.code_dim)
        self.vq = ResidualVQ(
            cfg.n_codebooks,
            cfg.codebook_size,
            cfg.code_dim,
            update=cfg.update,
            decay=cfg.ema_decay,
            commitment=cfg.commitment,
            dead_code_steps=cfg.dead_code_steps,
        )
        self.from_code = nn.Linear(cfg.code_dim, d)
        self.decoder = _stack(cfg, cfg.decoder_layers)
        self.decoder_norm = nn.LayerNorm(d)
        self.amplitude_head = nn.Linear(d, self.n_freq)
        self.phase_head = nn.Linear(d, 2 * self.n_freq)
        self.waveform_head = nn.Linear(d, patch_samples) if cfg.waveform else None
        for emb in (self.channel_embedding, self.time_embedding):
            # small, as in BERT and LaBraM: N(0, 1) embeddings drown the patch features after LayerNorm
            nn.init.trunc_normal_(emb.weight, std=0.02)

    # -- pieces ------------------------------------------------------------------------------
    def patches(self, signals: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, P, L); samples after the last whole patch are left out."""
        b, c, t = signals.shape
        p = t // self.patch_samples
        if p < 1:
            raise ValueError(f"windows of {t} samples are shorter than one patch ({self.patch_samples})")
        if p > self.cfg.max_patches:
            raise ValueError(f"{p} patches per window exceed max_patches={self.cfg.max_patches} of the model config")
        return signals[..., : p * self.patch_samples].reshape(b, c, p, self.patch_samples)

    def embeddings(self, batch: Batch, n_patches: int) -> torch.Tensor:
        """(C, P, d): which channel, where on the head, which second of the window."""
        e = self.channel_embedding(batch.channel_ids)[:, None, :] + self.time_embedding.weight[None, :n_patches, :]
        if self.position_embedding is not None:
            # metres -> decimetres: head coordinates of order one
            pos = self.position_embedding(batch.positions * 10.0) * batch.has_position[:, None].to(e.dtype)
            e = e + pos[:, None, :]
        return e

    @staticmethod
    def _attend(stack: nn.Module, h: torch.Tensor, valid: torch.Tensor, n_patches: int) -> torch.Tensor:
        """Self-attention over a window's tokens; channels a store lacks (or QC left out) are not attended to."""
        if isinstance(stack, nn.Identity):
            return h
        pad = ~valid[:, :, None].expand(-1, -1, n_patches).reshape(h.shape[0], -1)
        pad = pad & ~pad.all(dim=1, keepdim=True)  # a window with no valid channel attends to all (its loss is zero)
        return stack(h, src_key_padding_mask=pad if bool(pad.any()) else None)

    def encode(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Continuous code vectors (B, C, P, code_dim) and the patches (B, C, P, L)."""
        patches = self.patches(batch.signals)
        b, c, p, n = patches.shape
        h = self.patch_encoder(patches.reshape(-1, n)).reshape(b, c, p, -1)
        if self.spectral_stem is not None:
            with torch.autocast(device_type=patches.device.type, enabled=False):
                la = log_amplitude(patches)
                mu, sd = la.mean(-1, keepdim=True), la.std(-1, keepdim=True)
                # the standardized shape (order one, like the target) plus level and spread
                spectrum = torch.cat([(la - mu) / (sd + 1e-6), mu, sd], dim=-1)
            h = h + self.spectral_stem(spectrum)
        h = h + self.embeddings(batch, p)[None]
        h = self._attend(self.encoder, h.reshape(b, c * p, -1), batch.valid, p)
        z = self.to_code(self.encoder_norm(h))
        return z.reshape(b, c, p, -1), patches

    def quantize(self, z: torch.Tensor, valid: torch.Tensor | None = None):
        """VQ in float32 (outside autocast): argmax over cosine similarities is precision-sensitive."""
        b, c, p, dim = z.shape
        rows = None if valid is None else valid[:, :, None].expand(b, c, p).reshape(-1)
        with torch.autocast(device_type=z.device.type, enabled=False):
            out = self.vq(z.float().reshape(-1, dim), rows)
        return out.quantized.reshape(b, c, p, dim), out.codes.reshape(b, c, p, -1), out.loss

    def decode(self, quantized: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        b, c, p, _ = quantized.shape
        h = self.from_code(quantized) + self.embeddings(batch, p)[None]
        h = self.decoder_norm(self._attend(self.decoder, h.reshape(b, c * p, -1), batch.valid, p)).reshape(b, c, p, -1)
        wave = self.waveform_head(h) if self.waveform_head is not None else None
        return self.amplitude_head(h), self.phase_head(h), wave

    # -- whole passes ------------------------------------------------------------------------
    def forward(self, batch: Batch) -> Output:
        z, patches = self.encode(batch)
        quantized, codes, vq_loss = self.quantize(z, batch.valid)
        amp, phase, wave = self.decode(quantized, batch)
        targets = patch_targets(patches)
        w = batch.valid[:, :, None].to(torch.float32)  # (B, C, 1): per patch
        denom = (w.sum() * patches.shape[2]).clamp_min(1.0)

        def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            per_patch = (pred.float() - target).pow(2).mean(-1)
            return (per_patch * w).sum() / denom

        cfg = self.cfg
        losses = {"amplitude": masked_mse(amp, targets.amplitude), "phase": masked_mse(phase, targets.phase)}
        recon = cfg.amplitude_weight * losses["amplitude"] + cfg.phase_weight * losses["phase"]
        if wave is not None:
            losses["waveform"] = masked_mse(wave, targets.waveform)
            recon = recon + cfg.waveform_weight * losses["waveform"]
        losses["recon"] = recon
        losses["vq"] = vq_loss
        losses["total"] = recon + vq_loss
        return Output(codes, quantized, amp, phase, wave, targets, losses)

    @torch.no_grad()
    def tokenize(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes (B, C, P, levels) and quantized vectors (B, C, P, code_dim), no decoding."""
        z, _ = self.encode(batch)
        quantized, codes, _ = self.quantize(z)
        return codes, quantized


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no decay on biases, norms and embeddings (the usual transformer recipe)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim < 2 or "embedding" in name or "norm" in name or name.startswith("vq."):
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
