"""Results registry: atomic records, tidy loading, paper-vs-run pivots, claims and verdicts."""
from __future__ import annotations

import json
import multiprocessing as mp
import os

import numpy as np
import pandas as pd
import pytest

from audiorepro import results as R


pytestmark = pytest.mark.usefixtures("home")   # every test writes into its own AUDIOREPRO_HOME (conftest)


def _rec(table="table3", metrics=None, row=None, model="tiny", profile="smoke", **params):
    if row is not None:
        params["paper_row"] = row
    return R.record("atgnn", table, metrics or {"mAP": 0.1}, params, dataset="synthetic",
                    scale="small", profile=profile, model=model)


# ------------------------------------------------------------------------- writing records
def test_record_holds_provenance_and_leaves_no_temp_files(home):
    path = R.record("atgnn", "table3", {"mAP": np.float32(0.25), "params": 27_190_000},
                    {"lr": 1e-3, "ks": (9, 18)}, dataset="synthetic", scale="small",
                    profile="smoke", model="pyr-s tiny", notes="hand-made", duration_s=1.5)
    assert path.parent == home / "results" / "records"
    rec = json.loads(path.read_text())
    assert rec["kind"] == "result" and rec["record_id"] == path.stem
    assert rec["metrics"] == {"mAP": pytest.approx(0.25), "params": 27_190_000.0}
    assert rec["params"] == {"lr": 1e-3, "ks": [9, 18]}
    assert set(rec["git"]) == {"revision", "dirty"} and rec["git"]["revision"]
    assert {"torch", "torchaudio", "numpy", "scikit-learn", "audiorepro"} <= set(rec["versions"])
    assert rec["machine"]["cpu_count"] == os.cpu_count()
    assert rec["machine"]["device"].split()[0] in ("cpu", "cuda", "mps")
    assert "hostname" not in json.dumps(rec["machine"]).lower()
    assert rec["timestamp"].endswith("+00:00") and rec["duration_s"] == 1.5
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no tmp file left behind


@pytest.mark.parametrize("metrics, needle", [
    ({"mAP": float("nan")}, "'mAP' is nan"),
    ({"mAP": "0.3"}, "'mAP' must be a number"),
    ({"paper_mAP": 0.335}, "paper numbers are never stored"),
    ({}, "non-empty"),
])
def test_record_rejects_bad_metrics(metrics, needle):
    with pytest.raises(R.RegistryError, match=needle):
        R.record("atgnn", "table3", metrics, {}, "synthetic", "small", "smoke")


def test_record_rejects_empty_profile():
    with pytest.raises(R.RegistryError, match="profile"):
        R.record("atgnn", "table3", {"mAP": 0.1}, {}, "synthetic", "small", "")


def test_record_rejects_unknown_profile_and_chapter(home):
    with pytest.raises(R.RegistryError, match="profile 'bok' is not one of"):
        R.record("atgnn", "table3", {"mAP": 0.1}, {}, "synthetic", "small", "bok")
    with pytest.raises(R.RegistryError, match="chapter 'atgn' .*'atgnn'.*'backbones'"):
        R.record("atgn", "table3", {"mAP": 0.1}, {}, "synthetic", "small", "smoke")
    assert not (home / "results" / "records").exists()           # nothing written
    R.record("backbones", "pretraining", {"mAP": 0.1}, {}, "synthetic", "small", "book")
    assert len(R.load_records("backbones")) == 1


def _writer(worker: int) -> None:
    for i in range(20):
        R.record("atgnn", "concurrency", {"value": worker * 100 + i}, {"worker": worker},
                 dataset="synthetic", scale="small", profile="smoke")


def test_concurrent_writers_never_corrupt_records(home):
    R.machine_info()  # resolve the device once in the parent (children inherit the cache)
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(w,)) for w in range(4)]
    for p in procs:
        p.start()
    while any(p.is_alive() for p in procs):  # readers never see a half-written record
        R.load_records("atgnn", "concurrency")
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    files = sorted((home / "results" / "records").iterdir())
    assert len(files) == 80 and all(f.suffix == ".json" for f in files)
    df = R.load_records("atgnn", "concurrency")
    assert len(df) == 80
    assert sorted(df["value"].astype(int)) == sorted(w * 100 + i for w in range(4) for i in range(20))


