"""Bundle manifests: every refusal names the file and the problem (exit 2); no engine needed."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.bundle.load import stale_images
from orchestrator.bundle.manifest import FORMAT, MANIFEST_NAME, read_manifest, verify
from orchestrator.bundle.save import SaveRequest, catalog_entries, requested_refs
from orchestrator.errors import ExitCode, UsageError
from orchestrator.images.build import HASH_LABEL
from orchestrator.spec.catalog import load_catalog

IMAGE_ID = "sha256:" + "ab" * 32
QUIET = Console(file=io.StringIO())


def entry(path: str, content: bytes, role: str) -> dict:
    return {"path": path, "sha256": hashlib.sha256(content).hexdigest(), "size": len(content), "role": role}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A small but complete bundle: one (fake) image tar and one dataset file."""
    root = tmp_path / "bundle"
    contents = {"images/x.tar": b"not really a tar" * 100, "datasets/fashion_mnist/t10k-labels-idx1-ubyte.gz": b"xyz"}
    for path, content in contents.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    write_manifest(
        root,
        {
            "format": FORMAT,
            "created_at": "2026-11-22T10:00:00Z",
            "tool_version": "0.1.0",
            "catalog_hash": "0" * 64,
            "files": [
                entry("images/x.tar", contents["images/x.tar"], "image"),
                entry(
                    "datasets/fashion_mnist/t10k-labels-idx1-ubyte.gz",
                    contents["datasets/fashion_mnist/t10k-labels-idx1-ubyte.gz"],
                    "dataset",
                ),
            ],
            "images": [
                {
                    "file": "images/x.tar",
                    "id": IMAGE_ID,
                    "tags": ["benchmatrix/x:1.0-cpu"],
                    "repo_digests": [],
                    "labels": {"io.benchmatrix.framework": "x"},
                    "versions": {"x": "1.0"},
                    "size": 1600,
                }
            ],
            "datasets": [{"name": "fashion_mnist", "files": ["datasets/fashion_mnist/t10k-labels-idx1-ubyte.gz"]}],
        },
    )
    return root


def write_manifest(root: Path, data: object) -> None:
    (root / MANIFEST_NAME).write_text(json.dumps(data))


def edit_manifest(root: Path, change) -> None:
    data = json.loads((root / MANIFEST_NAME).read_text())
    change(data)
    write_manifest(root, data)


def refused(root: Path) -> str:
    with pytest.raises(UsageError) as caught:
        verify(root, QUIET)
    assert caught.value.exit_code == ExitCode.USAGE
    return str(caught.value)


def test_a_complete_bundle_verifies(bundle):
    manifest = verify(bundle, QUIET)
    assert manifest.images[0].id == IMAGE_ID
    assert manifest.total_bytes == 1603


def test_missing_file_is_refused(bundle):
    (bundle / "images/x.tar").unlink()
    assert "images/x.tar: missing" in refused(bundle)


def test_truncated_file_is_refused(bundle):
    (bundle / "images/x.tar").write_bytes(b"not really a tar")
    assert "images/x.tar: 16 bytes, the manifest says 1600 (truncated or altered)" in refused(bundle)


def test_altered_file_of_the_same_size_is_refused(bundle):
    path = bundle / "datasets/fashion_mnist/t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"xyZ")
    message = refused(bundle)
    assert "t10k-labels-idx1-ubyte.gz: sha256" in message and "(altered)" in message


