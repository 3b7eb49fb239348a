"""Bundles on the real engine: save → verify → refusals (nothing loaded) → load → identity checks.

The images bundled here are the tests' own: a label with a random nonce on top of a shared image
gives a new image id, so "removed, then loaded" is real while the shared `benchmatrix/*` images
(and their layers) stay untouched.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from orchestrator.bundle.manifest import MANIFEST_NAME
from orchestrator.cli.main import main
from orchestrator.run.data import sha256_of
from orchestrator.spec.catalog import load_catalog

TINY_BASE = "benchmatrix/base:bullseye"
WHEEL = "demo-1.0-py3-none-any.whl"


def build_labelled(engine: docker.DockerClient, base: str, name: str) -> docker.models.images.Image:
    """A new image id over `base`'s layers, tagged `benchmatrix-test/<name>:<nonce>`."""
    nonce = secrets.token_hex(6)
    dockerfile = f"FROM {base}\nLABEL io.benchmatrix.test.nonce={nonce}\n".encode()
    image, _ = engine.images.build(fileobj=io.BytesIO(dockerfile), tag=f"benchmatrix-test/{name}:{nonce}", rm=True)
    return image


def remove_image(engine: docker.DockerClient, image_id: str) -> None:
    with contextlib.suppress(docker.errors.ImageNotFound):
        engine.images.remove(image_id, force=True)


def on_engine(engine: docker.DockerClient, ref: str) -> str | None:
    try:
        return engine.images.get(ref).id
    except docker.errors.ImageNotFound:
        return None


@pytest.fixture(scope="module")
def tiny(engine) -> Iterator[docker.models.images.Image]:
    image = build_labelled(engine, TINY_BASE, "bundle-tiny")
    yield image
    remove_image(engine, image.id)


@pytest.fixture(scope="module")
def tiny_bundle(tiny, sample_data, tmp_path_factory, cli) -> Path:
    """The tiny image, the sample dataset and a (stand-in) wheel, through the real CLI."""
    wheelhouse = tmp_path_factory.mktemp("wheels")
    (wheelhouse / WHEEL).write_bytes(b"PK\x03\x04 a stand-in wheel")
    out = tmp_path_factory.mktemp("bundles") / "tiny"
    done = cli(
        "bundle", "save", "--out", str(out), "--image", tiny.tags[0],
        "--with-datasets", "fashion_mnist", "--data-dir", str(sample_data), "--with-wheelhouse", str(wheelhouse),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "saved " + tiny.tags[0] in done.stdout and "s/GB" in done.stdout
    assert "1 images, 1 datasets, 1 wheels" in done.stdout
    return out


def in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """The CLI in this process (`main(argv)`: same parsing, same exit codes), without a new interpreter's start-up."""
    code = main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)


@pytest.fixture
def main_cli(capsys):
    return lambda *args: in_process(capsys, *args)


def linked_copy(bundle: Path, target: Path) -> Path:
    """A copy of the bundle that costs no disk: hard links (files changed by a test are replaced, not edited)."""
    shutil.copytree(bundle, target, copy_function=os.link)
    return target


def replace(path: Path, content: bytes) -> None:
    path.unlink()
    path.write_bytes(content)


def image_tar(bundle: Path) -> Path:
    return bundle / json.loads((bundle / MANIFEST_NAME).read_text())["images"][0]["file"]


def test_manifest_records_identity_versions_and_checksums(tiny, tiny_bundle, sample_data):
    manifest = json.loads((tiny_bundle / MANIFEST_NAME).read_text())
    assert manifest["format"] == "benchmatrix.bundle/1"
    assert manifest["catalog_hash"] == load_catalog().catalog_hash()
    (image,) = manifest["images"]
    assert image["id"] == tiny.id and image["tags"] == tiny.tags
    assert image["labels"]["io.benchmatrix.test.nonce"] == tiny.labels["io.benchmatrix.test.nonce"]
    assert image["versions"]["pip"]  # read by running the image: Debian's pip in the base
    for entry in manifest["files"]:
        assert sha256_of(tiny_bundle / entry["path"]) == entry["sha256"]
        assert (tiny_bundle / entry["path"]).stat().st_size == entry["size"]
    assert [entry["path"] for entry in manifest["files"] if entry["role"] == "wheel"] == [f"wheels/{WHEEL}"]
    datasets = {entry["path"]: entry for entry in manifest["files"] if entry["role"] == "dataset"}
    for path, entry in datasets.items():
        assert sha256_of(sample_data / "fashion_mnist" / Path(path).name) == entry["sha256"]


def test_verify_checks_without_loading(engine, tiny, tiny_bundle, cli):
    remove_image(engine, tiny.id)
    done = cli("bundle", "verify", str(tiny_bundle))
    assert done.returncode == 0, done.stderr
    assert "ok: 6 files" in done.stdout and tiny.tags[0] in done.stdout
    assert on_engine(engine, tiny.id) is None


def truncate_tar(bundle: Path) -> None:
    tar = image_tar(bundle)
    replace(tar, tar.read_bytes()[:-4096])


def flip_a_byte(path: Path) -> None:
    """Same size, other content: only the checksum can tell."""
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    replace(path, bytes(content))


def edit_manifest(change):
    def edit(bundle: Path) -> None:
        data = json.loads((bundle / MANIFEST_NAME).read_text())
        change(data)
        replace(bundle / MANIFEST_NAME, json.dumps(data).encode())

    return edit


