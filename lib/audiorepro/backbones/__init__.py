"""Shared pre-trained backbones with checkpoint-compatible state dicts and layer taps.

>>> from audiorepro.backbones import build_backbone, list_backbones
>>> m = build_backbone("panns_cnn14_16k", scale=0.25).eval()
>>> feats = m.forward_features(m.example_input(1, 2.0), taps=[3, 6])   # doctest: +SKIP

See :mod:`.base` for the interface, :mod:`.registry` for the names, :mod:`.manifest` for the
state-dict checker (``python -m audiorepro.backbones.manifest NAME MANIFEST.json``).
"""
from .base import (Backbone, CheckpointError, LazyFrontend, LoadReport, load_checkpoint,
                   read_state_dict, save_checkpoint, scaled_width)
from .registry import BackboneSpec, backbone_spec, build_backbone, list_backbones, register_backbone

__all__ = ["Backbone", "BackboneSpec", "CheckpointError", "LazyFrontend", "LoadReport",
           "backbone_spec", "build_backbone", "list_backbones", "load_checkpoint",
           "read_state_dict", "register_backbone", "save_checkpoint", "scaled_width"]
