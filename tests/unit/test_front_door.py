"""The front door (pipeline/cli/) stays a front door: it turns flags into a plan, in few lines, without TensorFlow or
TFX. The planning module (pipeline/planning/) is the part of it that runs TensorFlow, outside cli/; what happens after
a run is pipeline/local/'s. Checked like tests/unit/test_layers.py checks the floors: the imports read with `ast`
(inside functions too), and each module imported in a fresh interpreter."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / "pipeline" / "cli"
MODULES = sorted(p for p in CLI.glob("*.py"))
MAX_LINES = 1000
HEAVY = ("tensorflow", "tfx", "tf_keras", "tensorflow_transform", "tensorflow_model_analysis",
         "tensorflow_data_validation", "apache_beam", "ml_metadata")


def _module(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def test_the_front_door_is_under_a_thousand_lines():
    lines = {p.name: len(p.read_text().splitlines()) for p in MODULES}
    assert sum(lines.values()) < MAX_LINES, f"pipeline/cli/ has {sum(lines.values())} lines: {lines}"


def heavy_imports(path: Path):
    """(line, module) of each import of `path` of a library that loads TensorFlow, TFX, Beam or ML Metadata."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        yield from ((node.lineno, n) for n in names if n.split(".")[0] in HEAVY)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_front_door_module_imports_tensorflow_or_tfx_itself(path):
    assert not list(heavy_imports(path)), f"{path.relative_to(REPO)} imports {list(heavy_imports(path))}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_importing_a_front_door_module_loads_neither_tensorflow_nor_tfx(path):
    """What it imports at module level, all the way down, in a fresh interpreter: a refused command line costs no
    TensorFlow start."""
    code = (f"import sys, json; import {_module(path)}; "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "TF_USE_LEGACY_KERAS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == [], f"importing {_module(path)} loads them"


def test_the_checks_see_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef probe():\n    import tensorflow as tf\n    from tfx import v1\n")
    assert list(heavy_imports(module)) == [(4, "tensorflow"), (5, "tfx")]


def test_a_local_plan_is_four_stages_each_entered_once():
    """local_run.plan reads like the issue's front door: the locations resolved, the inputs checked, the run planned,
    the settings built (with what --pretrained decides between the first two), each called once."""
    tree = ast.parse((CLI / "local_run.py").read_text())
    plan = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "plan")
    called = [n.func.attr if isinstance(n.func, ast.Attribute) else n.func.id for n in ast.walk(plan)
              if isinstance(n, ast.Call) and isinstance(n.func, (ast.Attribute, ast.Name))]
    stages = ["resolve", "model_settings", "check", "planned_length", "build"]
    assert [c for c in called if c in stages] == stages


def test_an_input_files_error_is_one_refusal_naming_the_input_as_the_user_gave_it(tmp_path):
    """A data file's own error (read from a local copy of a store's folder) becomes the front door's InputError with
    the same record, the copy's path replaced by the store's URI."""
    from components.ingestion.csv_files import DataFileError
    from pipeline.cli.errors import InputError, as_input_errors

    copy = tmp_path / "copy"
    with pytest.raises(InputError) as raised:
        with as_input_errors(copy, "s3://bucket/data/"):
            raise DataFileError(f"{copy}/a.csv, line 3: malformed CSV", "MALFORMED_CSV", path=f"{copy}/a.csv")
    assert raised.value.as_problem() == {"split": "", "feature": "(input)", "kind": "MALFORMED_CSV",
                                         "description": "s3://bucket/data/a.csv, line 3: malformed CSV",
                                         "file": "s3://bucket/data/a.csv"}
    assert InputError("wrong").as_problem() == {"split": "", "feature": "(input)", "kind": "INVALID_INPUT",
                                                "description": "wrong", "file": ""}
