"""`compare` as pure functions: pairing, verdicts, and the Markdown / JUnit outputs (golden files)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.analysis.compare import (
    Outcome,
    Settings,
    Verdict,
    compare,
    judge,
)
from orchestrator.errors import ExitCode, UsageError
from orchestrator.metrics import Metric
from orchestrator.render.compare import to_junit, to_markdown
from orchestrator.store.database import Store
from orchestrator.store.queries import parse_selection
from tests.stores import add_run
from tests.stores import row as stored_row
from tests.unit.render.test_report import record

GOLDEN = Path(__file__).parent.parent / "golden"
_ids = itertools.count(1)


def cell(version, workload, speed=None, status="ok", batch=32, accuracy=0.85, variant="cpu", repeat=0):
    metrics = {} if status != "ok" else {"train_img_per_s": speed, "test_accuracy": accuracy}
    return stored_row(
        id=next(_ids),
        run_id="r",
        status=status,
        version=version,
        variant=variant,
        workload=workload,
        model=workload,
        batch_size=batch,
        repeat=repeat,
        options={"hybridize": True},
        config={"max_samples": 960, "lr": 0.001, "version": version, "variant": variant, "repeat": repeat},
        image=f"benchmatrix/mxnet:{version}-{variant}",
        image_id=f"sha256:{version}",
        metrics=metrics,
    )


def side(version, workload, speeds, variant="cpu", **kwargs):
    return [cell(version, workload, s, variant=variant, repeat=i, **kwargs) for i, s in enumerate(speeds)]


def scenario():
    """One pair per verdict: baseline mxnet 1.9.1 (cpu), candidate 1.6.0 (mkl)."""
    a, b = "1.9.1", "1.6.0"
    base = (
        side(a, "mlp", [1000, 1010, 990, 1005, 995, 1002])
        + side(a, "cnn", [300, 303, 297, 301, 299, 300.5])
        + side(a, "cnn", [150, 151, 149, 150, 152], batch=64)
        + side(a, "lstm", [80, 81])
        + [cell(a, "vgg", status="error", repeat=i) for i in range(3)]
        + [
            cell(a, "lenet", s, accuracy=0.85 + i / 1000, repeat=i)
            for i, s in enumerate([500, 505, 495, 502, 498, 501])
        ]
        + side(a, "resnet", [40, 41, 39, 40, 40.5, 39.5])
    )
    cand = (
        side(b, "mlp", [880, 890, 870, 885, 875, 882], "mkl")
        + side(b, "cnn", [301, 298, 302, 300, 299, 300], "mkl")
        + side(b, "cnn", [149, 150, 151], "mkl", batch=64)
        + [cell(b, "cnn", status="oom", batch=64, variant="mkl", repeat=i) for i in (3, 4)]
        + side(b, "lstm", [60, 61], "mkl")
        + side(b, "vgg", [20, 21, 20], "mkl")
        + [
            cell(b, "lenet", s, accuracy=a, variant="mkl", repeat=i)
            for i, (s, a) in enumerate(zip([501, 499, 503, 497, 500, 502], [0.80, 0.81, 0.82, 0.83, 0.84, 0.8505]))
        ]
        + side(b, "resnet", [48, 49, 48.5, 47.5, 48, 48.2], "mkl")
        + side(b, "gru", [10, 11, 10], "mkl")
    )
    return compare(base, cand, "build", Settings(), "mxnet@1.9.1", "mxnet@1.6.0")


def test_verdicts_per_pair():
    result = scenario()
    verdicts = {pair.label.split("/")[2] + f"/{pair.label.split('/')[3]}": pair.verdict.value for pair in result.pairs}
    assert verdicts == {
        "mlp/bs32": "regression",
        "cnn/bs32": "not slower",
        "cnn/bs64": "new failure",
        "lstm/bs32": "inconclusive",
        "vgg/bs32": "fixed",
        "lenet/bs32": "accuracy regression",
        "resnet/bs32": "improvement",
    }
    assert result.only_candidate == ["cpu/mxnet/gru/bs32/e1/hybridize=True"] and result.only_baseline == []
    assert len(result.regressions) == 3
    mlp = next(p for p in result.pairs if "/mlp/" in p.label)
    assert mlp.change == pytest.approx(1000 / 880 - 1, abs=0.005) and mlp.p_value == pytest.approx(1 / 924)
    assert mlp.rounds == "6 vs 6 repeats" and mlp.shift.low > 0.1
    lenet = next(p for p in result.pairs if "/lenet/" in p.label)
    assert lenet.p_value == pytest.approx(2 / 924) and "accuracy p=0.0022" in lenet.notes[0]  # its own p, not speed's
    lstm = next(p for p in result.pairs if "/lstm/" in p.label)
    assert "2 vs 2 repeats cannot give a p below 0.167" in lstm.notes[0] and lstm.shift.high == float("inf")


def test_failed_repeats_never_enter_a_median():
    base = side("1", "mlp", [1000, 1000, 1000, 1000]) + [cell("1", "mlp", status="error", repeat=9)]
    cand = side("2", "mlp", [1000, 1000, 1000, 1000]) + [cell("2", "mlp", status="error", repeat=9)]
    pair = compare(base, cand, "build", Settings(), "a", "b").pairs[0]
    assert pair.baseline.metric.n == 4 and pair.verdict is Verdict.NOT_SLOWER


def test_lower_is_better_metrics_are_oriented():
    base = [
        replace(c, metrics={"epoch_seconds_median": s})
        for c, s in zip(side("1", "m", [0] * 5), [10, 10.1, 9.9, 10, 10])
    ]
    cand = [
        replace(c, metrics={"epoch_seconds_median": s})
        for c, s in zip(side("2", "m", [0] * 5), [12, 12.1, 11.9, 12, 12])
    ]
    assert judge("x", base, cand, Settings(metric="epoch_seconds_median")).verdict is Verdict.REGRESSION


def test_a_run_selection_pairs_on_the_whole_config():
    base = side("1", "mlp", [1000] * 4)
    cand = side("2", "mlp", [1000] * 4)
    result = compare(base, cand, "run", Settings(), "run-a", "run-b")
    assert result.pairs == [] and len(result.only_baseline) == 1 and len(result.only_candidate) == 1


def test_markdown_matches_golden():
    assert to_markdown(scenario()) == (GOLDEN / "compare.md").read_text()


def test_junit_matches_golden():
    xml = to_junit(scenario())
    assert xml == (GOLDEN / "compare.junit.xml").read_text()
    assert 'failures="3"' in xml and 'tests="7"' in xml


@pytest.mark.parametrize(
    ("text", "kind", "fields"),
    [
        ("mxnet@1.9.1", "build", ("mxnet", "1.9.1", None)),
        ("mxnet@1.6.0-mkl", "build", ("mxnet", "1.6.0", "mkl")),
        ("keras-mxnet@2.2.4.3", "build", ("keras-mxnet", "2.2.4.3", None)),
        ("sha256:2b1b931bd11b", "image", (None, None, None)),
        ("2b1b931bd11bdeadbeef", "image", (None, None, None)),
        ("benchmatrix/mxnet:1.9.1-cpu", "image", (None, None, None)),
        ("20261122-231006-f60c6c", "run", (None, None, None)),
    ],
)
def test_selections_parse(text, kind, fields):
    selection = parse_selection(text)
    assert (selection.kind, (selection.framework, selection.version, selection.variant)) == (kind, fields)


@pytest.mark.parametrize("text", ["mxnet@", "MX@1.0", "mxnet@1.0-$(reboot)", "@1.0"])
def test_bad_selections_are_usage_errors(text):
    with pytest.raises(UsageError, match="expected framework@version"):
        parse_selection(text)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"metric": "params"}, "--metric params: expected one of"),
        ({"threshold": 0}, "--threshold 0: expected a number between 0 and 1"),
        ({"alpha": 1.5}, "--alpha 1.5"),
        ({"accuracy_tolerance": -1}, "--accuracy-tolerance -1"),
    ],
)
def test_bad_settings_are_usage_errors(settings, message):
    with pytest.raises(UsageError, match=message):
        Settings(**settings)


def stored_pair(tmp_path, candidate_speeds, candidate_status="ok", baseline_unbuilt=False, runs=1) -> str:
    """A SQLite store with `runs` runs (rounds) holding mxnet 1.9.1 (cpu) and 1.6.0 (mkl) mlp cells,
    as regress makes; `candidate_status` is one status or one per repeat."""
    path = str(tmp_path / "results.db")
    store = Store(path)
    statuses = [candidate_status] * len(candidate_speeds) if isinstance(candidate_status, str) else candidate_status
    records = []
    for round_index in range(runs):
        add_run(store, f"r{round_index + 1}", reference="mxnet")
        for repeat, (base, cand, status) in enumerate(zip([1000, 1010, 990, 1005, 995], candidate_speeds, statuses)):
            for version, variant, speed in (("1.9.1", "cpu", base), ("1.6.0", "mkl", cand)):
                made = record("mxnet", "cpu", 0, "mlp", 32, 1, repeat, run_id=f"r{round_index + 1}")
                ok = status if version == "1.6.0" else "ok"
                unbuilt = baseline_unbuilt and version == "1.9.1"
                metrics = [Metric("train_img_per_s", float(speed), "img/s")] if ok == "ok" and not unbuilt else []
                records.append(
                    replace(
                        made,
                        config_hash=f"{version}-mlp",
                        version=version,
                        variant=variant,
                        status="error" if unbuilt else ok,
                        image=f"benchmatrix/mxnet:{version}-{variant}",
                        image_id=None if unbuilt else made.image_id,
                        notes=["image build failed: building benchmatrix/mxnet:1.9.1-cpu failed"] if unbuilt else [],
                        metrics=metrics,
                    )
                )
    store.record_cells(records)
    return path


def compare_cli(cli, store, *extra):
    return cli("compare", "--store", store, "--baseline", "mxnet@1.9.1", "--candidate", "mxnet@1.6.0", *extra)


def test_no_regression_exits_0_and_the_files_agree(tmp_path, cli):
    same = stored_pair(tmp_path, [1001, 1004, 992, 1000, 998])
    done = compare_cli(cli, same, "--junit", str(tmp_path / "j.xml"), "--markdown", str(tmp_path / "c.md"))
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert "no regression" in done.stdout and 'failures="0" errors="0"' in (tmp_path / "j.xml").read_text()
    assert "| cpu/mxnet/mlp/bs32/e1 |" in (tmp_path / "c.md").read_text()


def test_regression_and_new_failure_exit_1(tmp_path, cli):
    done = compare_cli(cli, stored_pair(tmp_path / "slower", [880, 890, 870, 885, 875]))
    assert done.returncode == ExitCode.REGRESSION and "REGRESSION" in done.stdout and "+13.6%" in done.stdout
    some_oom = stored_pair(tmp_path / "oom", [1000] * 5, candidate_status=["ok", "oom", "ok", "ok", "oom"])
    done = compare_cli(cli, some_oom)
    assert done.returncode == ExitCode.REGRESSION and "new failure" in done.stdout


def test_inconclusive_exits_3_unless_allowed(tmp_path, cli):
    """The issue's case: 8.5 % slower with tiny CVs, but two repeats a side cannot reach alpha."""
    few = stored_pair(tmp_path, [915, 924])
    outputs = (
        "--junit",
        str(tmp_path / "j.xml"),
        "--markdown",
        str(tmp_path / "c.md"),
        "--html",
        str(tmp_path / "c.html"),
    )
    done = compare_cli(cli, few, *outputs)
    assert done.returncode == ExitCode.INCONCLUSIVE, done.stdout + done.stderr
    page = (tmp_path / "c.html").read_text()
    assert "<th>slower by [CI]</th><th>rounds</th>" in page and '<tr class="inconclusive">' in page
    assert "2 vs 2 repeats cannot give a p below 0.167" in page and "pass level 0.05" in page
    assert "INCONCLUSIVE: mxnet@1.6.0 vs mxnet@1.9.1" in done.stdout
    assert 'errors="1"' in (tmp_path / "j.xml").read_text()
    assert (tmp_path / "c.md").read_text().startswith("## INCONCLUSIVE")
    allowed = compare_cli(cli, few, "--allow-inconclusive", "--junit", str(tmp_path / "j2.xml"))
    assert allowed.returncode == ExitCode.OK, allowed.stdout + allowed.stderr
    assert "no regression (1 inconclusive accepted by --allow-inconclusive)" in allowed.stdout
    assert 'errors="0" skipped="1"' in (tmp_path / "j2.xml").read_text()


