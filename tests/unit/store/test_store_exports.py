"""`results --format csv|json|parquet`: every row carries run, host, image id and in-container versions."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
from dataclasses import replace

import pandas as pd

from orchestrator.store.database import Store
from tests.conftest import REPO
from tests.stores import add_run
from tests.unit.render.test_report import record


def one_run(tmp_path) -> str:
    path = str(tmp_path / "results.db")
    store = Store(path)
    add_run(store, "run1", host='{"hostname": "bench-host"}')
    store.record_cells(
        [record("mxnet", "cpu", 0, "mlp", 32, 1, 0), record("pytorch", "cpu", 0, "mlp", 32, 1, 0, "oom")]
    )
    return path


def check(rows: list[dict]) -> None:
    assert [row["run_id"] for row in rows] == ["run1", "run1"]
    assert {row["host"] for row in rows} == {"bench-host"}
    assert {row["image_id"] for row in rows} == {"sha256:x"}
    assert rows[0]["versions.mxnet"] == "1" and rows[1]["versions.pytorch"] == "1"
    assert rows[1]["status"] == "oom"


def test_csv_json_and_parquet_carry_the_context(tmp_path, cli):
    path = one_run(tmp_path)
    as_json = cli("results", "--store", path, "--format", "json")
    check(json.loads(as_json.stdout))
    as_csv = cli("results", "--store", path, "--format", "csv")
    check(list(csv.DictReader(io.StringIO(as_csv.stdout))))
    done = cli("results", "--store", path, "--format", "parquet", "--out", str(tmp_path / "cells.parquet"))
    assert done.returncode == 0, done.stderr
    frame = pd.read_parquet(tmp_path / "cells.parquet")
    check(frame.astype(object).where(frame.notna(), None).to_dict("records"))
    assert pd.isna(frame.loc[frame["status"] == "oom", "train_img_per_s"]).all()


def test_parquet_to_a_terminal_is_refused(tmp_path):
    path = one_run(tmp_path)
    leader, follower = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "results", "--store", path, "--format", "parquet"],
        cwd=REPO,
        stdout=follower,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
        timeout=120,
    )
    os.close(follower)
    os.close(leader)
    assert done.returncode == 2 and "--format parquet writes binary" in done.stderr


def test_unwritable_out_is_a_usage_error(tmp_path, cli):
    path = one_run(tmp_path)
    (tmp_path / "afile").write_text("")
    done = cli("results", "--store", path, "--format", "csv", "--out", str(tmp_path / "afile" / "x.csv"))
    assert done.returncode == 2 and "cannot write there" in done.stderr


def test_exports_say_where_each_cells_data_came_from(tmp_path, cli):
    path = str(tmp_path / "results.db")
    store = Store(path)
    add_run(store, "run1", host='{"hostname": "bench-host"}')
    generated = {"kind": "generated", "seed": 0, "n": 60000}
    store.record_cells(
        [
            replace(record("mxnet", "cpu", 0, "mlp", 32, 1, 0), data_provenance=generated),
            replace(record("pytorch", "cpu", 0, "mlp", 32, 1, 0), data_provenance={"kind": "official"}),
        ]
    )
    rows = json.loads(cli("results", "--store", path, "--format", "json").stdout)
    assert [(row["data_provenance.kind"], row["accuracy_meaningful"]) for row in rows] == [
        ("generated", False),
        ("official", True),
    ]
    assert json.loads(rows[0]["data_provenance"]) == generated
    as_csv = list(csv.DictReader(io.StringIO(cli("results", "--store", path, "--format", "csv").stdout)))
    assert [row["accuracy_meaningful"] for row in as_csv] == ["False", "True"]
