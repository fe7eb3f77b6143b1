"""Notebook parameters checked before anything runs (issue #16): the rules, the guard cell that
tools/add_parameter_guard.py inserts, and plain `papermill` / nbval runs of a guarded notebook."""
from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from audiorepro.book import parameters as P

REPO = Path(__file__).resolve().parents[1]
TOOL = runpy.run_path(str(REPO / "tools" / "add_parameter_guard.py"))
PAPERMILL = Path(sys.executable).with_name("papermill")

DEFAULTS = {"epochs": 3, "lr": 0.1, "ks": [9, 20], "name": "a", "cap": None, "flag": False,
            "split": {"train": 1}, "expr": P.UNPARSED}


# ------------------------------------------------------------------------- rules
def test_parse_assignments_reads_literals_and_marks_expressions():
    src = "a = 1  # one\nb: float = 2.5\nc = [1, 2]\nd = len('xy')\nprint(a)\ne = f = None"
    assert P.parse_assignments(src) == {"a": 1, "b": 2.5, "c": [1, 2], "d": P.UNPARSED,
                                        "e": None, "f": None}
    with pytest.raises(P.ParameterError, match="the parameters cell: not valid Python"):
        P.parse_assignments("a = (", "the parameters cell")


@pytest.mark.parametrize("given, expected", [
    ({"epochs": 2, "lr": 1, "ks": (9, 12), "cap": "x", "expr": [1], "flag": True}, None),
    ({"epochs": 1.5}, "parameter 'epochs' = 1.5 is a float, but its default 3 is an int"),
    ({"epochs": "two"}, "parameter 'epochs' = 'two' is a string, but its default 3 is an int"),
    ({"epochs": True}, "parameter 'epochs' = True is a bool, but its default 3 is an int"),
    ({"lr": False}, "parameter 'lr' = False is a bool, but its default 0.1 is a float"),
    ({"ks": "9,12"}, "parameter 'ks' = '9,12' is a string, but its default [9, 20] is a list"),
    ({"ks": [9, 12.5]}, "parameter 'ks' item 1 = 12.5 is a float, but the items of its default "
                        "[9, 20] are an int"),
    ({"flag": 1}, "parameter 'flag' = 1 is an int, but its default False is a bool"),
    ({"split": None}, "parameter 'split' = None is None, but its default {'train': 1} is a mapping"),
    ({"name": 2}, "parameter 'name' = 2 is an int, but its default 'a' is a string"),
])
def test_types_follow_the_default(given, expected):
    problems = P.parameter_problems(DEFAULTS, given)
    assert problems == ([expected] if expected else [])


def test_unknown_names_are_listed_with_a_suggestion():
    problems = P.parameter_problems(DEFAULTS, {"epoch": 3, "zzz": 1, "lr": 0.5})
    assert problems == [f"unknown parameter(s) ['epoch', 'zzz'] (did you mean 'epochs' for 'epoch'?); "
                        f"the parameters cell declares {sorted(DEFAULTS)}"]


def test_ranges_choices_and_widened_types():
    spec = P.GuardSpec.make(positive=("epochs", "ks"), non_negative=("cap",), fraction=("lr",),
                            choices={"name": ("a", "c")}, types={"flag": ("bool", "str")})
    ok = {"epochs": 1, "ks": [1, 2], "cap": 0, "lr": 1, "name": "c", "flag": "auto"}
    assert P.parameter_problems(DEFAULTS, ok, spec) == []
    bad = {"epochs": 0, "ks": [4, -1], "cap": -2, "lr": float("nan"), "name": "b", "flag": 2}
    assert P.parameter_problems(DEFAULTS, bad, spec) == [
        "parameter 'epochs' = 0 is out of range: it must be > 0",
        "parameter 'ks' item 1 = -1 is out of range: it must be > 0",
        "parameter 'cap' = -2 is out of range: it must be >= 0",
        "parameter 'lr' = nan is out of range: it must be between 0 and 1",
        "parameter 'name' = 'b' is not one of ['a', 'c']",
        "parameter 'flag' = 2 is an int, but it takes bool or str"]
    assert P.parameter_problems(DEFAULTS, {"lr": 1.01}, spec) == [
        "parameter 'lr' = 1.01 is out of range: it must be between 0 and 1"]


