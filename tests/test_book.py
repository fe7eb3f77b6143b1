"""Book pipeline: conventions check, parameter validation, papermill execution with done markers,
generated table of contents, Jupyter Book build of a mini book (tests/fixtures/book) with local
MathJax. Parameter guards: tests/test_book_parameters.py; commands shown to readers:
tests/test_book_commands.py."""
from __future__ import annotations

import importlib.util
import json
import os
import runpy
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

from audiorepro import book as B

FIXTURE = Path(__file__).parent / "fixtures" / "book"
REPO = Path(__file__).resolve().parents[1]
GUARD_TOOL = runpy.run_path(str(REPO / "tools" / "add_parameter_guard.py"))


@pytest.fixture()
def mini(tmp_path, monkeypatch) -> B.Layout:
    """A fresh copy of the mini book (index, one chapter, one notebook with a book variant), its
    notebook given the parameter guard by tools/add_parameter_guard.py (k > 0).

    The library hash is pinned: other work on lib/ during a test must not make copies stale
    (that dependence is tested by test_job_hash_tracks_notebook_and_parameters).
    """
    monkeypatch.setattr(B, "library_hash", lambda: "pinned-library-hash")
    root = tmp_path / "mini"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("_build", "_executed", "_static"))
    GUARD_TOOL["guard_notebook"](root / "book" / "demo" / "01_demo.ipynb", {"positive": ("k",)},
                                 log=lambda *_: None)
    return B.Layout(root)


def _demo(layout: B.Layout) -> Path:
    return layout.book / "demo" / "01_demo.ipynb"


def _edit(path: Path, fn) -> None:
    nb = nbformat.read(str(path), as_version=4)
    fn(nb)
    nbformat.write(nb, str(path))


def _add_notebook(layout: B.Layout, name: str, source: str) -> Path:
    nb = nbformat.read(str(_demo(layout)), as_version=4)
    nb.cells[-1].source = source
    path = layout.book / "demo" / name
    nbformat.write(nb, str(path))
    toc = layout.toc.read_text().rstrip() + f"\n          - file: book/demo/{path.stem}\n"
    layout.toc.write_text(toc)
    return path


def _fake_mathjax(layout: B.Layout) -> None:
    (layout.mathjax_dir).mkdir(parents=True, exist_ok=True)
    (layout.mathjax_dir / B.MATHJAX_FILE).write_text("/* local MathJax stand-in for tests */\n")


# ------------------------------------------------------------------------- check & parameters
def test_fixture_book_passes_check(mini):
    assert B.check(mini) == [] and B.guard_warnings(mini) == []
    assert B.toc_docnames(mini) == ["book/index", "book/demo/index", "book/demo/01_demo"]


def test_check_reports_each_broken_convention(mini):
    def spoil(nb):
        nb.metadata["kernelspec"]["name"] = "ir"
        nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="x")]
        nb.cells[2].metadata["tags"] = ["parameters"]
    _edit(_demo(mini), spoil)
    shutil.copy(_demo(mini), mini.book / "demo" / "02_orphan.ipynb")
    (mini.book / "demo" / "params" / "03_missing.book.yaml").write_text("k: 1\n")
    problems = "\n".join(B.check(mini))
    assert "01_demo.ipynb: 2 cells tagged 'parameters'" in problems
    assert "kernelspec name 'ir'" in problems
    assert "outputs committed in cells [2]" in problems
    assert "02_orphan.ipynb: not listed in _toc.yml" in problems
    assert "03_missing.book.yaml: no notebook 03_missing.ipynb" in problems


def test_check_reports_missing_toc_file(mini):
    mini.toc.write_text(mini.toc.read_text() + "          - file: book/demo/99_gone\n")
    assert any("'book/demo/99_gone' has no file" in p for p in B.check(mini))


def test_unknown_parameter_is_an_error_naming_it_and_the_notebook(mini):
    pfile = mini.book / "demo" / "params" / "01_demo.book.yaml"
    pfile.write_text("k: 12\nepochz: 3\n")
    with pytest.raises(B.ParameterError) as err:
        B.plan(mini, "book")
    msg = str(err.value)
    assert "['epochz']" in msg and "01_demo.ipynb" in msg and "01_demo.book.yaml" in msg
    assert any("epochz" in p for p in B.check(mini))


