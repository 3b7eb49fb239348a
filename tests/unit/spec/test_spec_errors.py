"""Bad input: the message names the file, the key path and what was expected; exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.spec.matrix import load_spec

VALID = """
name: t
systems: {cpu: {kind: cpu}}
frameworks: [{name: tensorflow, version: "2.21.0"}]
workloads: [{name: mlp, model: mlp, dataset: fashion_mnist, batch_sizes: [32]}]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_valid_spec_loads(tmp_path):
    spec = load_spec(write(tmp_path, VALID))
    assert spec.systems["cpu"].kind == "cpu"
    assert spec.reference == "tensorflow"


@pytest.mark.parametrize(
    "text, key_path, expected",
    [
        ("name: [unclosed", "", "invalid YAML: line 1"),
        ("- a\n- b\n", "", "expected a mapping"),
        (VALID.replace("batch_sizes: [32]", "batch_sizes: [0]"), "workloads.0.batch_sizes", "between 1 and 65536"),
        (VALID.replace("kind: cpu", "kind: tpu"), "systems.cpu.kind", "'cpu' or 'gpu'"),
        (VALID.replace('version: "2.21.0"', 'version: "2.21; rm -rf /"'), "frameworks.0.version", "matching"),
        (VALID.replace("name: t\n", "name: t\nrepeatz: 3\n"), "repeatz", "unknown key"),
        (VALID.replace("workloads:", "workloadz:"), "workloads", "required key is missing"),
        (VALID.replace("name: t\n", "name: t\nreference: caffe9\n"), "reference", "known: tensorflow"),
        (VALID + "\n# x", None, None),
    ],
)
def test_invalid_spec_names_file_key_and_expectation(tmp_path, text, key_path, expected):
    path = write(tmp_path, text)
    if key_path is None:
        load_spec(path)
        return
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.file == str(path)
    assert caught.value.key_path == key_path
    assert expected in caught.value.expected
    assert caught.value.exit_code == 2


def test_gpu_system_needs_gpus(tmp_path):
    path = write(tmp_path, VALID.replace("{kind: cpu}", "{kind: gpu}"))
    with pytest.raises(SpecError, match="needs 'gpus' >= 1"):
        load_spec(path)


def test_cli_exit_code_2_and_message(tmp_path, cli):
    path = write(tmp_path, VALID.replace("kind: cpu", "kind: tpu"))
    done = cli("plan", "--spec", str(path))
    assert done.returncode == 2
    assert str(path) in done.stderr and "systems.cpu.kind" in done.stderr


def test_cli_missing_spec_file(tmp_path, cli):
    done = cli("plan", "--spec", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    assert "nope.yaml" in done.stderr and "cannot read file" in done.stderr


def test_reference_defaults_to_tensorflow_else_the_first_framework(tmp_path):
    assert load_spec(write(tmp_path, VALID)).reference == "tensorflow"
    mxnet_only = VALID.replace('name: tensorflow, version: "2.21.0"', 'name: mxnet, version: "1.9.1"')
    assert load_spec(write(tmp_path, mxnet_only)).reference == "mxnet"


@pytest.mark.parametrize("command", [("plan",), ("run", "--data-dir", "nowhere")])
def test_cli_refuses_a_reference_the_spec_does_not_run(tmp_path, cli, command):
    path = write(tmp_path, VALID.replace("name: t\n", "name: t\nreference: caffe9\n"))
    done = cli(*command, "--spec", str(path), *(("--store", str(tmp_path / "r.db")) if command[0] == "run" else ()))
    assert done.returncode == 2, done.stderr
    assert f"{path} at key 'reference': 'caffe9' is not a framework of this spec; known: tensorflow" in done.stderr
    assert not (tmp_path / "r.db").exists() and "Traceback" not in done.stderr
