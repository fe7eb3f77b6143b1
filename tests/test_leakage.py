"""Shortcut probes on tables whose shortcuts are known by construction."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from audiorepro.data.cliptable import ClipTable
from audiorepro.data.leakage import clip_statistics, shortcut_features, shortcut_probes


def _table(tmp_path, n=120, seed=0, duration_leaks=False):
    """Two labels; ``speaker`` equals the label in train, test speakers unseen; ``source`` is
    random; with ``duration_leaks`` label b clips last 0.5 s and label a clips 0.2 s."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "ab"[i % 2]
        split = "test" if i >= int(0.6 * n) else "train"
        secs = (0.5 if label == "b" else 0.2) if duration_leaks else float(rng.choice([0.2, 0.5]))
        wave = (0.1 * rng.standard_normal(int(8000 * secs))).astype("float32")
        sf.write(tmp_path / f"c{i}.wav", wave, 8000)
        rows.append({"clip_id": f"c{i}", "path": f"c{i}.wav", "split": split, "labels": label,
                     "speaker": f"{label}-{split}-{i % 4}" if split == "test" else f"spk-{label}",
                     "source": str(rng.choice(["pkgA", "pkgB"]))})
    return ClipTable(pd.DataFrame(rows), tmp_path, name="toy")


def test_clip_statistics_measure_duration_and_level_by_hand(tmp_path):
    sf.write(tmp_path / "x.wav", np.full(4000, 0.5, dtype="float32"), 8000)
    t = ClipTable(pd.DataFrame([{"clip_id": "x", "path": "x.wav", "split": "train", "labels": "a"}]),
                  tmp_path, name="one")
    s = clip_statistics(t)
    assert s["duration_s"].iloc[0] == pytest.approx(0.5)
    assert s["level_db"].iloc[0] == pytest.approx(20 * np.log10(0.5), abs=1e-4)


def test_a_label_that_the_duration_gives_away_is_a_shortcut_and_unseen_speakers_are_not(tmp_path):
    table = _table(tmp_path, duration_leaks=True)
    feats = shortcut_features(table)
    assert list(feats.columns) == ["duration", "level", "source", "speaker"]
    res = shortcut_probes(table, features=feats).set_index("shortcut")
    assert res.loc["duration", "verdict"] == "shortcut" and res.loc["duration", "accuracy"] == 1.0
    assert res.loc["duration", "majority"] == pytest.approx(0.5)
    # speakers of the train split name the label, but every test speaker is new: nothing to read
    assert res.loc["speaker", "verdict"] == "no shortcut found"
    assert res.loc["source", "verdict"] == "no shortcut found"       # drawn independently
    assert (res["lo"] <= res["advantage"]).all() and (res["advantage"] <= res["hi"]).all()


def test_probes_need_single_labels_and_both_splits(tmp_path):
    table = _table(tmp_path, n=10)
    table.frame.loc[0, "labels"] = "a;b"
    with pytest.raises(ValueError, match="row 0 .*'c0'.* has 2 labels"):
        shortcut_probes(table)
    table = _table(tmp_path, n=10)
    table.frame["split"] = "train"
    with pytest.raises(ValueError, match="needs train and test clips"):
        shortcut_probes(table)
    with pytest.raises(KeyError, match="unknown shortcut"):
        shortcut_probes(table, shortcuts=("colour",))


def test_a_shortcut_that_is_the_label_itself_is_named_not_probed(tmp_path):
    table = _table(tmp_path, n=20)
    table.frame["speaker"] = ["spk-" + lab for lab in table.frame["labels"]]   # speaker ID task
    res = shortcut_probes(table).set_index("shortcut")
    assert res.loc["speaker", "verdict"] == "is the label" and pd.isna(res.loc["speaker", "accuracy"])
    assert res.loc["duration", "verdict"] == "no shortcut found"


def test_unseen_values_get_the_majority_answer_whatever_the_class_balance_of_test(tmp_path):
    # train: label b is the majority (12 clips of one speaker), label a comes from 10 speakers of
    # one clip each; test: 20 a and 5 b, every speaker new. The speaker tells nothing about a new
    # speaker, so the probe must score exactly the majority answer (b) - a fitted model left to
    # itself answers the class its intercept favours (a here) and would show a +0.6 "shortcut".
    rows = []
    for i in range(22 + 25):
        if i < 10:
            label, split, spk = "a", "train", f"train-a{i}"
        elif i < 22:
            label, split, spk = "b", "train", "train-b"
        else:
            label, split, spk = ("a" if i < 42 else "b"), "test", f"test-{i}"
        sf.write(tmp_path / f"c{i}.wav", np.full(800, 0.1, dtype="float32"), 8000)
        rows.append({"clip_id": f"c{i}", "path": f"c{i}.wav", "split": split, "labels": label,
                     "speaker": spk})
    table = ClipTable(pd.DataFrame(rows), tmp_path, name="imbalanced")
    res = shortcut_probes(table, shortcuts=("speaker",)).set_index("shortcut")
    assert res.loc["speaker", "majority"] == pytest.approx(5 / 25)
    assert res.loc["speaker", "accuracy"] == pytest.approx(5 / 25)
    assert res.loc["speaker", "advantage"] == 0.0 and res.loc["speaker", "verdict"] == "no shortcut found"


def test_a_label_fixed_by_the_phrase_leaks_only_when_test_phrases_were_heard(tmp_path):
    table = _table(tmp_path, n=120)
    table.frame["phrase"] = [f"{lab}-words{i % 3}" for i, lab in enumerate(table.frame["labels"])]
    shared = shortcut_probes(table, shortcuts=("phrase",)).set_index("shortcut")
    assert shared.loc["phrase", "verdict"] == "shortcut" and shared.loc["phrase", "accuracy"] == 1.0
    table.frame["phrase"] = [f"{lab}-{split}-words{i % 3}" for i, (lab, split)
                             in enumerate(zip(table.frame["labels"], table.frame["split"]))]
    disjoint = shortcut_probes(table, shortcuts=("phrase",)).set_index("shortcut")
    assert disjoint.loc["phrase", "advantage"] == 0.0
    assert disjoint.loc["phrase", "verdict"] == "no shortcut found"