def test_every_problem_is_listed_at_once(bundle):
    (bundle / "images/x.tar").unlink()
    (bundle / "datasets/fashion_mnist/t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    message = refused(bundle)
    assert "images/x.tar: missing" in message and "0 bytes" in message


def test_no_manifest_is_refused(bundle):
    (bundle / MANIFEST_NAME).unlink()
    assert "no manifest.json" in refused(bundle)


def test_manifest_that_does_not_parse_is_refused(bundle):
    (bundle / MANIFEST_NAME).write_text('{"format": "benchmatrix.bundle/1",')
    assert "manifest.json: not valid JSON: line 1" in refused(bundle)


def test_manifest_that_is_not_an_object_is_refused(bundle):
    write_manifest(bundle, ["a"])
    assert "expected a JSON object, got list" in refused(bundle)


@pytest.mark.parametrize("found", ["benchmatrix.bundle/2", None, 1])
def test_unknown_format_version_is_refused(bundle, found):
    edit_manifest(bundle, lambda data: data.update(format=found))
    message = refused(bundle)
    assert "at key 'format'" in message and f"unknown bundle format {found!r}" in message


@pytest.mark.parametrize("path", ["../outside.tar", "/etc/passwd", "images/../../x.tar", "images//x.tar", "./x.tar"])
def test_path_outside_the_bundle_is_refused(bundle, path):
    def change(data):
        data["files"][0]["path"] = path
        data["images"][0]["file"] = path

    edit_manifest(bundle, change)
    message = refused(bundle)
    assert "at key 'files.0.path'" in message and "not a plain relative path inside the bundle" in message


def test_symlink_leading_outside_the_bundle_is_refused(bundle, tmp_path):
    outside = tmp_path / "secret"
    outside.write_bytes(b"not really a tar" * 100)
    (bundle / "images/x.tar").unlink()
    (bundle / "images/x.tar").symlink_to(outside)
    assert "leads outside the bundle" in refused(bundle)


@pytest.mark.parametrize(
    "change, key, expected",
    [
        (lambda d: d["images"][0].update(id="sha256:short"), "images.0.id", "matching"),
        (lambda d: d["images"][0].update(tags=["UPPER/case:x"]), "images.0.tags.0", "matching"),
        (lambda d: d["files"][0].update(role="script"), "files.0.role", "'image', 'dataset' or 'wheel'"),
        (lambda d: d["files"][0].update(size=-1), "files.0.size", "greater than or equal to 0"),
        (lambda d: d.update(extra=1), "extra", "unknown key"),
        (lambda d: d["images"][0].update(file="images/y.tar"), "", "not a listed file of role 'image'"),
        (lambda d: d["datasets"][0].update(name="../x"), "datasets.0.name", "matching"),
        (lambda d: d["files"].append(d["files"][0]), "", "listed twice"),
        (lambda d: d["datasets"][0].update(name="mnist"), "datasets.0", "is not under datasets/mnist/"),
    ],
)
def test_invalid_manifest_names_the_key(bundle, change, key, expected):
    edit_manifest(bundle, change)
    message = refused(bundle)
    assert expected in message
    if key:
        assert f"at key '{key}'" in message


def test_read_manifest_needs_a_directory(tmp_path):
    with pytest.raises(UsageError, match="no such bundle directory"):
        read_manifest(tmp_path / "nowhere")


def test_default_selection_is_every_buildable_cpu_image():
    catalog = load_catalog()
    tags = [entry.tag for entry in catalog_entries(catalog, (), None)]
    assert "benchmatrix/mxnet:1.9.1-cpu" in tags
    assert all(entry.device == "cpu" and not entry.unbuildable for entry in catalog_entries(catalog, (), None))
    assert "benchmatrix/tensorflow:1.15.5-cpu" not in tags


def test_selection_by_framework_adds_bases_and_extra_images(tmp_path):
    catalog = load_catalog()
    request = SaveRequest(out=tmp_path, frameworks=("mxnet@1.9.1",), images=("my/img:1",), with_base=True)
    assert requested_refs(catalog, request) == ["benchmatrix/mxnet:1.9.1-cpu", "benchmatrix/base:bullseye", "my/img:1"]
    only_images = SaveRequest(out=tmp_path, images=("my/img:1",))
    assert requested_refs(catalog, only_images) == ["my/img:1"]


@pytest.mark.parametrize("current", [True, False])
def test_load_says_when_this_checkout_would_rebuild_a_loaded_image(bundle, current):
    catalog = load_catalog()
    entry = catalog.find("mxnet", "1.9.1", "cpu")[0]
    label = catalog.entry_hash(entry) if current else "0" * 64

    def change(data):
        data["images"][0].update(tags=[entry.tag], labels={HASH_LABEL: label})

    edit_manifest(bundle, change)
    assert stale_images(read_manifest(bundle)) == ([] if current else [entry.tag])
