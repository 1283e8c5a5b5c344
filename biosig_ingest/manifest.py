"""Load and validate the corpus manifests (``manifests/*.yaml``) and profile files."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from .config import Manifest, Profile
from .errors import ManifestError


def available_manifests() -> list[str]:
    root = resources.files("biosig_ingest.manifests")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


# Keys whose mappings a child manifest extends rather than replaces (``inherits: tuh``).
_MERGED_KEYS = ("channel_sets", "montages", "profiles", "extra")


def _raw_manifest(corpus: str) -> dict:
    path = resources.files("biosig_ingest.manifests") / f"{corpus}.yaml"
    if not path.is_file():
        raise ManifestError(f"no manifest for corpus {corpus!r} (known: {', '.join(available_manifests())})")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    parent = data.pop("inherits", None)
    if parent is None:
        return data
    merged = _raw_manifest(parent)
    for key, value in data.items():
        if key in _MERGED_KEYS and isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    return merged


@cache
def load_manifest(corpus: str) -> Manifest:
    """The validated manifest of ``corpus``; a manifest may extend another (``inherits``)."""
    try:
        return Manifest.model_validate(_raw_manifest(corpus))
    except ValidationError as exc:
        raise ManifestError(f"manifests/{corpus}.yaml is invalid: {_first_error(exc)}") from exc


def load_profile(manifest: Manifest, profile: str | Path) -> Profile:
    """A profile by name from the manifest, or from a YAML file (``*.yaml``/``*.yml``)."""
    text = str(profile)
    if text.endswith((".yaml", ".yml")):
        path = Path(text)
        if not path.is_file():
            raise ManifestError(f"profile file {path} does not exist")
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        data.setdefault("name", path.stem)
        try:
            return Profile.model_validate(data)
        except ValidationError as exc:
            raise ManifestError(f"profile {path} is invalid: {_first_error(exc)}") from exc
    try:
        return manifest.profile(text)
    except KeyError as exc:
        raise ManifestError(str(exc.args[0])) from exc
    except ValidationError as exc:
        raise ManifestError(f"profile {text!r} is invalid: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]
