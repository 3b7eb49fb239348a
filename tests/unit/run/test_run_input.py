"""`run` refuses bad input before anything starts: exit 2, a message that says what to do."""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import ExitCode
from orchestrator.run import data
from orchestrator.store.database import Store

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent.sock"}


def run_without_engine(cli, data_dir: Path, store: Path, *args: str):
    """`run` with these data and store and no engine to reach: what it refuses is refused before one is needed."""
    return cli("run", *args, "--data-dir", str(data_dir), "--store", str(store), env=NO_ENGINE)


def test_missing_dataset_names_the_files_and_starts_nothing(tmp_path, cli):
    store = tmp_path / "results.db"
    done = run_without_engine(cli, tmp_path / "empty", store, "--system", "cpu")
    assert done.returncode == 2
    assert "train-images-idx3-ubyte.gz" in done.stderr and "t10k-labels-idx1-ubyte.gz" in done.stderr
    assert "data sample fashion_mnist" in done.stderr
    assert not store.exists()


def test_engine_unreachable_says_how_to_start_one(tmp_path, cli):
    data.sample("fashion_mnist", tmp_path / "fashion_mnist", n_train=100, n_test=20)
    tmp_path.chmod(0o755)
    store = tmp_path / "results.db"
    done = run_without_engine(cli, tmp_path, store)
    assert done.returncode == 2
    assert "no Docker engine answers" in done.stderr and "dockerd" in done.stderr
    assert not store.exists() or Store(str(store)).run_ids() == []


def test_unbuildable_image_refused_before_start(tmp_path, cli):
    data.sample("fashion_mnist", tmp_path / "fashion_mnist", n_train=100, n_test=20)
    tmp_path.chmod(0o755)
    spec = tmp_path / "s.yaml"
    spec.write_text(
        'name: s\nsystems: {cpu: {kind: cpu}}\nframeworks: [{name: tensorflow, version: "1.15.5"}]\n'
        "workloads: [{name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32]}]\n"
    )
    done = run_without_engine(cli, tmp_path, tmp_path / "db", "--spec", str(spec))
    assert done.returncode == 2
    assert "cannot be built here" in done.stderr and "Python <= 3.7" in done.stderr


def test_dataset_unreadable_by_the_cell_user_is_refused(tmp_path, cli):
    data.sample("fashion_mnist", tmp_path / "fashion_mnist", n_train=100, n_test=20)
    tmp_path.chmod(0o755)
    (tmp_path / "fashion_mnist").chmod(0o700)
    done = run_without_engine(cli, tmp_path, tmp_path / "db")
    assert done.returncode == 2
    assert "uid 1000" in done.stderr and "chmod -R o+rX" in done.stderr


def test_data_sample_writes_the_official_names(tmp_path, cli):
    done = cli("data", "sample", "fashion_mnist", "--dir", str(tmp_path), "--n", "50")
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in Path(tmp_path).iterdir())
    assert written == sorted([*data.info("fashion_mnist").files, "PROVENANCE.json"])
    assert data.missing_files("fashion_mnist", tmp_path) == []


def test_data_fetch_offline_says_where_to_place_files(tmp_path, cli):
    done = cli(
        "data",
        "fetch",
        "fashion_mnist",
        "--dir",
        str(tmp_path),
        env={"http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"},
    )
    assert done.returncode == ExitCode.USAGE  # docs/commands.md's "missing dataset": the user places the files
    files = ", ".join(data.info("fashion_mnist").files)
    assert f"place the official files {files} in {tmp_path}" in done.stderr
    assert list(tmp_path.iterdir()) == [] and "Traceback" not in done.stderr  # no half-downloaded file left