# ------------------------------------------------------------------------- loading
def test_load_records_is_tidy_and_latest_wins_per_key():
    _rec(metrics={"mAP": 0.10, "AUC": 0.60}, lr=0.1)
    _rec(metrics={"mAP": 0.20}, lr=0.1)           # same key as the first mAP: newer
    _rec(metrics={"mAP": 0.30}, lr=0.01)          # different parameters: its own key
    df = R.load_records("atgnn")
    assert len(df) == 4 and set(df["metric"]) == {"mAP", "AUC"}
    assert "param.lr" in df.columns and set(df["param.lr"]) == {0.1, 0.01}
    latest = R.load_records("atgnn", latest=True)
    got = sorted(zip(latest["metric"], latest["param.lr"], latest["value"]))
    assert got == [("AUC", 0.1, 0.6), ("mAP", 0.01, 0.3), ("mAP", 0.1, 0.2)]
    assert R.load_records("atgnn", "other").empty
    assert R.load_records("bow").empty


def test_a_corrupt_record_is_named_and_skipped(home):
    # issue #16: one bad file used to stop every reader; now it is skipped with a warning
    _rec()
    bad = home / "results" / "records" / "broken.json"
    bad.write_text("{not json")
    with pytest.warns(R.CorruptRecordWarning, match="broken.json"):
        df = R.load_records()
    assert len(df) == 1
    assert R.corrupt_records()["file"].tolist() == ["broken.json"]


# ------------------------------------------------------------------------- paper numbers
def test_paper_numbers_keep_table_row_column_unit():
    pn = R.paper_numbers("atgnn")
    hit = pn[(pn.table == "table3") & (pn.row == "ATGNN-pyr-s") & (pn.column == "mAP")]
    assert hit["value"].tolist() == [0.583] and hit["unit"].tolist() == ["fraction"]
    th = R.paper_numbers("thgcl")
    assert th[(th.row == "THGCL") & (th.column == "mAP")]["unit"].item() == "%"
    for paper in R.PAPERS:
        assert not R.paper_numbers(paper).empty


@pytest.mark.parametrize("paper", R.PAPERS)
def test_every_claim_test_points_at_real_rows(paper):
    tables = R._paper_yaml(paper)["tables"]
    for claim in R.claims(paper):
        test = claim["test"]
        assert test["kind"] in ("comparison", "close", "threshold", "spread", "manual"), claim["id"]
        if test["kind"] == "manual" and "table" not in test:
            continue  # decided by a notebook from its own evidence
        tab = tables[test["table"]]
        assert test["metric"] in tab["columns"], claim["id"]
        rows = {"comparison": [test.get("better"), *test.get("worse", [])],
                "close": [test.get("row")], "spread": test.get("rows", [])}.get(test["kind"], [])
        # tables with printed numbers: the rows must exist there, unless the claim says it
        # compares rows only this run has (a model the paper did not test, e.g. CREPE)
        # paper_rows: the paper's row behind a row of this run (a row of the claim, mapped to a
        # row the paper printed)
        named = test.get("paper_rows", {})
        assert set(named) <= set(rows) and set(named.values()) <= set(tab["rows"]), claim["id"]
        if tab["rows"] and not test.get("rows_of_this_run"):
            printed = {named.get(r, r) for r in rows}
            assert printed <= set(tab["rows"]), (claim["id"], printed - set(tab["rows"]))
        if test["kind"] == "close":
            assert test["metric"] in tab["rows"][test["row"]], claim["id"]


