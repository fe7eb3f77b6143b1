"""``paper-check`` (audiorepro.book.paper_check): which notebooks run and in which order, the
override keys the runner reads (``expect_records``, ``reads_records``), the miniatures it prepares,
its records checks and its summary table. Most tests replace the notebook execution by a function
that writes what a notebook would; one runs real kernels."""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from audiorepro import book as B
from audiorepro.book import paper_check as PC

FIXTURE = Path(__file__).parent / "fixtures" / "book"

#: notebook stem -> (parameters cell, code cell, .papercheck.yaml); the reader comes first in the
#: table of contents, the runner must still run it last
NOTEBOOKS = {
    "00_reader": ('only_profile = ""', "print(only_profile)",
                  {"only_profile": "paper", "reads_records": True}),
    "01_writer": ('profile = "smoke"\nclip_table = ""\nk = 3',
                  "from audiorepro import results\n"
                  "results.record('backbones', 'demo', {'m': k / 10}, {'clip_table': clip_table},\n"
                  "               dataset='esc50 miniature', scale='tiny', profile=profile)",
                  {"clip_table": "data/miniature_tables/esc50.csv", "k": 2}),
    "02_quiet": ('profile = "smoke"\nckpt = ""', "print(ckpt)",
                 {"ckpt": "checkpoints/Cnn10_mAP=0.380.pth", "expect_records": False}),
    "03_silent": ('profile = "smoke"', "print(profile)", {}),
}


def _notebook(path: Path, params: str, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), cell, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, str(path))


@pytest.fixture()
def checked(tmp_path, monkeypatch) -> B.Layout:
    """A mini book whose chapter ``demo`` holds the notebooks of :data:`NOTEBOOKS`, each with a
    ``.paper.yaml`` and a ``.papercheck.yaml``; the check's private home is ``tmp_path/home``."""
    root = tmp_path / "mini"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("_build", "_executed", "_static"))
    demo = root / "book" / "demo"
    (demo / "01_demo.ipynb").unlink()
    for f in (demo / "params").iterdir():
        f.unlink()
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    toc["parts"][0]["chapters"][0]["sections"] = [{"file": f"book/demo/{s}"} for s in NOTEBOOKS]
    (root / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    for stem, (params, body, override) in NOTEBOOKS.items():
        _notebook(demo / f"{stem}.ipynb", params, body)
        paper = {"profile": "paper"} if params.startswith("profile") else {"only_profile": "paper"}
        (demo / "params" / f"{stem}.paper.yaml").write_text(yaml.safe_dump(paper))
        (demo / "params" / f"{stem}.papercheck.yaml").write_text(yaml.safe_dump(override))
    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path / "home"))
    return B.Layout(root)


@pytest.fixture()
def fake_run(monkeypatch):
    """Replace preparation and execution: every call is logged; ``01_writer`` records like the
    notebook would (in this process, into the check's home), always naming the ESC-50 table."""
    calls: dict[str, list] = {"jobs": [], "prepare": []}

    def run_job(job, lib_hash=None):
        calls["jobs"].append((job.notebook.stem, dict(job.parameters)))
        if job.notebook.stem == "01_writer":
            from audiorepro import results
            results.record("backbones", "demo", {"m": job.parameters["k"] / 10},
                           {"clip_table": "data/miniature_tables/esc50.csv"},
                           dataset="esc50 miniature", scale="tiny", profile="paper")
        return B.Outcome(job, "ran", 0.25)

    def prepare(home, checkpoints=None, miniatures=None, log=print):
        calls["prepare"].append((home, checkpoints, miniatures))
        return 0.5

    monkeypatch.setattr(B, "run_job", run_job)
    monkeypatch.setattr(PC, "prepare", prepare)
    return calls


