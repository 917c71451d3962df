"""The run planned before it starts (pipeline/planning/sequence_length.py): the estimate of a run's training time by
length, the timed probe of the encoder on this machine (--time-budget), and `--max-seq-length auto` capped by the
budget, said in its note, through the local front door."""

import csv
import json
import re
from pathlib import Path

import pytest

from components.model import bert
from pipeline.cli import local_run
from pipeline.planning import sequence_length as planning
from pipeline.planning import training_cost
from pipeline.run_local import build_parser

ENCODER = training_cost.Encoder(layers=2, hidden=128, intermediate=512)


def _long_texts(tmp_path: Path, rows: int = 120, words: int = 150) -> Path:
    """A folder of one CSV: `rows` texts of `words` words (one WordPiece token each), two labels."""
    folder = tmp_path / "long"
    folder.mkdir(parents=True)
    with open(folder / "data.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(rows):
            writer.writerow([" ".join(["good" if i % 2 else "bad"] * (words - i % 40)), "pos" if i % 2 else "neg"])
    return folder


def _run_config(tmp_path, *flags):
    """(the sequence length, the notes about it) of a local run's config on _long_texts."""
    args = build_parser().parse_args(["--data-root", str(_long_texts(tmp_path)), "--pretrained", "none",
                                      "--model-size", "tiny", "--vocab", "checkpoint",
                                      "--pipeline-root", str(tmp_path / "root"), *map(str, flags)])
    plan = local_run.plan(args)
    return plan.config.transform.max_seq_length, [n for n in plan.notes if n.startswith("--max-seq-length")]


def _auto(tmp_path, *flags):
    length, (note,) = _run_config(tmp_path, *flags)
    return length, note


def _slow_machine(monkeypatch):
    """The probe's timings given (5 s a step at 64 tokens, 10 s at 128), on a machine slower than the slowest
    assumed, so that the arithmetic decides."""
    monkeypatch.setattr(planning, "probe", lambda *a, **k: {64: 5.0, 128: 10.0})
    monkeypatch.setattr(training_cost, "SLOWEST_FLOPS", 1e8)


def test_batches_are_padded_to_their_bucket():
    # Bucket boundaries (training_loop.BUCKET_BOUNDARIES) ... 48, 64, 96, 128 ...: 40 texts of 50 tokens share the
    # [48, 64) bucket; 10 of 300 tokens cut to 128 fall in [128, 192).
    batches = training_cost.padded_batches([50] * 40 + [300] * 10, length=128, batch_size=32)
    assert sorted(batches) == [50, 50, 128]
    assert training_cost.padded_batches([], 128, 32) == []


def test_training_seconds_count_every_pass_its_evaluation_and_the_step_cap():
    step = lambda n: n / 100  # noqa: E731 - a second per 100 tokens
    one = training_cost.training_seconds([100] * 64, 128, 32, passes=1, eval_share=0.0, step=step)
    assert one == pytest.approx(2 * 1.0)  # two batches of 100 tokens
    assert training_cost.training_seconds([100] * 64, 128, 32, 3, 0.0, step) == pytest.approx(6.0)
    # an evaluation of a quarter as many texts costs a third of their training steps
    assert training_cost.training_seconds([100] * 64, 128, 32, 1, 0.25, step) == pytest.approx(2 * (1 + 0.25 / 3))
    assert training_cost.training_seconds([100] * 64, 128, 32, 3, 0.0, step, scale=10) == pytest.approx(60.0)
    assert training_cost.training_seconds([100] * 64, 128, 32, 3, 0.0, step, max_steps=4) == pytest.approx(4.0)


def test_step_time_is_fitted_from_two_lengths_and_extrapolated():
    true = training_cost.StepTime(0.05, 2e-11, ENCODER, 32)
    fitted = training_cost.StepTime.fitted({64: true(64), 128: true(128)}, ENCODER, 32)
    assert fitted.fixed == pytest.approx(0.05) and fitted(512) == pytest.approx(true(512))
    # attention's square makes the work of a long step more than proportionally dearer
    assert (fitted(512) - fitted.fixed) / (fitted(128) - fitted.fixed) > 4
    # A noisy probe (the longer step no slower) cannot give a negative part: all of it is proportional then.
    noisy = training_cost.StepTime.fitted({64: 1.0, 128: 0.9}, ENCODER, 32)
    assert noisy.fixed == 0.0 and noisy(128) == pytest.approx(0.9)


def test_within_budget_takes_the_longest_length_that_fits():
    estimate = lambda n: n * 10.0  # noqa: E731 - seconds
    assert training_cost.within_budget(256, 3000, 32, estimate) == training_cost.Choice(256, 2560.0)
    capped = training_cost.within_budget(512, 2000, 32, estimate)
    assert (capped.length, capped.seconds, capped.wanted_seconds, capped.capped) == (192, 1920.0, 5120.0, True)
    assert training_cost.within_budget(512, 1, 32, estimate).length == 32  # some length has to run


def test_the_probe_times_real_training_steps():
    config = bert.preset_config("tiny", vocab_size=1000)
    timings = training_cost.probe(config, batch_size=8, lengths=(16, 64), steps=2)
    assert set(timings) == {16, 64} and all(t > 0 for t in timings.values())


def test_a_tiny_budget_caps_auto_and_says_what_is_cut_and_how_to_lift_it(tmp_path):
    """A real probe of the tiny encoder on this machine: no length fits a budget of 0.001 minutes."""
    length, note = _auto(tmp_path, "--time-budget", "0.001")
    assert length == 32
    assert re.search(r"auto: 32 tokens, which holds 0 of the 120 texts whole and cuts 120 \(100\.0%\)", note), note
    assert re.search(r"capped by --time-budget 0\.001 min: 160 tokens would hold 100% of them whole but take about "
                     r"\d+ s of training on this machine, 32 tokens about \d+ s; even 32 tokens take about", note), note
    assert "--truncation head_tail keeps the end" in note
    assert re.search(r"pass --time-budget \d+ \(0: none\) to keep 160", note), note


def test_auto_stops_at_the_longest_length_within_the_budget(tmp_path, monkeypatch):
    """The 80% training split of 120 texts, 3 epochs; the note names the chosen length's estimate."""
    _slow_machine(monkeypatch)
    free_length, free_note = _auto(tmp_path / "a", "--time-budget", "0")  # no budget: no probe, nothing said
    assert free_length == 160 and "budget" not in free_note
    length, note = _auto(tmp_path / "b", "--time-budget", "2")
    assert length == 96 and "capped by --time-budget 2 min: 160 tokens" in note
    assert re.search(r"96 tokens, which holds 0 of the 120 texts whole and cuts 120", note)
    roomy_length, roomy_note = _auto(tmp_path / "c", "--time-budget", "5")
    assert roomy_length == 160 and "training at it: about 2 min on this machine (within --time-budget 5 min)" in \
        roomy_note, roomy_note


def test_a_student_adds_its_share_of_the_teachers_layers_to_the_estimate(tmp_path, monkeypatch):
    """A 1-layer student of the 2-layer encoder, 3 epochs each: half the teacher's work a step, plus one forward pass
    of the teacher over the data (a third of an epoch): 3 + 1.5 + 1/3 epochs' worth instead of 3."""
    _slow_machine(monkeypatch)

    def whole_length_seconds(note):
        found = re.search(r"160 tokens would hold 100% of them whole but take about (\d+) (s|min)", note)
        amount, unit = found.groups()
        return int(amount) * (60 if unit == "min" else 1)

    alone = whole_length_seconds(_auto(tmp_path / "a", "--time-budget", "0.5")[1])
    with_student = whole_length_seconds(_auto(tmp_path / "b", "--time-budget", "0.5", "--student-layers", "1")[1])
    assert with_student / alone == pytest.approx((3 + 1.5 + 1 / 3) / 3, rel=0.25), (alone, with_student)


def test_the_timings_are_kept_so_a_later_run_chooses_the_same_length(tmp_path, monkeypatch):
    _slow_machine(monkeypatch)
    first, first_note = _auto(tmp_path, "--time-budget", "2")
    kept = tmp_path / "root" / training_cost.TIMINGS_FILE
    assert json.loads(kept.read_text()) == {"2x128x512 batch 32 float32": {"64": 5.0, "128": 10.0}}

    def no_probe(*args, **kwargs):
        raise AssertionError("probed again")

    monkeypatch.setattr(planning, "probe", no_probe)
    (tmp_path / "long").rename(tmp_path / "first")
    again, note = _auto(tmp_path, "--time-budget", "2")
    assert again == first == 96 and f"on this machine (timed by an earlier run: {kept})" in note
    assert "timed by an earlier run" not in first_note


def test_a_given_length_over_the_budget_runs_as_asked_and_says_so_before(tmp_path, monkeypatch):
    _slow_machine(monkeypatch)
    length, (note,) = _run_config(tmp_path / "a", "--max-seq-length", "160", "--time-budget", "2")
    assert length == 160
    assert re.fullmatch(r"--max-seq-length 160: training will take about 2 min on this machine, over --time-budget 2 "
                        r"min; it runs as asked \(--max-seq-length auto stays within the budget, and fewer --epochs "
                        r"or --max-examples make it shorter\)\.", note), note
    assert _run_config(tmp_path / "b", "--max-seq-length", "96", "--time-budget", "2") == (96, [])  # it fits


def test_a_run_that_fits_even_on_a_slow_machine_is_not_probed(tmp_path, monkeypatch):
    def no_probe(*args, **kwargs):
        raise AssertionError("probed")

    monkeypatch.setattr(planning, "probe", no_probe)
    length, note = _auto(tmp_path / "a", "--time-budget", "30")
    assert length == 160 and "budget" not in note
    assert _run_config(tmp_path / "b", "--max-seq-length", "512") == (512, [])  # not even tokenized


def test_the_budget_must_be_minutes(capsys):
    for bad in ("-1", "soon", "inf"):
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args(["--time-budget", bad])
        assert exit_.value.code == 2
        assert "--time-budget: expected minutes, 0 or more" in capsys.readouterr().err