def test_paper_vs_run_pivot_on_hand_made_records():
    _rec(row="ATGNN-pyr-s", model="pyr-s C/4", metrics={"mAP": 0.2})
    _rec(row="ATGNN-pyr-s", model="pyr-s C/4", metrics={"mAP": 0.25})  # newer: wins
    _rec(row="ATGNN-pyr-s (-MLG)", model="pyr-s C/4 no MLG", metrics={"params": 27_190_000})
    _rec(model="my-extra", metrics={"mAP": 0.125})                      # row the paper lacks
    _rec(row="ATGNN-pyr-s", metrics={"mAP": 0.9}, profile="book")       # other profile

    df = R.paper_vs_run("atgnn", "table3", profile="smoke").set_index(["row", "metric"])
    assert list(df.columns) == ["unit", "paper", "this run", "seeds", "dataset", "scale", "profile",
                                "model"]
    assert df.loc[("ATGNN-pyr-s", "mAP"), "paper"] == "0.583"
    assert df.loc[("ATGNN-pyr-s", "mAP"), "this run"] == "0.250"
    assert df.loc[("ATGNN-pyr-s", "mAP"), "model"] == "pyr-s C/4"
    assert df.loc[("ATGNN-pyr-s (-MLG)", "params"), "this run"] == "27.19"   # counts -> M
    assert df.loc[("ATGNN-pyr-s (-MLG)", "params"), "paper"] == "27.30"
    assert df.loc[("PSLA", "mAP"), "this run"] == ""                       # not measured
    assert df.loc[("my-extra", "mAP"), "paper"] == ""                      # paper has no number
    assert df.loc[("my-extra", "mAP"), "this run"] == "0.125"
    caption = df.attrs["caption"]
    assert "profile smoke" in caption and "pyr-s C/4" in caption and "synthetic" in caption
    assert "FSD50K" in caption

    html = R.show_paper_vs_run("atgnn", "table3", profile="smoke").to_html()
    assert "<caption>" in html and "pyr-s C/4" in html

    num = R.paper_vs_run("atgnn", "table3", profile="book", formatted=False).set_index(["row", "metric"])
    assert num.loc[("ATGNN-pyr-s", "mAP"), "this run"] == pytest.approx(0.9)
    assert np.isnan(num.loc[("ATGNN-pyr-s (-MLG)", "params"), "this run"])


def test_paper_vs_run_averages_the_seeds_of_the_latest_run_group_only():
    old_group, new_group = R.new_run_group(), R.new_run_group()
    for seed, value in enumerate([0.9, 0.8, 0.7]):                     # superseded run
        _rec(row="ATGNN-pyr-s", metrics={"mAP": value}, seed=seed, run_group=old_group)
    for seed, value in enumerate([0.30, 0.40, 0.65]):                  # the latest run
        _rec(row="ATGNN-pyr-s", metrics={"mAP": value}, seed=seed, run_group=new_group)
    _rec(row="ATGNN-pyr-s", metrics={"mAP": 0.1}, seed=1, run_group=old_group)  # late write, old run
    _rec(row="ATGNN-pyr-s", metrics={"mAP": 0.5}, seed=2, run_group=new_group)  # seed 2 rerun: wins

    num = R.paper_vs_run("atgnn", "table3", profile="smoke", formatted=False).set_index(["row", "metric"])
    # the newest record belongs to new_group: mean of its newest record per seed (0.30, 0.40, 0.50)
    assert num.loc[("ATGNN-pyr-s", "mAP"), "this run"] == pytest.approx(0.40)
    assert num.loc[("ATGNN-pyr-s", "mAP"), "seeds"] == 3
    assert num.loc[("PSLA", "mAP"), "seeds"] == 0                      # not measured


def _execution(monkeypatch, notebook, run_id, finish_previous=True):
    """Records written from now on carry this book execution (as the executor sets it); the
    execution that was running before is marked finished (as the executor marks it)."""
    from audiorepro.results.records import (EXECUTION_ENV, NOTEBOOK_ENV, execution_info,
                                            mark_execution_complete)
    before = execution_info()
    if before and finish_previous:
        mark_execution_complete(before)
    monkeypatch.setenv(NOTEBOOK_ENV, notebook)
    monkeypatch.setenv(EXECUTION_ENV, run_id)


def _outside_the_executor(monkeypatch):
    from audiorepro.results.records import EXECUTION_ENV, NOTEBOOK_ENV, execution_info, mark_execution_complete
    if execution_info():
        mark_execution_complete(execution_info())
    monkeypatch.delenv(NOTEBOOK_ENV, raising=False)
    monkeypatch.delenv(EXECUTION_ENV, raising=False)