@pytest.mark.parametrize("text, expected", [
    ("k: 1.5\nprofile: book\n", "parameter 'k' = 1.5 is a float, but its default 3 is an int"),
    ("k: '12'\nprofile: book\n", "parameter 'k' = '12' is a string, but its default 3 is an int"),
    ("k: 0\nprofile: book\n", "parameter 'k' = 0 is out of range: it must be > 0"),
])
def test_executor_rejects_wrong_type_and_range_before_running(mini, text, expected):
    (mini.book / "demo" / "params" / "01_demo.book-big.yaml").write_text(text)
    with pytest.raises(B.ParameterError, match="01_demo.book-big.yaml") as err:
        B.execute(mini, "book", log=lambda *_: None)
    assert expected in str(err.value)
    assert not mini.executed.exists()                     # nothing ran, not even the valid job
    assert any(expected in p for p in B.check(mini))
    rc = B.main(["--root", str(mini.root), "execute", "--profile", "book"])
    assert rc == 1


def test_plan_finds_profile_files_variants_and_injects_profile(mini):
    jobs = {j.variant: j for j in B.plan(mini, "book")}
    assert set(jobs) == {None, "big"}
    assert jobs[None].parameters == {"k": 12, "profile": "book"}
    assert jobs["big"].parameters == {"k": 100, "profile": "book"}
    assert jobs["big"].output == mini.executed / "demo" / "01_demo-big.ipynb"
    smoke = B.plan(mini, "smoke")
    assert len(smoke) == 1 and smoke[0].parameters == {} and smoke[0].params_file is None
    paper = B.plan(mini, "paper")  # no paper file: defaults, but the profile is named
    assert len(paper) == 1 and paper[0].parameters == {"profile": "paper"}
    assert B.plan(mini, "book", only="nothing-matches") == []


def test_job_hash_tracks_notebook_and_parameters(mini):
    job = B.plan(mini, "book")[0]
    h = B.job_hash(job, "lib")
    assert B.job_hash(job, "lib") == h
    assert B.job_hash(job, "lib2") != h
    job.parameters = {**job.parameters, "k": 13}
    assert B.job_hash(job, "lib") != h


def test_a_verdicts_page_is_stale_once_a_record_changes_and_a_table_page_is_not(mini, home):
    from audiorepro import results

    table_job = B.plan(mini, "book")[0]
    reader = B.Job(table_job.notebook.with_name("verdicts.ipynb"), "book", None, None, {}, table_job.output)
    reader.notebook.write_text(table_job.notebook.read_text())
    before = (B.job_hash(table_job, "lib"), B.job_hash(reader, "lib"))
    assert B.job_hash(reader, "lib") == before[1]                     # nothing changed: current
    results.record("atgnn", "table3", {"mAP": 0.5}, {}, "synthetic", "small", "smoke", model="m")
    assert B.job_hash(table_job, "lib") == before[0]                   # a table page: unaffected
    assert B.job_hash(reader, "lib") != before[1]                      # the verdicts page reruns
    assert B.reads_registry(Path("book/summary/claims.ipynb"))
    assert not B.reads_registry(Path("book/atgnn/03_tables_2_3.ipynb"))


def test_corrupt_done_marker_is_named_and_counts_as_missing(mini):
    B.execute(mini, "book", log=lambda *_: None)
    marker = mini.executed / "demo" / "01_demo.ipynb.done"
    marker.write_text('{"hash": "abc", truncated')
    _fake_mathjax(mini)
    with pytest.raises(B.BookError, match=r"corrupt done marker .*01_demo.ipynb.done"):
        B.build(mini, log=lambda *_: None)
    lines = []
    out = {o.job.variant: o.status for o in B.execute(mini, "book", log=lines.append)}
    assert out == {None: "ran", "big": "skipped"}
    assert any("corrupt done marker" in ln and str(marker) in ln and "runs again" in ln for ln in lines)
    assert json.loads(marker.read_text())["profile"] == "book"  # rewritten by the rerun