def test_broken_candidate_exits_4_and_says_which_side(tmp_path, cli):
    failing = stored_pair(tmp_path, [0] * 5, candidate_status="oom")
    done = compare_cli(cli, failing, "--junit", str(tmp_path / "j.xml"))
    assert done.returncode == ExitCode.CELLS_FAILED, done.stdout + done.stderr
    assert "candidate mxnet@1.6.0 is broken: all 5 cells failed (oom×5)" in done.stderr
    assert '<error message="cells failed">' in (tmp_path / "j.xml").read_text()


def test_baseline_that_never_built_exits_5_not_fixed(tmp_path, cli):
    unbuilt = stored_pair(tmp_path, [1000] * 5, baseline_unbuilt=True)
    done = compare_cli(cli, unbuilt, "--markdown", str(tmp_path / "c.md"))
    assert done.returncode == ExitCode.BUILD_FAILED, done.stdout + done.stderr
    assert "baseline mxnet@1.9.1 is broken: benchmatrix/mxnet:1.9.1-cpu never built" in done.stderr
    assert "fixed" not in done.stdout + (tmp_path / "c.md").read_text()


def test_rounds_where_the_candidate_always_ran_second_are_noted(tmp_path, cli):
    done = compare_cli(cli, stored_pair(tmp_path, [1001, 1004, 992, 1000, 998], runs=2), "--run", "r1", "--run", "r2")
    assert "the candidate ran second in all 2 rounds" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "mxnet@1.9.1", "--candidate", "r1"], "compare like with like"),
        (
            ["--baseline", "mxnet@9.9.9", "--candidate", "mxnet@1.6.0"],
            "no cells of mxnet@9.9.9 in the store; the store holds builds mxnet@1.9.1-cpu, mxnet@1.6.0-mkl",
        ),
        (
            ["--baseline", "benchmatrix/mxnet:1.9.2-cpu", "--candidate", "benchmatrix/mxnet:1.6.0-mkl"],
            "holds images benchmatrix/mxnet:1.9.1-cpu, benchmatrix/mxnet:1.6.0-mkl",
        ),
        (["--baseline", "nope-run", "--candidate", "r1"], "no run nope-run in the store; it holds runs r1"),
        (["--baseline", "nosuchrun", "--candidate", "mxnet@1.6.0"], "no run nosuchrun"),
        (["--baseline", "mxnet@1.9.1", "--candidate", "mxnet@1.6.0", "--threshold", "2"], "--threshold 2.0"),
        (["--baseline", "mxnet@1.9.1", "--candidate", "mxnet@1.6.0", "--run", "zzz"], "no run zzz"),
        (["--baseline", "r1", "--candidate", "r1"], "are the same selection"),
    ],
)
def test_cli_usage_errors_exit_2(tmp_path, cli, args, message):
    path = stored_pair(tmp_path, [1000] * 5)
    done = cli("compare", "--store", path, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr


def inconclusive_scenario(allow_inconclusive=False):
    """The issue's first case: every pair too short of repeats, one of them 24.8 % slower."""
    base = side("1.9.1", "mlp", [1000, 1010]) + side("1.9.1", "lstm", [80, 81])
    cand = side("1.6.0", "mlp", [1002, 1008], "mkl") + side("1.6.0", "lstm", [60, 61], "mkl")
    settings = Settings(allow_inconclusive=allow_inconclusive)
    return compare(base, cand, "build", settings, "mxnet@1.9.1", "mxnet@1.6.0")


def broken_scenario():
    base = [
        replace(cell("1.9.1", "mlp", status="error", repeat=i), image_id=None, notes=["image build failed: pip failed"])
        for i in range(2)
    ]
    return compare(base, side("1.6.0", "mlp", [1000, 1001], "mkl"), "build", Settings(), "mxnet@1.9.1", "mxnet@1.6.0")


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("compare_inconclusive", inconclusive_scenario),
        ("compare_inconclusive_allowed", lambda: inconclusive_scenario(allow_inconclusive=True)),
        ("compare_broken", broken_scenario),
    ],
)
def test_outcome_outputs_match_golden(name, make):
    result = make()
    assert to_markdown(result) == (GOLDEN / f"{name}.md").read_text()
    assert to_junit(result) == (GOLDEN / f"{name}.junit.xml").read_text()