def test_a_row_a_newer_execution_of_its_notebook_no_longer_writes_is_gone(monkeypatch):
    _execution(monkeypatch, "atgnn/03_table3", "run-1")           # old grid: three rows
    for row in ("ATGNN-pyr-s", "ATGNN-pyr-s (-MLG)", "PSLA"):
        _rec(row=row, metrics={"mAP": 0.5})
    _execution(monkeypatch, "atgnn/01_cost", "run-2")             # another notebook, same table
    _rec(row="ATGNN-iso", metrics={"params": 1e6})
    _execution(monkeypatch, "atgnn/03_table3", "run-3")           # new grid: PSLA dropped
    for row in ("ATGNN-pyr-s", "ATGNN-pyr-s (-MLG)"):
        _rec(row=row, metrics={"mAP": 0.3})
    # while run-3 runs, its own tables already see its rows only
    assert "PSLA" not in set(R.load_records("atgnn", "table3", current=True)["row"])
    _outside_the_executor(monkeypatch)
    _rec(row="my-extra", metrics={"mAP": 0.125})

    every = R.load_records("atgnn", "table3")
    assert set(every["notebook"]) == {"atgnn/03_table3", "atgnn/01_cost", ""}
    current = R.load_records("atgnn", "table3", current=True)
    assert "PSLA" not in set(current["row"]) and len(current) == len(every) - 3
    num = R.paper_vs_run("atgnn", "table3", formatted=False).set_index(["row", "metric"])
    assert np.isnan(num.loc[("PSLA", "mAP"), "this run"])                # not measured, not 0.5
    assert num.loc[("ATGNN-pyr-s", "mAP"), "this run"] == pytest.approx(0.3)
    assert num.loc[("ATGNN-iso", "params"), "this run"] == pytest.approx(1.0)   # other notebook kept
    assert num.loc[("my-extra", "mAP"), "this run"] == pytest.approx(0.125)      # no execution: kept


def test_superseded_is_per_notebook_and_profile_and_needs_a_finished_execution(monkeypatch):
    _execution(monkeypatch, "atgnn/03_table3", "run-1")
    _rec(row="PSLA", metrics={"mAP": 0.5}, profile="book")
    _execution(monkeypatch, "atgnn/03_table3 [paper-fsd50k]", "run-2")   # a variant: its own
    _rec(row="ATGNN-pyr-s", metrics={"mAP": 0.4}, profile="book")
    _execution(monkeypatch, "atgnn/03_table3", "run-3")
    _rec(row="ATGNN-pyr-s", metrics={"mAP": 0.3}, profile="smoke")        # another profile
    _outside_the_executor(monkeypatch)
    current = R.load_records("atgnn", "table3", current=True)
    assert sorted(current["row"]) == ["ATGNN-pyr-s", "ATGNN-pyr-s", "PSLA"]

    # a newer execution that failed (never marked finished) supersedes nothing
    _execution(monkeypatch, "atgnn/03_table3", "run-4")
    _rec(row="ATGNN-pyr-s", metrics={"mAP": 0.3}, profile="book")
    from audiorepro.results.records import EXECUTION_ENV, NOTEBOOK_ENV
    monkeypatch.delenv(NOTEBOOK_ENV)
    monkeypatch.delenv(EXECUTION_ENV)
    assert "PSLA" in set(R.load_records("atgnn", "table3", current=True)["row"])
    # a finished one does, though it ran on other data and scale
    _execution(monkeypatch, "atgnn/03_table3", "run-5")
    R.record("atgnn", "table3", {"mAP": 0.2}, {"paper_row": "ATGNN-pyr-s"}, dataset="other world",
             scale="large", profile="book", model="tiny")
    _outside_the_executor(monkeypatch)
    current = R.load_records("atgnn", "table3", current=True)
    book = current[current["profile"] == "book"]
    assert sorted(book["row"]) == ["ATGNN-pyr-s", "ATGNN-pyr-s"]            # run-2's variant + run-5
    assert set(book["dataset"]) == {"synthetic", "other world"} and 0.3 not in set(book["value"])


def test_percent_columns_convert_fractions():
    R.record("thgcl", "table2", {"mAP": 0.4321, "AUC": 0.9}, {"paper_row": "both Hawkes"},
             "synthetic", "small", "smoke", model="thgn-small")
    df = R.paper_vs_run("thgcl", "table2").set_index(["row", "metric"])
    assert df.loc[("both Hawkes", "mAP"), "this run"] == "43.2"  # percent, 1 decimal as printed
    assert df.loc[("both Hawkes", "AUC"), "this run"] == "0.900"
    with pytest.raises(R.RegistryError, match="no table 'table9'"):
        R.paper_vs_run("thgcl", "table9")


