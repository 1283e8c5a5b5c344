"""Readers of TUH annotation files: ``.rec`` (TUEV) and ``csv_v1.0.0`` ``.csv``/``.csv_bi``.

Formats: LAYOUTS.md section 1.5. ``.rec`` lines are ``channel,start,stop,code`` with the
TCP channel number; ``.csv`` has ``#`` header lines then
``channel,start_time,stop_time,label,confidence``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import HeaderError, MissingFileError


@dataclass(frozen=True)
class TuhInterval:
    channel: str  # TCP name ("FP1-F7") or "TERM"
    start_s: float
    stop_s: float
    label: str


def read_rec(path: Path, channel_names: list[str], code_names: list[str]) -> list[TuhInterval]:
    """TUEV events; codes 1-6 map to ``code_names`` and channel numbers to ``channel_names``."""
    out = []
    for number, line in enumerate(_lines(path), start=1):
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 4:
            raise HeaderError(f"{path.name} line {number}: {len(fields)} fields, a .rec line has 4")
        try:
            channel, start, stop, code = int(fields[0]), float(fields[1]), float(fields[2]), int(float(fields[3]))
        except ValueError:
            raise HeaderError(f"{path.name} line {number}: not channel,start,stop,code numbers") from None
        if not 0 <= channel < len(channel_names) or not 1 <= code <= len(code_names):
            raise HeaderError(f"{path.name} line {number}: channel {channel} or code {code} out of range")
        out.append(TuhInterval(channel_names[channel], start, stop, code_names[code - 1]))
    return out


def read_csv(path: Path) -> list[TuhInterval]:
    """Events of a csv_v1.0.0 ``.csv``/``.csv_bi`` file (any number of ``#`` header lines)."""
    rows = [line for line in _lines(path) if not line.startswith("#")]
    if not rows:
        return []
    reader = csv.DictReader(rows)
    need = {"channel", "start_time", "stop_time", "label"}
    if not need <= set(reader.fieldnames or ()):
        raise HeaderError(f"{path.name}: columns {reader.fieldnames}, expected {sorted(need)}")
    out = []
    for row in reader:
        try:
            out.append(TuhInterval(row["channel"].strip(), float(row["start_time"]), float(row["stop_time"]), row["label"].strip()))
        except ValueError:
            raise HeaderError(f"{path.name}: bad times in row {row}") from None
    return out


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise MissingFileError(f"{path.name} does not exist") from None
    return [line.strip() for line in text.splitlines() if line.strip()]