def test_library_hash_follows_source_not_caches(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub" / "__pycache__").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "t.yml").write_text("k: 1\n")
    h = B.library_hash(pkg)
    (pkg / "sub" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    (pkg / "notes.md").write_text("not source")
    assert B.library_hash(pkg) == h
    (pkg / "sub" / "t.yml").write_text("k: 2\n")
    assert B.library_hash(pkg) != h


# ------------------------------------------------------------------------- execution
def test_execute_writes_copies_markers_and_skips_unchanged(mini):
    out = B.execute(mini, "book", log=lambda *_: None)
    assert [o.status for o in out] == ["ran", "ran"]
    copy = mini.executed / "demo" / "01_demo.ipynb"
    marker = json.loads((mini.executed / "demo" / "01_demo.ipynb.done").read_text())
    assert marker["parameters"] == {"k": 12, "profile": "book"} and marker["profile"] == "book"
    nb = nbformat.read(str(copy), as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    original = next(c for c, t in zip(nb.cells, tags) if "parameters" in t)
    injected = next(c for c, t in zip(nb.cells, tags) if "injected-parameters" in t)
    assert "remove-cell" in original.metadata["tags"]            # smoke defaults hidden
    assert "remove-cell" not in injected.metadata.get("tags", [])  # this run's values shown
    assert "k = 12" in injected.source
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "profile=book k=12 double=24" in printed
    big = nbformat.read(str(mini.executed / "demo" / "01_demo-big.ipynb"), as_version=4)
    assert big.cells[0].source.startswith("# Demo notebook (variant big)")

    again = B.execute(mini, "book", log=lambda *_: None)
    assert [o.status for o in again] == ["skipped", "skipped"]
    (mini.book / "demo" / "params" / "01_demo.book-big.yaml").write_text("k: 7\n")
    third = {o.job.variant: o.status for o in B.execute(mini, "book", log=lambda *_: None)}
    assert third == {None: "skipped", "big": "ran"}


def test_each_execution_tells_its_kernel_the_notebook_and_a_fresh_id(mini, home):
    from audiorepro.results.records import EXECUTION_ENV, NOTEBOOK_ENV, executions_dir
    _add_notebook(mini, "02_env.ipynb",
                  f"import os; print('seen', os.environ['{NOTEBOOK_ENV}'], os.environ['{EXECUTION_ENV}'])")

    def seen():
        nb = nbformat.read(str(mini.executed / "demo" / "02_env.ipynb"), as_version=4)
        text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
        return next(line.split()[1:] for line in text.splitlines() if line.startswith("seen"))

    B.execute(mini, "smoke", only="demo/02", log=lambda *_: None)
    first = seen()
    B.execute(mini, "smoke", only="demo/02", force=True, log=lambda *_: None)
    second = seen()
    assert first[0] == second[0] == "demo/02_env" and first[1] != second[1]
    # each finished execution is marked complete in the registry (so it may supersede older ones)
    assert {p.stem for p in executions_dir().glob("*.json")} >= {first[1], second[1]}
    assert str(executions_dir()).startswith(str(home))
    assert NOTEBOOK_ENV not in os.environ and EXECUTION_ENV not in os.environ   # restored
    job = next(j for j in B.plan(mini, "book") if j.variant == "big")
    with B.execution_env(job) as execution:
        assert execution["notebook"] == "demo/01_demo [big]" == os.environ[NOTEBOOK_ENV]
        assert execution["id"] == os.environ[EXECUTION_ENV]


def test_timings_read_markers_and_flag_stale_and_unrun(mini, capsys):
    before = B.timings(mini, "book")
    assert list(before["status"]) == ["not run", "not run"] and before["seconds"].isna().all()
    B.execute(mini, "book", log=lambda *_: None)
    after = B.timings(mini, "book")
    assert list(after["status"]) == ["current", "current"]
    assert (after["seconds"] > 0).all() and list(after["variant"]) == ["", "big"]
    (mini.book / "demo" / "params" / "01_demo.book-big.yaml").write_text("k: 7\n")
    assert dict(zip(B.timings(mini, "book")["variant"], B.timings(mini, "book")["status"])) == \
        {"": "current", "big": "stale"}
    assert B.main(["--root", str(mini.root), "timings", "--profile", "book"]) == 0
    out = capsys.readouterr().out
    assert "over 2 of 2 executions (1 stale)" in out
    assert list(B.timings(mini, "smoke")["status"]) == ["not run"]  # book markers are not smoke's


def test_failing_notebook_is_named_and_gets_no_marker(mini, capsys):
    _add_notebook(mini, "02_fail.ipynb", 'raise ValueError(f"boom k={k}")')
    rc = B.main(["--root", str(mini.root), "execute", "--profile", "smoke"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "02_fail.ipynb" in captured.err and "ValueError: boom k=3" in captured.err
    assert (mini.executed / "demo" / "01_demo.ipynb.done").is_file()  # the others still ran
    assert (mini.executed / "demo" / "02_fail.ipynb").is_file()       # traceback kept
    assert not (mini.executed / "demo" / "02_fail.ipynb.done").exists()
    _fake_mathjax(mini)
    with pytest.raises(B.BookError, match="02_fail.ipynb: executed copy has no done marker"):
        B.build(mini, log=lambda *_: None)


# ------------------------------------------------------------------------- mathjax & build
def test_external_mathjax_is_detected(tmp_path):
    (tmp_path / "a.html").write_text('<script defer src="_static/mathjax/tex-mml-chtml.js"></script>')
    assert B.external_mathjax(tmp_path) == []
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.html").write_text(
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>')
    assert B.external_mathjax(tmp_path) == [
        "sub/b.html: https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"]


def test_copy_mathjax_copies_script_and_fonts_from_the_installed_package(mini, tmp_path):
    with pytest.raises(B.BookError, match="MathJax 3 is not installed.*make mathjax"):
        B.copy_mathjax(mini, cache=tmp_path / "npm")  # the library never installs it
    es5 = tmp_path / "npm" / "node_modules" / "mathjax" / "es5"
    (es5 / B.MATHJAX_FONTS).mkdir(parents=True)
    (es5 / B.MATHJAX_FILE).write_text("// mathjax")
    (es5 / B.MATHJAX_FONTS / "MathJax_Zero.woff").write_bytes(b"woff")
    script = B.copy_mathjax(mini, cache=tmp_path / "npm")
    assert script == mini.mathjax_dir / B.MATHJAX_FILE and script.read_text() == "// mathjax"
    assert (mini.mathjax_dir / B.MATHJAX_FONTS / "MathJax_Zero.woff").read_bytes() == b"woff"


def test_build_refuses_unexecuted_and_stale_notebooks(mini):
    _fake_mathjax(mini)
    with pytest.raises(B.BookError, match="01_demo.ipynb: not executed"):
        B.build(mini, log=lambda *_: None)
    B.execute(mini, "book", log=lambda *_: None)
    _edit(_demo(mini), lambda nb: nb.cells.append(nbformat.v4.new_markdown_cell("more")))
    with pytest.raises(B.BookError, match="stale"):
        B.build(mini, log=lambda *_: None)


def test_mini_book_builds_with_local_mathjax(mini):
    B.execute(mini, "book", log=lambda *_: None)
    _fake_mathjax(mini)
    html = B.build(mini, log=lambda *_: None)
    page = (html / "book" / "demo" / "01_demo.html").read_text()
    assert "double=24" in page and "smoke default" not in page
    assert "double=200" in (html / "book" / "demo" / "01_demo-big.html").read_text()
    assert "_static/mathjax/tex-mml-chtml.js" in page
    assert B.external_mathjax(html) == []
    assert (html / "_static" / "mathjax" / B.MATHJAX_FILE).is_file()
    # a Sphinx warning (broken cross-reference) fails the build
    (mini.book / "index.md").write_text("# Mini\n\nSee {doc}`missing/page`.\n")
    with pytest.raises(B.BookError, match="jupyter-book build failed"):
        B.build(mini, log=lambda *_: None)


def test_screenshot_without_chromium_is_a_clear_skip(mini, monkeypatch, capsys):
    monkeypatch.setattr(B, "find_chromium", lambda: None)
    assert B.main(["--root", str(mini.root), "screenshot"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("screenshot skipped: no chromium browser installed")


# ------------------------------------------------------------------------- the real book
def test_real_book_follows_conventions():
    layout = B.Layout(REPO)
    assert B.check(layout) == []
    docs = B.toc_docnames(layout)
    for chapter in ("atgnn", "thgcl", "bow", "fusion", "retrieval"):
        assert f"book/{chapter}/index" in docs
    assert docs[0] == "book/index" and "book/summary/claims" in docs


def test_check_names_a_parameter_papermill_cannot_parse(mini):
    def params_with_eq_comment(nb):
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        cell.source += "\ncap = 0  # clips, 0 = all"
    _edit(_demo(mini), params_with_eq_comment)
    problems = "\n".join(B.check(mini))
    assert "01_demo.ipynb: papermill cannot parse parameter(s) ['cap']" in problems


def test_check_wants_each_parameter_file_to_set_its_own_profile(mini):
    pfile = mini.book / "demo" / "params" / "01_demo.book.yaml"
    pfile.write_text("k: 12\n")
    problems = "\n".join(B.check(mini))
    assert "01_demo.book.yaml: sets profile None, want 'book'" in problems
    pfile.write_text("k: 12\nprofile: paper\n")
    assert "sets profile 'paper', want 'book'" in "\n".join(B.check(mini))
    pfile.write_text("k: 12\nprofile: book\n")
    assert B.check(mini) == []


def test_repository_book_passes_check():
    """Every notebook of the real book: one parseable parameters cell, no outputs, listed in the
    toc, and every parameter file names only declared parameters."""
    layout = B.Layout(B.default_root())
    assert layout.toc.is_file()
    assert B.check(layout) == []


# ------------------------------------------------------------------------- table of contents
def test_committed_toc_is_the_generated_one():
    assert (REPO / "_toc.yml").read_text(encoding="utf8") == B.toc_text(REPO), \
        "_toc.yml is stale: run `python -m audiorepro.book toc`"


def test_toc_orders_parts_papers_pages_and_verdicts(tmp_path):
    from audiorepro.results import paper_file, paper_names

    first, second = paper_names()[:2]    # papers in their paper.yml order
    book = tmp_path / "book"
    files = ["index.md", "summary/claims.ipynb", "intro/data.ipynb", "zeta_extra/index.md",
             f"{second}/index.md", f"{first}/verdicts.ipynb", f"{first}/02_b.ipynb",
             f"{first}/index.md", f"{first}/01_a.ipynb", f"{first}/notes.md",
             f"{first}/params/01_a.book.yaml", "_executed/x/index.md", "backbones/01_bb.ipynb",
             "backbones/index.md"]
    for name in files:
        (book / name).parent.mkdir(parents=True, exist_ok=True)
        (book / name).write_text("")
    toc = B.generate_toc(tmp_path)
    assert toc["root"] == "book/index" and toc["format"] == "jb-book"
    parts = [(p["caption"], p["chapters"][0]["file"],
              [s["file"] for s in p["chapters"][0].get("sections", [])]) for p in toc["parts"]]
    caption = lambda paper: yaml.safe_load(paper_file(paper).read_text())["caption"]  # noqa: E731
    assert parts == [
        ("The data", "book/intro/data", []),
        ("Shared backbones", "book/backbones/index", ["book/backbones/01_bb"]),
        (caption(first), f"book/{first}/index",
         [f"book/{first}/01_a", f"book/{first}/02_b", f"book/{first}/notes", f"book/{first}/verdicts"]),
        (caption(second), f"book/{second}/index", []),
        ("Zeta extra", "book/zeta_extra/index", []),
        ("Summary", "book/summary/claims", []),
    ]


def test_toc_command_writes_it_and_check_reports_a_stale_one(mini, capsys):
    text = mini.toc.read_text()
    mini.toc.write_text(text.replace("        sections:\n          - file: book/demo/01_demo\n", ""))
    assert any("not the table of contents generated" in p for p in B.check(mini))
    assert B.main(["--root", str(mini.root), "toc"]) == 0
    assert "written" in capsys.readouterr().out
    assert B.toc_docnames(mini) == ["book/index", "book/demo/index", "book/demo/01_demo"]
    assert B.check(mini) == []
    assert B.main(["--root", str(mini.root), "toc"]) == 0
    assert "unchanged" in capsys.readouterr().out


# ------------------------------------------------------------------------- set-up (tools/)
def _book_setup():
    spec = importlib.util.spec_from_file_location("book_setup", REPO / "tools" / "book_setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_book_setup_says_what_it_installs_and_skips_chromium_without_root(monkeypatch, capsys,
                                                                         tmp_path):
    setup = _book_setup()
    monkeypatch.setattr(setup, "find_chromium", lambda: None)
    monkeypatch.setattr(setup, "can_apt_install", lambda: False)
    assert setup.main(["chromium"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "screenshots will be skipped: chromium is not installed and installing it needs root and "
        "apt-get (Debian: sudo apt-get install chromium)"]

    calls = []
    monkeypatch.setattr(setup, "can_apt_install", lambda: True)
    monkeypatch.setattr(setup.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0, "", ""))
    assert setup.main(["chromium"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "installing chromium (Debian package) for screenshots of the built book"
    assert calls[0][:4] == ["apt-get", "install", "-y", "-q"] and calls[0][-1] == "chromium"

    monkeypatch.setenv("AUDIOREPRO_HOME", str(tmp_path))
    monkeypatch.setattr(setup.shutil, "which", lambda name: None)  # no npm
    monkeypatch.setattr(setup, "can_apt_install", lambda: False)
    assert setup.main(["mathjax"]) == 1
    assert "npm not found" in capsys.readouterr().err
    es5 = tmp_path / "cache" / "npm" / "node_modules" / "mathjax" / "es5"
    es5.mkdir(parents=True)
    (es5 / B.MATHJAX_FILE).write_text("// mathjax")
    assert setup.main(["mathjax"]) == 0
    assert capsys.readouterr().out.startswith("MathJax 3 already installed")


def test_make_book_runs_the_set_up_steps():
    proc = subprocess.run(["make", "-n", "book"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    steps = [next(i for i, ln in enumerate(lines) if needle in ln) for needle in (
        "tools/book_setup.py mathjax", "audiorepro.book mathjax", "tools/book_setup.py chromium",
        "audiorepro.book execute", "audiorepro.book build", "audiorepro.book screenshot")]
    assert steps == sorted(steps)                                  # set-up first, then the book


def test_pages_that_read_the_registry_run_last_and_stay_current(mini, home, monkeypatch):
    # a verdicts page placed before another chapter's notebook in the toc: if it ran in toc
    # order, the later notebook's record would make it stale and the build would refuse the book
    order = []

    def run_job(job, lib_hash=None):
        order.append(job.notebook.stem)
        if job.notebook.stem != "verdicts":       # a chapter notebook records a result
            from audiorepro.results import records_dir
            records_dir().mkdir(parents=True, exist_ok=True)
            (records_dir() / f"{job.notebook.stem}-{len(order)}.json").write_text("{}")
        job.output.parent.mkdir(parents=True, exist_ok=True)
        job.output.write_text("{}")
        B.atomic_write_text(job.marker, json.dumps({"hash": B.job_hash(job, lib_hash), "profile": job.profile}))
        return B.Outcome(job, "ran", 0.0)

    jobs = B.plan(mini, "book")
    verdicts = B.Job(mini.book / "demo" / "verdicts.ipynb", "book", None, None, {},
                     mini.executed / "demo" / "verdicts.ipynb")
    (mini.book / "demo" / "verdicts.ipynb").write_bytes(jobs[0].notebook.read_bytes())
    monkeypatch.setattr(B, "plan", lambda *a, **k: [verdicts, *jobs])   # the toc puts it first
    monkeypatch.setattr(B, "run_job", run_job)
    B.execute(mini, "book", log=lambda *_: None)
    assert order[-1] == "verdicts" and order.count("verdicts") == 1
    m = json.loads(verdicts.marker.read_text())
    assert m["hash"] == B.job_hash(verdicts)                          # still current after the run


def test_page_problems_find_stderr_and_machine_paths(tmp_path):
    from audiorepro.book import page_problems

    def nb(name, outputs):
        path = tmp_path / name
        path.write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": outputs}]}))
        return path
    clean = nb("clean.ipynb", [{"output_type": "stream", "name": "stdout", "text": ["ok 0.5\n"]},
                               {"output_type": "execute_result", "data": {"text/plain": "1"}}])
    warned = nb("warned.ipynb", [{"output_type": "stream", "name": "stderr",
                                  "text": ["/x/.venv/lib/tqdm/auto.py:21: TqdmWarning: IProgress\n"]}])
    path = nb("path.ipynb", [{"output_type": "execute_result",
                              "data": {"text/plain": "table in /home/me/project/results"}}])
    empty = nb("empty.ipynb", [{"output_type": "stream", "name": "stderr", "text": ["\n"]},
                               {"output_type": "stream", "name": "stderr",   # the library's log
                                "text": ["clip table 'x': dropped 2 row(s) whose audio duplicates\n"]}])
    relative = nb("relative.ipynb", [{"output_type": "stream", "name": "stdout",
                                      "text": ["read cache/debian/home/me/project/x.wav\n"]}])
    machine = ["/home/me/project"]
    assert page_problems([relative], machine) == []     # a relative path that ends alike
    assert page_problems([clean, empty], machine) == []
    got = page_problems([clean, warned, path], machine)
    assert got == ["warned.ipynb cell 0: stderr: /x/.venv/lib/tqdm/auto.py:21: TqdmWarning: IProgress",
                   "path.ipynb cell 0: shows the machine path '/home/me/project'"]