def test_paper_numbers_never_appear_in_records(home):
    _rec(row="ATGNN-pyr-s", metrics={"mAP": 0.25})
    _rec(row="ATGNN-pyr-s (-MLG)", metrics={"mAP": 0.21})
    R.paper_vs_run("atgnn", "table3")
    R.evaluate_claim("atgnn", "mlg-helps-fsd50k", register=True)
    R.evaluate_claim("atgnn", "headline-fsd50k", register=True)
    paper_values = set(R.paper_numbers("atgnn")["value"])
    for path in (home / "results" / "records").glob("*.json"):
        rec = json.loads(path.read_text())
        assert "paper_value" not in rec
        if rec["kind"] == "result":
            assert not set(rec["metrics"].values()) & paper_values, path.name


# ------------------------------------------------------------------------- claims
def test_claim_without_record_is_not_yet_measured():
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.verdict == "not yet measured" and "ATGNN-pyr-s" in v.evidence
    table = R.claims_table()
    assert set(table["verdict"]) == {"not yet measured"}
    assert len(table) == sum(len(R.claims(p)) for p in R.PAPERS)
    assert set(table["paper"]) == set(R.PAPERS)


def test_invalid_verdict_and_unknown_claim_raise():
    with pytest.raises(R.RegistryError, match="'probably' .* not one of"):
        R.register_verdict("atgnn", "mlg-helps-fsd50k", "probably", "x", "synthetic", "small", "smoke")
    with pytest.raises(R.RegistryError, match="no claim 'made-up'"):
        R.register_verdict("atgnn", "made-up", "reproduced", "x", "synthetic", "small", "smoke")


def _hits(value, n=400):
    """Per-item 0/1 contributions whose mean is ``value``: the first value * n items are 1, so
    two rows share their hits (a paired comparison); the metric is their mean."""
    ids = [f"clip{i:03d}" for i in range(n)]
    return {"mAP": R.value_items(ids, (np.arange(n) < round(value * n)).astype(float))}


# Old semantics (the bug of issue #22): a point-estimate difference decided the verdict, so
# 0.21 vs. 0.21 was "not reproduced" and any 0.001 was "reproduced". Now the 95 % interval of
# the paired difference decides: 16 of 400 items differing -> reproduced / not reproduced,
# identical rows -> inconclusive.
@pytest.mark.parametrize("with_mlg, without, expected", [
    (0.25, 0.21, "reproduced"), (0.19, 0.23, "not reproduced"), (0.21, 0.21, "inconclusive")])
def test_comparison_claim_from_records(with_mlg, without, expected):
    R.record("atgnn", "table3", {"mAP": with_mlg}, {"paper_row": "ATGNN-pyr-s"}, "synthetic",
             "small", "smoke", model="tiny", items=_hits(with_mlg))
    R.record("atgnn", "table3", {"mAP": without}, {"paper_row": "ATGNN-pyr-s (-MLG)"},
             "synthetic", "small", "smoke", model="tiny", items=_hits(without))
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k", register=True)
    assert v.verdict == expected
    assert v.values == {"ATGNN-pyr-s": with_mlg, "ATGNN-pyr-s (-MLG)": without}
    assert v.n_items == 400 and v.n_seeds == 1 and v.paired
    assert v.effect == pytest.approx(with_mlg - without)
    assert v.interval[0] <= v.effect <= v.interval[1]
    assert (v.dataset, v.scale, v.profile) == ("synthetic", "small", "smoke")
    row = R.claims_table().set_index(["paper", "claim_id"]).loc[("atgnn", "mlg-helps-fsd50k")]
    assert row["verdict"] == expected and f"{with_mlg:.4g}" in row["evidence"]
    assert (row["lo"], row["hi"]) == pytest.approx(v.interval) and row["n_items"] == 400


def test_comparison_without_items_is_inconclusive_not_a_coin_toss():
    _rec(row="ATGNN-pyr-s", metrics={"mAP": 0.25})
    _rec(row="ATGNN-pyr-s (-MLG)", metrics={"mAP": 0.21})
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.verdict == "inconclusive" and v.interval is None
    assert "no per-item outputs" in v.evidence and v.effect == pytest.approx(0.04)