def test_outcomes_state_the_worst_verdict():
    assert scenario().outcome is Outcome.REGRESSION
    assert inconclusive_scenario().outcome is Outcome.INCONCLUSIVE
    assert inconclusive_scenario(allow_inconclusive=True).outcome is Outcome.NO_REGRESSION
    broken = broken_scenario()
    assert broken.outcome is Outcome.BUILD_FAILED and broken.pairs == [] and broken.settled
    assert "baseline mxnet@1.9.1 is broken" in to_markdown(broken)


def test_fixed_means_the_baseline_ran_and_failed():
    base = side("1", "mlp", [1000] * 4) + [cell("1", "vgg", status="error", repeat=i) for i in range(3)]
    cand = side("2", "mlp", [1000] * 4) + side("2", "vgg", [20, 21, 20])
    result = compare(base, cand, "build", Settings(), "a", "b")
    assert [p.verdict for p in result.pairs] == [Verdict.NOT_SLOWER, Verdict.FIXED] and not result.broken


def test_a_side_whose_cells_all_failed_is_broken():
    cand = [cell("2", "mlp", status="timeout", repeat=i) for i in range(3)]
    result = compare(side("1", "mlp", [1000] * 3), cand, "build", Settings(), "a", "b")
    assert result.outcome is Outcome.CELLS_FAILED
    assert str(result.broken[0]) == "candidate b is broken: all 3 cells failed (timeout×3)"