def test_readers_run_last_runner_keys_are_removed_and_silent_writers_fail(checked, fake_run, tmp_path):
    lines: list[str] = []
    results = PC.run(checked, log=lines.append)
    order = [stem for stem, _ in fake_run["jobs"]]
    assert order == ["01_writer", "02_quiet", "03_silent", "00_reader"]   # toc order, reader last
    params = dict(fake_run["jobs"])
    assert params["00_reader"] == {"only_profile": "paper"}                # reads_records removed
    assert params["02_quiet"] == {"profile": "paper", "ckpt": "checkpoints/Cnn10_mAP=0.380.pth"}
    assert params["01_writer"] == {"profile": "paper", "clip_table": "data/miniature_tables/esc50.csv",
                                   "k": 2}
    # only what the overrides point at is prepared, in the private home
    assert fake_run["prepare"] == [((tmp_path / "home").resolve(), {"Cnn10_mAP=0.380.pth"}, {"esc50"})]

    by_name = {r.notebook: r for r in results}
    assert list(by_name) == ["demo/01_writer.ipynb", "demo/02_quiet.ipynb", "demo/03_silent.ipynb",
                             "demo/00_reader.ipynb"]
    assert by_name["demo/01_writer.ipynb"].problems == [] and by_name["demo/01_writer.ipynb"].records == 1
    assert by_name["demo/02_quiet.ipynb"].problems == []
    assert by_name["demo/02_quiet.ipynb"].note == "records nothing (expect_records: false)"
    silent = by_name["demo/03_silent.ipynb"].problems
    assert len(silent) == 1 and silent[0].startswith("wrote no paper-profile record")
    reader = by_name["demo/00_reader.ipynb"]
    assert reader.problems == [] and reader.note == (
        "read 1 paper-profile record(s) and 0 verdict(s) of the home")
    table = lines[-1].splitlines()
    assert next(ln for ln in table if ln.startswith("demo/03_silent")).split()[1] == "FAILED"
    assert table[-1].split()[:6] == ["total:", "3", "ok,", "1", "failed", "1.5"]  # 0.5 + 4 x 0.25


def test_a_record_that_does_not_name_its_data_fails(checked, fake_run):
    (checked.book / "demo" / "params" / "01_writer.papercheck.yaml").write_text(
        "clip_table: data/miniature_tables/gtzan.csv\nk: 2\n")            # it records ESC-50
    results = {r.notebook: r for r in PC.run(checked, only="demo/01", log=lambda *_: None)}
    assert list(results) == ["demo/01_writer.ipynb"]
    (problem,) = results["demo/01_writer.ipynb"].problems
    assert "not the data it was pointed at (data/miniature_tables/gtzan.csv)" in problem


def test_only_selects_a_chapter_prefix_or_one_notebook(checked, fake_run):
    PC.run(checked, only="demo/", log=lambda *_: None)
    assert len(fake_run["jobs"]) == 4
    fake_run["jobs"].clear()
    PC.run(checked, only="demo/02", log=lambda *_: None)
    assert [s for s, _ in fake_run["jobs"]] == ["02_quiet"]
    assert fake_run["prepare"][-1][1:] == ({"Cnn10_mAP=0.380.pth"}, set())   # no miniature
    with pytest.raises(B.BookError, match="matching 'atgnn/'"):
        PC.run(checked, only="atgnn/", log=lambda *_: None)


def test_a_runner_key_that_is_not_a_boolean_is_named_with_its_file(checked, fake_run):
    bad = checked.book / "demo" / "params" / "02_quiet.papercheck.yaml"
    bad.write_text("expect_records: 'no'\n")
    with pytest.raises(B.BookError, match=r"02_quiet.papercheck.yaml: expect_records must be true or false"):
        PC.run(checked, log=lambda *_: None)
    assert fake_run["jobs"] == []                          # stopped before anything ran


def test_split_override_reader_implies_no_records():
    params, opts = PC.split_override({"k": 1, "reads_records": True}, Path("x.yaml"))
    assert params == {"k": 1} and opts.reads_records and not opts.expect_records
    params, opts = PC.split_override({"k": 1}, Path("x.yaml"))
    assert params == {"k": 1} and opts.expect_records and not opts.reads_records


def test_miniatures_named_reads_pointers_anywhere_in_the_parameters():
    given = {"clip_table": "data/miniature_tables/fsd50k.csv",
             "tasks": {"a": ["data/miniatures/esc50/meta/esc50.csv"], "b": "gtzan"}, "k": 3}
    assert PC.miniatures_named(given, "f.yaml") == {"fsd50k", "esc50"}
    assert PC.miniatures_named({"data_root": "data/miniatures"}, "f.yaml") is None   # all of them
    assert PC.miniatures_named({"k": 3}, "f.yaml") == set()
    with pytest.raises(B.BookError, match=r"f.yaml: 'data/miniatures/esc51' points at no miniature"):
        PC.miniatures_named({"data_root": "data/miniatures/esc51"}, "f.yaml")


