"""Book pipeline: conventions check, parameter validation, papermill execution with done markers,
Jupyter Book build of a mini book (tests/fixtures/book) with local MathJax."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from audiorepro import book as B

FIXTURE = Path(__file__).parent / "fixtures" / "book"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def mini(tmp_path, monkeypatch) -> B.Layout:
    """A fresh copy of the mini book (index, one chapter, one notebook with a book variant).

    The library hash is pinned: other work on lib/ during a test must not make copies stale
    (that dependence is tested by test_job_hash_tracks_notebook_and_parameters).
    """
    monkeypatch.setattr(B, "library_hash", lambda: "pinned-library-hash")
    root = tmp_path / "mini"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("_build", "_executed", "_static"))
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
    assert B.check(mini) == []
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


def test_install_mathjax_copies_script_and_fonts_from_cache(mini, tmp_path):
    es5 = tmp_path / "npm" / "node_modules" / "mathjax" / "es5"
    (es5 / B.MATHJAX_FONTS).mkdir(parents=True)
    (es5 / B.MATHJAX_FILE).write_text("// mathjax")
    (es5 / B.MATHJAX_FONTS / "MathJax_Zero.woff").write_bytes(b"woff")
    script = B.install_mathjax(mini, cache=tmp_path / "npm")  # present: npm is not called
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
    assert B.main(["--root", str(mini.root), "screenshot", "--no-install"]) == 0
    assert "screenshot skipped: no chromium" in capsys.readouterr().out


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
