"""A step that fails mid-run: pipeline/run_local.py runs the pipeline until a component raises, then ends with one
`error:` line naming the step. The refusals before the pipeline starts are tests/integration/test_cli.py's."""

import shutil

from pipeline.data.assets import ensure_checkpoint
from support import run_local
from support.retraining import write_csv


def test_a_step_that_fails_ends_with_one_line_naming_it(tmp_path):
    """An error a component raises (here: a checkpoint whose weights file is corrupt, found when the Trainer loads
    it) ends the run with one `error:` line that names the step and what to try, never a raw exception."""
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(ensure_checkpoint(), checkpoint)
    (checkpoint / "model.safetensors").write_bytes(b"\x00" * 64)
    rows = [[f"a {word} film {i}", label] for i in range(40) for word, label in (("good", "pos"), ("bad", "neg"))]
    write_csv(tmp_path / "data" / "d.csv", rows, header=("text", "label"))
    proc = run_local("--data-root", tmp_path / "data", "--pretrained", checkpoint, "--pipeline-root",
                     tmp_path / "root", "--serving-dir", tmp_path / "serving", "--epochs", "1")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and proc.stderr.strip() == errors[0], proc.stderr[-3000:]
    assert errors[0].startswith("error: step Trainer failed (") and "the same command, run again, resumes" in \
        errors[0] and "last_error.log" in errors[0], errors[0]
    assert "[" in proc.stdout and "Trainer FAILED" in proc.stdout
    assert (tmp_path / "root" / "last_error.log").read_text().startswith("Traceback")
    assert not (tmp_path / "serving").exists()
