"""`compare` as pure functions: pairing, verdicts, and the Markdown / JUnit outputs (golden files)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.compare import Settings, compare, judge, parse_selection, to_junit, to_markdown
from orchestrator.errors import UsageError
from orchestrator.stats import detectable_change, repeats_needed
from orchestrator.store import Metric, Store
from tests.stores import add_run
from tests.unit.test_report import record

GOLDEN = Path(__file__).parent / "golden"
_ids = iter(range(1, 10_000))


def cell(version, workload, speed=None, status="ok", batch=32, accuracy=0.85, variant="cpu", repeat=0):
    metrics = {} if status != "ok" else {"train_img_per_s": speed, "test_accuracy": accuracy}
    return {
        "id": next(_ids),
        "run_id": "r",
        "status": status,
        "system": "cpu",
        "framework": "mxnet",
        "version": version,
        "variant": variant,
        "workload": workload,
        "model": workload,
        "dataset": "fashion_mnist",
        "batch_size": batch,
        "epochs": 1,
        "repeat": repeat,
        "options": {"hybridize": True},
        "config": {"max_samples": 960, "lr": 0.001, "version": version, "variant": variant, "repeat": repeat},
        "image": f"benchmatrix/mxnet:{version}-{variant}",
        "image_id": f"sha256:{version}",
        "metrics": metrics,
    }


def side(version, workload, speeds, variant="cpu", **kwargs):
    return [cell(version, workload, s, variant=variant, repeat=i, **kwargs) for i, s in enumerate(speeds)]


def scenario():
    """One pair per verdict: baseline mxnet 1.9.1 (cpu), candidate 1.6.0 (mkl)."""
    a, b = "1.9.1", "1.6.0"
    base = (
        side(a, "mlp", [1000, 1010, 990, 1005, 995])
        + side(a, "cnn", [300, 303, 297, 301, 299])
        + side(a, "cnn", [150, 151, 149, 150, 152], batch=64)
        + side(a, "lstm", [80, 81])
        + [cell(a, "vgg", status="error", repeat=i) for i in range(3)]
        + side(a, "lenet", [500, 505, 495, 502, 498])
        + side(a, "resnet", [40, 41, 39, 40, 40.5])
    )
    cand = (
        side(b, "mlp", [880, 890, 870, 885, 875], "mkl")
        + side(b, "cnn", [301, 298, 302, 300, 299], "mkl")
        + side(b, "cnn", [149, 150, 151], "mkl", batch=64)
        + [cell(b, "cnn", status="oom", batch=64, variant="mkl", repeat=i) for i in (3, 4)]
        + side(b, "lstm", [60, 61], "mkl")
        + side(b, "vgg", [20, 21, 20], "mkl")
        + side(b, "lenet", [501, 499, 503, 497, 500], "mkl", accuracy=0.80)
        + side(b, "resnet", [48, 49, 48.5, 47.5, 48], "mkl")
        + side(b, "gru", [10, 11, 10], "mkl")
    )
    return compare(base, cand, "build", Settings(), "mxnet@1.9.1", "mxnet@1.6.0")


def test_verdicts_per_pair():
    result = scenario()
    verdicts = {pair.label.split("/")[2] + f"/{pair.label.split('/')[3]}": pair.verdict for pair in result.pairs}
    assert verdicts == {
        "mlp/bs32": "regression",
        "cnn/bs32": "no change",
        "cnn/bs64": "new failure",
        "lstm/bs32": "inconclusive",
        "vgg/bs32": "fixed",
        "lenet/bs32": "accuracy regression",
        "resnet/bs32": "improvement",
    }
    assert result.only_candidate == ["cpu/mxnet/gru/bs32/e1/hybridize=True"] and result.only_baseline == []
    assert len(result.regressions) == 3
    mlp = next(p for p in result.pairs if "/mlp/" in p.label)
    assert mlp.change == pytest.approx(880 / 1000 - 1) and mlp.p_value == pytest.approx(1 / 252)
    lstm = next(p for p in result.pairs if "/lstm/" in p.label)
    assert "too few repeats" in lstm.notes[0] and lstm.p_value is None


def test_failed_repeats_never_enter_a_median():
    base = side("1", "mlp", [1000, 1000, 1000, 1000]) + [cell("1", "mlp", status="error", repeat=9)]
    cand = side("2", "mlp", [1000, 1000, 1000, 1000]) + [cell("2", "mlp", status="error", repeat=9)]
    pair = compare(base, cand, "build", Settings(), "a", "b").pairs[0]
    assert pair.baseline.metric.n == 4 and pair.verdict == "no change"


def test_small_significant_slowdown_below_threshold_is_no_change_and_says_so():
    base = side("1", "mlp", [1000, 1001, 999, 1002, 998])
    cand = side("2", "mlp", [970, 971, 969, 972, 968])
    pair = judge("x", base, cand, Settings())
    assert pair.verdict == "no change" and "below the 5% threshold" in pair.notes[0]
    assert judge("x", base, cand, Settings(threshold=0.02)).verdict == "regression"


def test_no_change_from_noisy_repeats_says_what_the_test_could_not_see():
    base = side("1", "mlp", [1000, 1150, 900, 1080, 950])  # CV ~10 %
    cand = side("2", "mlp", [1020, 880, 1100, 960, 1050])
    pair = judge("x", base, cand, Settings())
    assert pair.verdict == "no change"
    assert pair.notes == (
        "underpowered: at CV 9.2% with 5 vs 5 repeats only slowdowns beyond ~20% are found 95% of the time; "
        "~77 repeats per side would find 5%",
    )
    quiet = judge("x", side("1", "mlp", [1000, 1010, 990, 1005, 995]), side("2", "mlp", [1001, 1009, 991]), Settings())
    assert quiet.verdict == "no change" and quiet.notes == ()


def test_detectable_change_and_repeats_needed():
    assert detectable_change(0.10, 5, 5, alpha=0.05) == pytest.approx(0.2129, abs=1e-4)
    assert detectable_change(0.02, 5, 5, alpha=0.05) == pytest.approx(0.0426, abs=1e-4)
    assert detectable_change(0.10, 20, 20, alpha=0.05) < detectable_change(0.10, 5, 5, alpha=0.05) / 1.9
    assert repeats_needed(0.10, 0.05, alpha=0.05) == 91
    assert detectable_change(0.10, 91, 91, alpha=0.05) <= 0.05 < detectable_change(0.10, 90, 90, alpha=0.05)


def test_lower_is_better_metrics_are_oriented():
    base = [
        dict(c, metrics={"epoch_seconds_median": s}) for c, s in zip(side("1", "m", [0] * 5), [10, 10.1, 9.9, 10, 10])
    ]
    cand = [
        dict(c, metrics={"epoch_seconds_median": s}) for c, s in zip(side("2", "m", [0] * 5), [12, 12.1, 11.9, 12, 12])
    ]
    assert judge("x", base, cand, Settings(metric="epoch_seconds_median")).verdict == "regression"


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


def stored_pair(tmp_path, candidate_speeds, candidate_status="ok") -> str:
    """A SQLite store with one run holding mxnet 1.9.1 (cpu) and 1.6.0 (mkl) mlp cells, as regress makes."""
    path = str(tmp_path / "results.db")
    store = Store(path)
    add_run(store, "r1", reference="mxnet")
    records = []
    for repeat, (base, cand) in enumerate(zip([1000, 1010, 990, 1005, 995], candidate_speeds)):
        for version, variant, speed in (("1.9.1", "cpu", base), ("1.6.0", "mkl", cand)):
            made = record("mxnet", "cpu", 0, "mlp", 32, 1, repeat, run_id="r1")
            status = candidate_status if version == "1.6.0" else "ok"
            metrics = [Metric("train_img_per_s", float(speed), "img/s")] if status == "ok" else []
            records.append(
                replace(
                    made,
                    config_hash=f"{version}-mlp",
                    version=version,
                    variant=variant,
                    status=status,
                    image=f"benchmatrix/mxnet:{version}-{variant}",
                    metrics=metrics,
                )
            )
    store.record_cells(records)
    return path


def test_cli_exit_codes_follow_the_verdict(tmp_path, cli):
    same = stored_pair(tmp_path / "same", [1001, 1004, 992, 1000, 998])
    done = cli(
        "compare",
        "--store",
        same,
        "--baseline",
        "mxnet@1.9.1",
        "--candidate",
        "mxnet@1.6.0-mkl",
        "--junit",
        str(tmp_path / "j.xml"),
        "--markdown",
        str(tmp_path / "c.md"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no regression" in done.stdout and 'failures="0"' in (tmp_path / "j.xml").read_text()
    assert "| cpu/mxnet/mlp/bs32/e1 |" in (tmp_path / "c.md").read_text()

    slower = stored_pair(tmp_path / "slower", [880, 890, 870, 885, 875])
    done = cli("compare", "--store", slower, "--baseline", "mxnet@1.9.1", "--candidate", "mxnet@1.6.0")
    assert done.returncode == 1 and "REGRESSION" in done.stdout and "-12.0%" in done.stdout

    failing = stored_pair(tmp_path / "failing", [0] * 5, candidate_status="oom")
    done = cli("compare", "--store", failing, "--baseline", "mxnet@1.9.1", "--candidate", "mxnet@1.6.0")
    assert done.returncode == 1 and "new failure" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "mxnet@1.9.1", "--candidate", "r1"], "compare like with like"),
        (["--baseline", "mxnet@9.9.9", "--candidate", "mxnet@1.6.0"], "no cells of mxnet@9.9.9"),
        (["--baseline", "nope-run", "--candidate", "r1"], "no run 'nope-run'"),
        (["--baseline", "mxnet@1.9.1", "--candidate", "mxnet@1.6.0", "--threshold", "2"], "--threshold 2.0"),
        (["--baseline", "mxnet@1.9.1", "--candidate", "mxnet@1.6.0", "--run", "zzz"], "no run 'zzz'"),
        (["--baseline", "r1", "--candidate", "r1"], "are the same selection"),
    ],
)
def test_cli_usage_errors_exit_2(tmp_path, cli, args, message):
    path = stored_pair(tmp_path, [1000] * 5)
    done = cli("compare", "--store", path, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
