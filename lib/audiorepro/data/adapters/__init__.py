"""Adapters: the papers' official datasets, from their native metadata, to clip tables.

``adapt(name, root, out_csv=None, **options)`` dispatches to one function per dataset; every
function takes ``root`` (the dataset folder as unpacked), ``out_csv`` (write the table there,
paths rewritten relative to it) and ``on_missing`` (``error`` | ``drop`` | ``keep`` for audio
files listed in the metadata but absent) and returns a
:class:`~audiorepro.data.cliptable.ClipTable`.

==================  =========================================  ==================================
name                native metadata                            module
==================  =========================================  ==================================
esc50               meta/esc50.csv                             classification
us8k                metadata/UrbanSound8K.csv                  classification
fsd50k              FSD50K.ground_truth/{dev,eval,vocabulary}  classification
spcv2               <word>/*.wav + validation/testing lists    classification
vc1                 iden_split.txt                             classification
gtzan               {train,valid,test}_filtered.txt            classification
nsynth              nsynth-<split>/examples.json               classification
evar                EVAR metadata CSV (metadata_csv=...)       evar
cremad, voxforge    EVAR cremad.csv / voxforge.csv             evar
surge               EVAR surge.csv or tone split CSV           evar
audioset            *_segments.csv + class_labels_indices.csv  audioset
audioset_hdf5       PANNs packed waveform HDF5                 audioset
tmac_features       AudioSet_embedds_all.h5                    audioset
clotho              clotho_captions_<split>.csv                captions
audiocaps           {train,val,test}.csv                       captions
wavcaps             json_files/<source>/*.json                 captions
==================  =========================================  ==================================

Rows pointing into an HDF5 file use ``path = "<file>.h5#<row>"`` (see :mod:`.audioset`).
"""
from __future__ import annotations

import os
from typing import Callable

from ..cliptable import ClipTable
from ._common import AdapterError, handle_missing
from .audioset import (audioset, audioset_hdf5, read_class_labels, read_hdf5_clip,
                       read_segments_csv, read_tmac_features, split_hdf5_path, tmac_features)
from .captions import audiocaps, clotho, wavcaps
from .classification import esc50, fsd50k, gtzan, nsynth, spcv2, us8k, vc1
from .evar import EVAR_TASKS, cremad, evar_task, read_evar_metadata, surge, voxforge


def _evar(root, out_csv=None, on_missing="error", *, task: str, metadata_csv):
    return evar_task(task, root, metadata_csv, out_csv, on_missing)


ADAPTERS: dict[str, Callable[..., ClipTable]] = {
    "esc50": esc50, "us8k": us8k, "fsd50k": fsd50k, "spcv2": spcv2, "vc1": vc1, "gtzan": gtzan,
    "nsynth": nsynth, "evar": _evar, "cremad": cremad, "voxforge": voxforge, "surge": surge,
    "audioset": audioset, "audioset_hdf5": audioset_hdf5, "tmac_features": tmac_features,
    "clotho": clotho, "audiocaps": audiocaps, "wavcaps": wavcaps,
}


def adapt(dataset_name: str, root: str | os.PathLike, out_csv: str | os.PathLike | None = None,
          **options) -> ClipTable:
    """Clip table of ``dataset_name`` (a key of :data:`ADAPTERS`) read from ``root``.

    ``options`` go to the dataset's function (e.g. ``on_missing="drop"``,
    ``audio_pattern=...``, ``metadata_csv=...``; ``evar`` needs ``task`` and ``metadata_csv``).
    """
    key = dataset_name.lower()
    if key not in ADAPTERS:
        raise KeyError(f"no adapter for dataset {dataset_name!r}; known: {sorted(ADAPTERS)}")
    return ADAPTERS[key](root, out_csv=out_csv, **options)


__all__ = ["ADAPTERS", "AdapterError", "EVAR_TASKS", "adapt", "audiocaps", "audioset",
           "audioset_hdf5", "clotho", "cremad", "esc50", "evar_task", "fsd50k", "gtzan",
           "handle_missing", "nsynth", "read_class_labels", "read_evar_metadata",
           "read_hdf5_clip", "read_segments_csv", "read_tmac_features", "spcv2",
           "split_hdf5_path", "surge", "tmac_features", "us8k", "vc1", "voxforge", "wavcaps"]
