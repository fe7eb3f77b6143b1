"""Check a model's state dict against a reference manifest (made from the official code).

A manifest JSON (``reference_state_dicts/*.json``) holds ``state_dict = [[key, shape, dtype], ...]``
in ``state_dict()`` order and the counts ``n_params_trainable``, ``n_params_all``, ``n_buffers``
(conventions in :mod:`audiorepro.backbones.counting`).

CLI::

    python -m audiorepro.backbones.manifest MODEL_NAME MANIFEST.json [--scale 1.0]

prints matching / missing / unexpected / mis-shaped keys and both parameter counts; exit status
1 on any mismatch, 2 on a bad argument or file.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .counting import count_parameters

REQUIRED = ("state_dict", "n_params_trainable", "n_params_all")


class ManifestError(ValueError):
    """A manifest file is unreadable or malformed (the message names the file)."""


def load_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a manifest JSON."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ManifestError(f"manifest {path} is not valid JSON: {exc}") from exc
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ManifestError(f"manifest {path} lacks field(s) {missing}")
    for i, row in enumerate(data["state_dict"]):
        if not (isinstance(row, list) and len(row) >= 2 and isinstance(row[0], str)
                and isinstance(row[1], list)):
            raise ManifestError(f"manifest {path}: state_dict row {i} is not [key, shape, dtype]: {row!r}")
    data["_path"] = str(path)
    return data


@dataclass
class ManifestReport:
    """Key-by-key comparison of a state dict with a manifest."""

    manifest: str
    matching: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)       # in manifest, not in model
    unexpected: list[str] = field(default_factory=list)    # in model, not in manifest
    mis_shaped: list[tuple[str, list[int], list[int]]] = field(default_factory=list)  # key, ours, ref
    wrong_dtype: list[tuple[str, str, str]] = field(default_factory=list)
    same_order: bool = True
    counts: dict[str, int] = field(default_factory=dict)
    ref_counts: dict[str, int] = field(default_factory=dict)

    @property
    def keys_ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mis_shaped or self.wrong_dtype)

    @property
    def counts_ok(self) -> bool:
        return all(self.counts.get(k) == v for k, v in self.ref_counts.items())

    @property
    def ok(self) -> bool:
        return self.keys_ok and self.counts_ok

    def format(self, limit: int = 20) -> str:
        def block(title: str, items: Sequence) -> list[str]:
            lines = [f"{title}: {len(items)}"]
            lines += [f"    {it}" for it in list(items)[:limit]]
            if len(items) > limit:
                lines.append(f"    ... (+{len(items) - limit} more)")
            return lines
        out = [f"manifest {self.manifest}", f"matching keys: {len(self.matching)}"]
        out += block("missing keys (in manifest, not in model)", self.missing)
        out += block("unexpected keys (in model, not in manifest)", self.unexpected)
        out += block("mis-shaped keys (key, model shape, manifest shape)", self.mis_shaped)
        if self.wrong_dtype:
            out += block("wrong dtype (key, model, manifest)", self.wrong_dtype)
        out.append(f"key order identical: {self.same_order}")
        for k, ref in self.ref_counts.items():
            ours = self.counts.get(k)
            mark = "ok" if ours == ref else "MISMATCH"
            out.append(f"{k:>10}: model {ours:,} | manifest {ref:,}  {mark}")
        out.append("RESULT: " + ("MATCH" if self.ok else "MISMATCH"))
        return "\n".join(out)


def compare_to_manifest(model: nn.Module | Mapping[str, torch.Tensor],
                        manifest: Mapping[str, Any] | str | os.PathLike) -> ManifestReport:
    """Compare ``model`` (or a bare state dict: then only keys/shapes) with ``manifest``."""
    if not isinstance(manifest, Mapping):
        manifest = load_manifest(manifest)
    report = ManifestReport(manifest=str(manifest.get("_path", manifest.get("name", "<manifest>"))))
    sd = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    ref = {row[0]: (list(row[1]), row[2] if len(row) > 2 else None) for row in manifest["state_dict"]}
    for key, tensor in sd.items():
        if key not in ref:
            report.unexpected.append(key)
            continue
        shape, dtype = ref[key]
        if list(tensor.shape) != shape:
            report.mis_shaped.append((key, list(tensor.shape), shape))
        elif dtype is not None and str(tensor.dtype).replace("torch.", "") != dtype:
            report.wrong_dtype.append((key, str(tensor.dtype).replace("torch.", ""), dtype))
        else:
            report.matching.append(key)
    report.missing = [k for k in ref if k not in sd]
    common_ours = [k for k in sd if k in ref]
    common_ref = [k for k in ref if k in sd]
    report.same_order = common_ours == common_ref
    if isinstance(model, nn.Module):
        c = count_parameters(model)
        report.counts = {"trainable": c["trainable"], "all": c["all"], "buffers": c["buffers"]}
        report.ref_counts = {"trainable": int(manifest["n_params_trainable"]),
                             "all": int(manifest["n_params_all"])}
        if "n_buffers" in manifest:
            report.ref_counts["buffers"] = int(manifest["n_buffers"])
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audiorepro.backbones.manifest",
        description="Compare a registered backbone's state dict with a reference manifest.")
    parser.add_argument("model", help="registered backbone name (see --list)")
    parser.add_argument("manifest", help="manifest JSON (reference_state_dicts/<name>.json)")
    parser.add_argument("--scale", type=float, default=1.0, help="width scale (default 1.0)")
    parser.add_argument("--meta", action="store_true",
                        help="build on the meta device (no memory for weights)")
    args = parser.parse_args(argv)
    from .registry import build_backbone, list_backbones
    if args.model not in list_backbones():
        print(f"unknown backbone {args.model!r}; registered: {', '.join(list_backbones())}",
              file=sys.stderr)
        return 2
    try:
        manifest = load_manifest(args.manifest)
    except ManifestError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    kw = {"pretrained": False} if args.model.startswith("crepe") else {}
    if args.meta:
        with torch.device("meta"):
            model = build_backbone(args.model, scale=args.scale, **kw)
    else:
        model = build_backbone(args.model, scale=args.scale, **kw)
    report = compare_to_manifest(model, manifest)
    print(f"model {args.model} (scale {args.scale})")
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