def test_close_and_spread_claims():
    _rec("table2", row="ATGNN-pyr-s (-MLG)", metrics={"params": 27_320_000})  # prints as 27.3 M
    assert R.evaluate_claim("atgnn", "pyr-s-no-mlg-params").verdict == "reproduced"
    _rec("table2", row="ATGNN-pyr-s (-MLG)", metrics={"params": 27_190_000})  # prints as 27.2 M
    assert R.evaluate_claim("atgnn", "pyr-s-no-mlg-params").verdict == "not reproduced"
    _rec("table2", row="ATGNN-pyr-s (-MLG)", metrics={"params": 30_000_000})  # 9.9 % off
    assert R.evaluate_claim("atgnn", "pyr-s-no-mlg-params").verdict == "not reproduced"
    v = R.evaluate_claim("atgnn", "pyr-s-no-mlg-params")
    assert v.interval == (30_000_000, 30_000_000) and v.n_items is None   # a count: exact

    def k_row(k, m):   # per-item contributions of 2000 items, shared hits: spread m - 0.5
        R.record("atgnn", "table1", {"mAP": m}, {"paper_row": f"k={k}"}, "synthetic", "small",
                 "smoke", items=_hits(m, 2000))
    for k, m in zip((9, 12, 15, 18), (0.500, 0.5015, 0.5005, 0.501)):
        k_row(k, m)
    assert R.evaluate_claim("atgnn", "k-insensitive").verdict == "not yet measured"  # k=20 missing
    k_row(20, 0.5015)
    v = R.evaluate_claim("atgnn", "k-insensitive")
    assert v.verdict == "reproduced" and "spread 0.0015" in v.evidence
    assert v.interval[1] < 0.005
    k_row(20, 0.52)
    v = R.evaluate_claim("atgnn", "k-insensitive")
    assert v.verdict == "not reproduced" and v.interval[0] > 0.005
    # without per-item outputs: no interval, so no decision (it used to be a point comparison)
    _rec("table1", row="k=20", metrics={"mAP": 0.52})
    assert R.evaluate_claim("atgnn", "k-insensitive").verdict == "inconclusive"


def test_claims_table_shows_latest_verdict_and_filters_profile():
    R.register_verdict("bow", "masking-helps", "not reproduced", "run 1", "synthetic", "small", "smoke")
    R.register_verdict("bow", "masking-helps", "reproduced", "run 2", "synthetic", "medium", "book")
    t = R.claims_table().set_index(["paper", "claim_id"])
    assert t.loc[("bow", "masking-helps"), "verdict"] == "reproduced"
    assert t.loc[("bow", "masking-helps"), "scale"] == "medium"
    t = R.claims_table(profile="smoke").set_index(["paper", "claim_id"])
    assert t.loc[("bow", "masking-helps"), "evidence"] == "run 1"
    assert t.loc[("bow", "d256-best"), "verdict"] == "not yet measured"


def test_chapter_verdicts_show_registered_verdict_of_the_profile_only():
    R.register_verdict("bow", "masking-helps", "reproduced", "p=35%: 0.3 vs 0.2", "synthetic", "small",
                       "book")
    book = R.chapter_verdicts("bow", profile="book").data
    assert list(book.index) == [c["id"] for c in R.claims("bow")]
    assert book.loc["masking-helps", "verdict"] == "reproduced"
    assert book.loc["masking-helps", "evidence"] == "p=35%: 0.3 vs 0.2"
    others = book.drop(index="masking-helps")
    assert set(others["verdict"]) == {"not yet measured"}
    smoke = R.chapter_verdicts("bow", profile="smoke").data
    assert smoke.loc["masking-helps", "verdict"] == "not yet measured"
    assert "color: #2e7d32" in R.chapter_verdicts("bow", profile="book").to_html()
    with pytest.raises(KeyError, match="unknown paper"):
        R.chapter_verdicts("bows")


def test_claim_evidence_names_the_model_that_ran_a_paper_row():
    _rec(row="ATGNN-pyr-s", model="pyr-tiny (C/4)", metrics={"mAP": 0.2})
    _rec(row="ATGNN-pyr-s (-MLG)", model="ATGNN-pyr-s (-MLG)", metrics={"mAP": 0.1})
    v = R.evaluate_claim("atgnn", "mlg-helps-fsd50k")
    assert v.verdict == "inconclusive"            # no per-item outputs: no interval
    assert v.evidence.endswith("; rows as run: ATGNN-pyr-s = pyr-tiny (C/4)")