def test_summary_table_totals():
    results = [PC.CheckResult("a/01.ipynb", "ran", 1.5, cpu_s=1.25, records=2),
               PC.CheckResult("a/02.ipynb", "failed", 2.0, ["raised: boom"], cpu_s=None),
               PC.CheckResult("summary/claims.ipynb", "ran", 3.0, cpu_s=0.75, note="read 2")]
    lines = PC.summary_table(results, prepare_s=0.5).splitlines()
    assert lines[0].split() == ["notebook", "status", "wall", "s", "cpu", "s", "records", "note"]
    rows = {ln.split()[0]: ln.split() for ln in lines if ln.startswith(("a/", "summary/"))}
    assert rows["a/01.ipynb"][1:] == ["ok", "1.5", "1.2", "2"]
    assert rows["a/02.ipynb"][1:] == ["FAILED", "2.0", "-", "0"]
    assert rows["summary/claims.ipynb"][1:] == ["ok", "3.0", "0.8", "0", "read", "2"]
    assert lines[-1].split() == ["total:", "2", "ok,", "1", "failed", "7.0", "2.0", "2"]


def test_prepare_builds_only_the_named_miniatures_and_checkpoints(tmp_path):
    home = tmp_path / "home"
    PC.prepare(home, {"Cnn10_mAP=0.380.pth"}, {"cremad"}, log=lambda *_: None)
    assert sorted(p.name for p in (home / "data" / "miniatures").iterdir()
                  if not p.name.startswith(".")) == ["cremad"]
    assert (home / "data" / "miniature_tables" / "cremad.csv").is_file()
    assert sorted(p.name for p in (home / "checkpoints").iterdir()) == ["Cnn10_mAP=0.380.pth"]


def test_real_kernels_inherit_the_home_record_and_the_reader_counts_them(checked, tmp_path):
    for stem in ("02_quiet", "03_silent"):
        for f in (checked.book / "demo" / "params").glob(f"{stem}.*"):
            f.unlink()
    (checked.book / "demo" / "params" / "01_writer.papercheck.yaml").write_text("k: 4\n")
    results = PC.run(checked, log=lambda *_: None)
    assert [r.notebook for r in results] == ["demo/01_writer.ipynb", "demo/00_reader.ipynb"]
    assert all(r.problems == [] for r in results), [r.problems for r in results]
    assert results[0].records == 1
    assert results[1].note.startswith("read 1 paper-profile record(s)")
    from audiorepro import results as R
    recs = R.load_records(chapter="backbones", table="demo")
    assert recs["value"].tolist() == [0.4] and recs["profile"].tolist() == ["paper"]
    if results[0].cpu_s is not None:                       # POSIX: the kernel's CPU time
        assert results[0].cpu_s > 0


def test_command_exits_non_zero_naming_each_failure(checked, fake_run, capsys):
    assert B.main(["--root", str(checked.root), "paper-check", "--only", "demo/03"]) == 1
    captured = capsys.readouterr()
    assert "paper-check: 0 passed, 1 failed" in captured.out
    assert "demo/03_silent.ipynb:\n    - wrote no paper-profile record" in captured.err
    assert B.main(["--root", str(checked.root), "paper-check", "--only", "demo/01"]) == 0


def test_kernel_cpu_counts_the_cpu_time_of_a_child_process():
    import subprocess
    import sys

    with PC.KernelCPU(every=0.05) as cpu:
        subprocess.run([sys.executable, "-c", "import time\nt = time.process_time()\n"
                        "while time.process_time() - t < 0.6: pass"], check=True)
    assert cpu.seconds is not None and cpu.seconds >= 0.6      # the child burnt 0.6 s of CPU
    with PC.KernelCPU(every=0.05) as idle:
        pass
    assert idle.seconds is None or idle.seconds < 0.05        # no child, no CPU