@pytest.mark.parametrize("kwargs, message", [
    ({"positive": "epochs"}, "positive= must be a tuple of parameter names"),
    ({"postive": ("epochs",)}, "unknown keyword(s) ['postive']"),
    ({"types": {"x": ("integer",)}}, "types['x'] = ('integer',): type names are"),
])
def test_guard_spec_rejects_its_own_mistakes(kwargs, message):
    with pytest.raises(P.ParameterError) as err:
        P.GuardSpec.make("nb.ipynb", **kwargs)
    assert message in str(err.value) and "nb.ipynb" in str(err.value)


def test_infer_types_widens_to_what_parameter_files_use():
    defaults = {"scale": "cpu", "cap": 4000, "x": None, "lr": 0.1}
    files = [{"scale": 1.0, "lr": 1}, {"cap": None, "x": 3}, {"scale": 0.5}]
    assert P.infer_types(defaults, files) == {"scale": ("str", "float"), "cap": ("int", "None")}


# ------------------------------------------------------------------------- guard cell and tool
def _notebook(path: Path, params: str = "epochs = 3  # training epochs\nks = [9, 20]\nlr = 0.001",
              guard: dict | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Guarded"), cell, nbformat.v4.new_code_cell(
        'from pathlib import Path\nPath("ran.txt").write_text(f"epochs={epochs} ks={ks} lr={lr}")')]
    nbformat.write(nb, str(path))
    if guard is not None:
        TOOL["guard_notebook"](path, guard, log=lambda *_: None)
    return path


def test_tool_inserts_the_guard_once_and_keeps_its_ranges(tmp_path, capsys):
    path = _notebook(tmp_path / "nb.ipynb")
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "nb.paper.yaml").write_text("ks: null\n")
    assert TOOL["main"]([str(path), "--positive", "epochs,ks", "--choices", "lr=0.001,0.01"]) == 0
    assert "types['ks'] = ('list', 'None')" in capsys.readouterr().out
    nb = json.loads(path.read_text())
    assert [c["metadata"].get("tags", []) for c in nb["cells"]] == [
        [], ["parameters"], ["check-parameters", "remove-cell"], []]
    guard = nb["cells"][2]
    assert guard["outputs"] == [] and guard["execution_count"] is None
    spec = P.guard_spec(nb)
    assert spec.positive == ("epochs", "ks") and spec.choices == {"lr": (0.001, 0.01)}
    assert spec.types == {"ks": ("list", "None")}
    before = path.read_bytes()
    assert TOOL["main"]([str(path)]) == 0 and path.read_bytes() == before   # idempotent
    assert TOOL["main"]([str(path), "--fraction", "lr"]) == 0                # adds, keeps the rest
    spec = P.guard_spec(json.loads(path.read_text()))
    assert spec.fraction == ("lr",) and spec.positive == ("epochs", "ks")
    assert P.guard_problems(json.loads(path.read_text()), "nb.ipynb") == ([], [])