def escape_path(path: str):
    def change(data):
        data["files"][0]["path"] = path
        data["images"][0]["file"] = path

    return edit_manifest(change)


REFUSALS = {
    "missing tar": (lambda b: image_tar(b).unlink(), "missing"),
    "truncated tar": (truncate_tar, "(truncated or altered)"),
    "altered tar": (lambda b: flip_a_byte(image_tar(b)), "(altered)"),
    "altered dataset": (
        lambda b: flip_a_byte(b / "datasets/fashion_mnist/t10k-labels-idx1-ubyte.gz"),
        "t10k-labels-idx1-ubyte.gz: sha256",
    ),
    "manifest not JSON": (lambda b: replace(b / MANIFEST_NAME, b'{"format": '), "not valid JSON"),
    "no manifest": (lambda b: (b / MANIFEST_NAME).unlink(), "no manifest.json"),
    "path with ..": (escape_path("../tiny/images/x.tar"), "not a plain relative path inside the bundle"),
    "absolute path": (escape_path("/etc/passwd"), "not a plain relative path inside the bundle"),
    "unknown format": (edit_manifest(lambda d: d.update(format="benchmatrix.bundle/9")), "unknown bundle format"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_bundle_is_refused_and_nothing_is_loaded(engine, tiny, tiny_bundle, tmp_path, main_cli, case):
    damage, expected = REFUSALS[case]
    bundle = linked_copy(tiny_bundle, tmp_path / "bundle")
    damage(bundle)
    remove_image(engine, tiny.id)
    data_dir = tmp_path / "data"
    done = main_cli("bundle", "load", str(bundle), "--data-dir", str(data_dir))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "nothing loaded" in done.stderr and expected in done.stderr, done.stderr
    assert on_engine(engine, tiny.id) is None and on_engine(engine, tiny.tags[0]) is None
    assert not data_dir.exists()
    if case == "altered tar":  # `verify` runs the same checks (unit-tested); once through the CLI here
        verified = main_cli("bundle", "verify", str(bundle))
        assert verified.returncode == 2 and "(altered)" in verified.stderr


def test_tag_held_by_another_image_is_refused(engine, tiny, tiny_bundle, tmp_path, main_cli):
    """Policy: refuse (exit 2, nothing loaded) — loading would silently move a tag specs rely on."""
    remove_image(engine, tiny.id)
    other = build_labelled(engine, TINY_BASE, "bundle-other")
    try:
        repository, tag = tiny.tags[0].rsplit(":", 1)
        other.tag(repository, tag)
        done = main_cli("bundle", "load", str(tiny_bundle), "--data-dir", str(tmp_path / "data"))
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"tag {tiny.tags[0]} names {other.id} on this engine" in done.stderr
        assert on_engine(engine, tiny.tags[0]) == other.id
        assert on_engine(engine, tiny.id) is None and not (tmp_path / "data").exists()
    finally:
        remove_image(engine, other.id)


def test_load_places_everything_then_skips_what_is_present(engine, tiny, tiny_bundle, tmp_path, main_cli):
    remove_image(engine, tiny.id)
    data_dir = tmp_path / "data"
    done = main_cli("bundle", "load", str(tiny_bundle), "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"loaded {tiny.tags[0]}" in done.stdout
    assert on_engine(engine, tiny.tags[0]) == tiny.id
    placed = sorted((data_dir / "fashion_mnist").iterdir())
    assert len(placed) == 4 and all(path.stat().st_mode & 0o777 == 0o644 for path in placed)
    again = main_cli("bundle", "load", str(tiny_bundle), "--data-dir", str(data_dir))
    assert again.returncode == 0, again.stderr
    assert f"present {tiny.tags[0]}" in again.stdout and "(same id, not loaded)" in again.stdout
    assert again.stdout.count("(same sha256)") == 4 and "loaded " not in again.stdout
    assert f"1 wheels stay in {tiny_bundle / 'wheels'}" in again.stdout


def test_dataset_file_with_other_content_is_refused(engine, tiny, tiny_bundle, tmp_path, main_cli):
    remove_image(engine, tiny.id)
    data_dir = tmp_path / "data"
    (data_dir / "fashion_mnist").mkdir(parents=True)
    (data_dir / "fashion_mnist" / "train-labels-idx1-ubyte.gz").write_bytes(b"mine")
    done = main_cli("bundle", "load", str(tiny_bundle), "--data-dir", str(data_dir))
    assert done.returncode == 2 and "exists with other content" in done.stderr, done.stderr
    assert on_engine(engine, tiny.id) is None
    assert (data_dir / "fashion_mnist" / "train-labels-idx1-ubyte.gz").read_bytes() == b"mine"


def test_save_refuses_missing_images_and_a_used_directory(tmp_path, main_cli, engine):
    missing = main_cli("bundle", "save", "--out", str(tmp_path / "b"), "--image", "benchmatrix-test/none:0")
    assert missing.returncode == 2 and "not on this engine: benchmatrix-test/none:0" in missing.stderr
    assert not (tmp_path / "b").exists()
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    used = main_cli("bundle", "save", "--out", str(tmp_path / "used"), "--image", TINY_BASE)
    assert used.returncode == 2 and "not an empty directory" in used.stderr
