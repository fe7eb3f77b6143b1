"""Shortcut probes: can a task's label be read from something that is not the sound itself?

A task analogue must not be solvable by a shortcut: the recording's length or level, the package
(source) it came from, its speaker. :func:`shortcut_probes` trains, for each shortcut alone, a
multinomial logistic regression (scikit-learn) on the train split and scores it on the test
split. Its test accuracy is set against the accuracy of always answering the train split's most
frequent label, by a paired bootstrap over the test clips (95 % interval of the difference):

* ``shortcut`` - the interval lies above zero: the label can be read from that shortcut alone;
* ``no shortcut found`` - the interval reaches zero or below (no evidence at this test size;
  its upper end says how large an advantage the test could have missed);
* ``is the label`` - the shortcut's values and the labels name each other one to one (a speaker
  identification task's speaker): not a shortcut but the task itself, so it is not probed.

Shortcut features (:data:`SHORTCUTS`): ``duration`` (log seconds of the file), ``level`` (RMS of
the whole file in dB), ``source`` (the ``source`` column, else the first folder of the clip's
path that is not ``..``), ``speaker``, ``phrase`` and ``session`` (those columns). Categorical
ones are one-hot coded; a test clip whose value the train split never saw (an unseen speaker) carries no
information, so the probe answers the train split's majority label for it, as the baseline does:
a speaker-disjoint split gives the speaker probe nothing to read, as it should. (Left to the
fitted model, such a clip would get the class its intercept favours, which can differ from the
majority and turn a difference in class balance between the splits into a false shortcut.)
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import soundfile as sf
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .cliptable import ClipTable, split_labels

__all__ = ["SHORTCUTS", "clip_statistics", "shortcut_features", "shortcut_probes"]

#: shortcut -> what it reads
SHORTCUTS: dict[str, str] = {
    "duration": "log duration of the audio file (s)",
    "level": "RMS level of the whole file (dB)",
    "source": "the package / collection the clip came from",
    "speaker": "the speaker (column speaker)",
    "phrase": "what is said or played (column phrase): a label fixed by the words",
    "session": "the recording session (column session): a channel its clips share",
}
_NUMERIC = ("duration", "level")


def clip_statistics(table: ClipTable) -> pd.DataFrame:
    """``duration_s`` and ``level_db`` (RMS over all channels and samples) of every clip's audio
    file (a ``start_s`` / ``duration_s`` segment when the table has one), indexed like the
    table. Files are decoded once, with soundfile."""
    f = table.frame
    out = []
    for i in range(len(f)):
        path = str(table.audio_path(i))
        info = sf.info(path)
        start = float(f["start_s"].iloc[i]) if "start_s" in f.columns and pd.notna(f["start_s"].iloc[i]) else 0.0
        dur = (float(f["duration_s"].iloc[i]) if "duration_s" in f.columns and pd.notna(f["duration_s"].iloc[i])
               else info.frames / info.samplerate - start)
        a = int(round(start * info.samplerate))
        data, _ = sf.read(path, start=a, stop=a + int(round(dur * info.samplerate)), dtype="float32",
                          always_2d=True)
        rms = float(np.sqrt(np.mean(np.square(data, dtype=np.float64)))) if data.size else 0.0
        out.append({"duration_s": dur, "level_db": 20 * np.log10(max(rms, 1e-10))})
    return pd.DataFrame(out, index=f.index)


def _source_of(table: ClipTable) -> pd.Series:
    f = table.frame
    if "source" in f.columns:
        return f["source"].astype(str)
    return pd.Series([next((p for p in Path(str(x)).parts if p not in ("..", ".")), "")
                      for x in f["path"]], index=f.index)


def shortcut_features(table: ClipTable, stats: pd.DataFrame | None = None) -> pd.DataFrame:
    """The shortcut columns of :data:`SHORTCUTS` that this table has, one row per clip
    (``stats``: :func:`clip_statistics`, computed when not given)."""
    stats = clip_statistics(table) if stats is None else stats
    out = pd.DataFrame({"duration": np.log(np.maximum(stats["duration_s"].to_numpy(), 1e-3)),
                        "level": stats["level_db"].to_numpy(),
                        "source": _source_of(table).to_numpy()}, index=table.frame.index)
    for column in ("speaker", "phrase", "session"):
        if column in table.frame.columns:
            out[column] = table.frame[column].astype(str).to_numpy()
    return out


def _single_labels(table: ClipTable) -> np.ndarray:
    labels = [split_labels(x) for x in table.frame["labels"]]
    bad = [i for i, lab in enumerate(labels) if len(lab) != 1]
    if bad:
        raise ValueError(f"shortcut_probes: table {table.name!r} row {bad[0]} "
                         f"({table.frame['clip_id'].iloc[bad[0]]!r}) has {len(labels[bad[0]])} labels; "
                         "the probes need one label per clip")
    return np.array([lab[0] for lab in labels])


def _names_the_label(values: np.ndarray, labels: np.ndarray) -> bool:
    """Whether categorical ``values`` and ``labels`` determine each other (a bijection over the
    rows)."""
    pairs = set(zip(values.tolist(), labels.tolist()))
    return len(pairs) == len(set(values.tolist())) == len(set(labels.tolist()))


def shortcut_probes(table: ClipTable, shortcuts: Sequence[str] = tuple(SHORTCUTS),
                    features: pd.DataFrame | None = None, n_boot: int = 1000,
                    seed: int = 0) -> pd.DataFrame:
    """One row per shortcut the table has: ``shortcut, n_train, n_test, accuracy (test),
    majority (test accuracy of the train split's most frequent label), advantage (accuracy -
    majority), lo, hi (its 95 % paired-bootstrap interval over test clips), verdict``.

    ``features``: :func:`shortcut_features` (computed when not given). Single-label tables only
    (``ValueError`` naming the first row with another count); the ``train`` and ``test`` splits
    are used. A shortcut the table lacks (no ``speaker`` column) or with one value only is
    skipped."""
    unknown = [s for s in shortcuts if s not in SHORTCUTS]
    if unknown:
        raise KeyError(f"shortcut_probes: unknown shortcut(s) {unknown}; known: {list(SHORTCUTS)}")
    y = _single_labels(table)
    split = table.frame["split"].to_numpy()
    tr, te = split == "train", split == "test"
    if not tr.any() or not te.any():
        raise ValueError(f"shortcut_probes: table {table.name!r} needs train and test clips "
                         f"(has {int(tr.sum())} / {int(te.sum())})")
    feats = shortcut_features(table) if features is None else features
    values, counts = np.unique(y[tr], return_counts=True)
    majority_correct = (y[te] == values[np.argmax(counts)]).astype(float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, int(te.sum()), size=(n_boot, int(te.sum())))
    rows = []
    for name in shortcuts:
        if name not in feats.columns or feats[name].nunique() < 2:
            continue
        if name not in _NUMERIC and _names_the_label(feats[name].to_numpy(), y):
            rows.append({"shortcut": name, "n_train": int(tr.sum()), "n_test": int(te.sum()),
                         "verdict": "is the label"})
            continue
        x = feats[[name]]
        enc = StandardScaler() if name in _NUMERIC else OneHotEncoder(handle_unknown="ignore")
        model = make_pipeline(enc, LogisticRegression(max_iter=1000))
        if len(values) == 1:
            correct = majority_correct.copy()
        else:
            with warnings.catch_warnings():   # many labels on few clips is expected here
                warnings.filterwarnings("ignore", message="The number of unique classes")
                model.fit(x[tr], y[tr])
            predicted = model.predict(x[te])
            if name not in _NUMERIC:   # a value unseen in train tells nothing: the majority
                unseen = ~np.isin(x[name].to_numpy()[te], x[name].to_numpy()[tr])
                predicted = np.where(unseen, values[np.argmax(counts)], predicted)
            correct = (predicted == y[te]).astype(float)
        diff = correct - majority_correct
        boot = diff[idx].mean(axis=1)
        lo, hi = (float(v) for v in np.quantile(boot, [0.025, 0.975]))
        rows.append({"shortcut": name, "n_train": int(tr.sum()), "n_test": int(te.sum()),
                     "accuracy": float(correct.mean()), "majority": float(majority_correct.mean()),
                     "advantage": float(diff.mean()), "lo": lo, "hi": hi,
                     "verdict": "shortcut" if lo > 0 else "no shortcut found"})
    return pd.DataFrame(rows, columns=["shortcut", "n_train", "n_test", "accuracy", "majority",
                                       "advantage", "lo", "hi", "verdict"])