def test_tool_refuses_a_guard_that_names_undeclared_or_breaks_defaults(tmp_path, capsys):
    path = _notebook(tmp_path / "nb.ipynb")
    before = path.read_bytes()
    assert TOOL["main"]([str(path), "--positive", "epoch"]) == 1
    assert "names undeclared parameter(s) ['epoch']" in capsys.readouterr().err
    assert TOOL["main"]([str(path), "--fraction", "epochs"]) == 1
    assert "default parameter 'epochs' = 3 is out of range" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_guard_problems_name_missing_misplaced_and_ambiguous_cells(tmp_path):
    nb = json.loads(_notebook(tmp_path / "a.ipynb").read_text())
    assert P.guard_problems(nb, "a.ipynb") == ([], [
        "a.ipynb: no parameter guard cell after the parameters cell "
        "(python tools/add_parameter_guard.py a.ipynb)"])
    nb = json.loads(_notebook(tmp_path / "b.ipynb", guard={}).read_text())
    nb["cells"].insert(2, nb["cells"].pop(3))                # a code cell between
    errors, _ = P.guard_problems(nb, "b.ipynb")
    assert errors == ["b.ipynb: the parameter guard is cell 3, it must be the first code cell after "
                      "the parameters cell 1"]
    nb = nbformat.read(str(_notebook(tmp_path / "c.ipynb", "# Parameters\nepochs = 3")), as_version=4)
    TOOL["insert_guard"](nb, P.GuardSpec())
    errors, _ = P.guard_problems(nb, "c.ipynb")
    assert errors == ["c.ipynb: the parameters cell starts with '# Parameters', the first line of the "
                      "cell papermill injects; start it differently"]


# ------------------------------------------------------------------------- plain papermill, nbval
def _papermill(nb: Path, *args: str) -> subprocess.CompletedProcess:
    out = nb.with_name("out.ipynb")
    return subprocess.run([str(PAPERMILL), nb.name, out.name, "--cwd", str(nb.parent),
                           "--no-progress-bar", "-k", "python3", *args],
                          cwd=nb.parent, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Path:
    return _notebook(tmp_path_factory.mktemp("guarded") / "nb.ipynb",
                     guard={"positive": ("epochs", "ks"), "fraction": ("lr",)})


@pytest.mark.parametrize("args, message", [
    (["-p", "epoch", "3"], "unknown parameter(s) ['epoch'] (did you mean 'epochs' for 'epoch'?)"),
    (["-p", "epochs", "1.5"], "parameter 'epochs' = 1.5 is a float, but its default 3 is an int"),
    (["-p", "epochs", "two"], "parameter 'epochs' = 'two' is a string, but its default 3 is an int"),
    (["-r", "epochs", "2"], "parameter 'epochs' = '2' is a string, but its default 3 is an int"),
    (["-y", "ks: 9,12"], "parameter 'ks' = '9,12' is a string, but its default [9, 20] is a list"),
    (["-p", "epochs", "0"], "parameter 'epochs' = 0 is out of range: it must be > 0"),
    (["-y", "lr: 2.5"], "parameter 'lr' = 2.5 is out of range: it must be between 0 and 1"),
])
def test_plain_papermill_stops_with_one_line_naming_the_parameter(guarded, args, message):
    (guarded.parent / "ran.txt").unlink(missing_ok=True)
    proc = _papermill(guarded, *args)
    assert proc.returncode != 0
    assert f"ParameterError: {message}" in proc.stderr
    assert not (guarded.parent / "ran.txt").exists()       # nothing after the guard ran
    out = nbformat.read(str(guarded.with_name("out.ipynb")), as_version=4)
    errors = [o for c in out.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    tb = errors[0].traceback if len(errors) == 1 else []
    assert len(tb) == 1 and tb[0].startswith(f"ParameterError: {message}")


def test_plain_papermill_with_valid_or_no_parameters_runs(guarded):
    ran = guarded.parent / "ran.txt"
    ran.unlink(missing_ok=True)
    proc = _papermill(guarded, "-p", "epochs", "2", "-y", "ks: [1, 2]", "-p", "lr", "1",
                      "--inject-paths")                  # PAPERMILL_INPUT_PATH etc. are not ours
    assert proc.returncode == 0, proc.stderr
    assert ran.read_text() == "epochs=2 ks=[1, 2] lr=1"
    ran.unlink()
    assert _papermill(guarded).returncode == 0             # nothing injected: nothing to check
    assert ran.read_text() == "epochs=3 ks=[9, 20] lr=0.001"


def test_guarded_notebook_passes_nbval(guarded):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--nbval-lax", "--nbval-current-env", guarded.name],
                          cwd=guarded.parent, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "3 passed" in proc.stdout