def test_one_pair_of_single_runs_cannot_make_an_accuracy_regression():
    """The issue's case: 7 points lower from one repeat a side is inconclusive, not a regression."""
    pair = judge("x", side("1", "mlp", [1000], accuracy=0.85), side("2", "mlp", [1000], accuracy=0.78), Settings())
    assert pair.verdict is Verdict.INCONCLUSIVE
    assert "median accuracy 7.0 points lower (tolerance 2.0), but 1 vs 1 repeats cannot back it" in pair.notes[0]


def test_an_accuracy_drop_within_the_repeats_spread_is_no_regression():
    base = [cell("1", "m", 1000 + i, accuracy=a, repeat=i) for i, a in enumerate([0.85, 0.70, 0.90, 0.75, 0.88])]
    cand = [cell("2", "m", 1000 + i, accuracy=a, repeat=i) for i, a in enumerate([0.82, 0.72, 0.89, 0.74, 0.80])]
    pair = judge("x", base, cand, Settings())
    assert pair.verdict is Verdict.NOT_SLOWER and "within the repeats' spread" in pair.notes[0]


def test_cross_framework_pairs_name_both_sides():
    base = side("2.13.0", "mlp", [1000] * 5)
    cand = [replace(row, framework="tensorflow", options={}) for row in side("2.21.0", "mlp", [1000] * 5)]
    result = compare(base, cand, "build", Settings(), "mxnet@2.13.0", "tensorflow@2.21.0")
    assert [pair.label for pair in result.pairs] == ["cpu/mxnet→tensorflow/mlp/bs32/e1"]
