"""One cache key (parameters + data fingerprint + code digest) and the one standardiser."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from audiorepro import caching
from audiorepro.preprocessing import standardise


def test_stable_digest_is_sha256_of_sorted_json():
    want = hashlib.sha256(b'{"a":1,"b":[2,3]}').hexdigest()[:16]
    assert caching.stable_digest({"b": [2, 3], "a": 1}) == want


def test_run_key_changes_with_each_part():
    base = caching.run_key({"lr": 1e-3}, data="d1", code=["audiorepro.metrics"])
    assert base == caching.run_key({"lr": 1e-3}, data="d1", code=["audiorepro.metrics"])
    assert base != caching.run_key({"lr": 2e-3}, data="d1", code=["audiorepro.metrics"])
    assert base != caching.run_key({"lr": 1e-3}, data="d2", code=["audiorepro.metrics"])
    assert base != caching.run_key({"lr": 1e-3}, data="d1", code=["audiorepro.augment"])


def test_tree_digest_sees_an_edited_source_file(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.bin").write_bytes(b"\0")
    first = caching.tree_digest(tmp_path)
    (tmp_path / "notes.bin").write_bytes(b"\1")          # not source: ignored
    assert caching.tree_digest(tmp_path) == first
    (tmp_path / "a.py").write_text("x = 2\n")
    assert caching.tree_digest(tmp_path) != first


def test_a_papers_claims_are_not_code(tmp_path):
    # editing paper.yml (printed numbers, claims) leaves every cache key of the paper as it was;
    # any other YAML of the package (a configuration) is code
    (tmp_path / "model.py").write_text("x = 1\n")
    (tmp_path / "paper.yml").write_text("claims: []\n")
    (tmp_path / "grid.yml").write_text("lr: 1\n")
    first = caching.tree_digest(tmp_path)
    (tmp_path / "paper.yml").write_text("claims: [{id: a}]\n")
    assert caching.tree_digest(tmp_path) == first
    (tmp_path / "grid.yml").write_text("lr: 2\n")
    assert caching.tree_digest(tmp_path) != first


def test_table_fingerprint_depends_on_rows_not_order_of_columns():
    a = pd.DataFrame({"clip_id": ["x", "y"], "path": ["x.wav", "y.wav"], "split": ["train", "test"]})
    b = a[["split", "path", "clip_id"]]
    assert caching.table_fingerprint(a) == caching.table_fingerprint(b)
    c = a.assign(split=["train", "train"])
    assert caching.table_fingerprint(a) != caching.table_fingerprint(c)


def test_standardise_uses_train_statistics_ddof0_and_leaves_constant_features_unscaled():
    train = np.array([[1.0, 5.0], [3.0, 5.0]])        # mean (2, 5), std ddof0 (1, 0)
    test = np.array([[4.0, 7.0]])
    tr, te = standardise(train, test)
    np.testing.assert_allclose(tr, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(te, [[2.0, 2.0]])        # constant feature: centred, scale 1


def test_standardise_rejects_non_matrix_input():
    with pytest.raises(ValueError, match="2-d"):
        standardise(np.zeros(3))


def test_standardise_in_chunks_equals_one_pass():
    rng = np.random.default_rng(0)
    train, test = rng.normal(3.0, 2.0, (1000, 4)), rng.normal(3.0, 2.0, (10, 4))
    one = standardise(train, test, chunk_rows=10_000)
    chunked = standardise(train, test, chunk_rows=64)
    for a, b in zip(one, chunked):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(one[0].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(one[0].std(0), 1, atol=1e-4)
