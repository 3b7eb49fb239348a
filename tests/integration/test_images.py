"""Images from the catalog on the real engine: labels, cache hits, no CA left behind, honest refusals."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console

from orchestrator.errors import UsageError
from orchestrator.images.build import HASH_LABEL, BuildOptions, ensure_image
from orchestrator.spec.catalog import load_catalog


def test_built_images_carry_oci_labels_and_entry_hash(engine, built_images):
    catalog = load_catalog()
    for entry in catalog.images:
        if entry.device != "cpu" or entry.unbuildable or entry.variant != "cpu" or entry.version == "2.15.1":
            continue
        labels = engine.images.get(entry.tag).labels
        assert labels["org.opencontainers.image.version"] == entry.version
        assert labels["org.opencontainers.image.title"] == entry.tag
        assert labels[HASH_LABEL] == catalog.entry_hash(entry)


def test_rebuild_of_unchanged_image_is_a_cache_hit(engine, built_images):
    """The rendered context is deterministic, so a second build reuses every layer and gives the same id.

    The first build here fills the layer cache: an image found current by its label may have lost its
    build stage's cache (`docker image prune` removes it), which would make any rebuild a fresh one."""
    catalog = load_catalog()
    entry = catalog.find("mxnet", "1.9.1", "cpu")[0]
    first = ensure_image(engine, catalog, entry, BuildOptions(), force=True)
    lines: list[str] = []
    log = Console(file=io.StringIO(), width=200)  # no terminal: a CI log's view
    second = ensure_image(engine, catalog, entry, BuildOptions(), on_line=lines.append, console=log, force=True)
    steps = [line for line in lines if line.startswith("Step ")]
    cached = [line for line in lines if line == "---> Using cache"]
    assert second == first
    assert len(steps) >= 8 and len(cached) == len([s for s in steps if " : FROM " not in s]), lines
    stamp, tag = r"\[\d\d:\d\d:\d\d\] ", re.escape(f"build {entry.tag}")
    assert re.fullmatch(rf"{stamp}{tag}: started\n{stamp}{tag}: done in \d+\.\d s\n", log.file.getvalue())


def test_ca_bundle_is_not_left_in_the_final_image(engine, built_images):
    image = engine.images.get("benchmatrix/mxnet:1.9.1-cpu")
    assert not any(item.startswith("PIP_CERT") for item in image.attrs["Config"]["Env"])
    output = engine.containers.run(
        image.id,
        ["sh", "-c", "ls /tmp/benchmatrix 2>&1; ls /etc/ssl/certs/ca-bundle.crt 2>&1; true"],
        remove=True,
        network_mode="none",
    ).decode()
    assert "No such file" in output and "ca-bundle.crt" not in output.replace("/etc/ssl/certs/ca-bundle.crt", "")


def test_images_run_as_non_root_with_the_framework_on_path(engine, built_images):
    output = engine.containers.run(
        "benchmatrix/mxnet:1.9.1-cpu",
        ["python3", "-c", "import os, mxnet; print(os.getuid(), mxnet.__version__)"],
        remove=True,
        network_mode="none",
    ).decode()
    assert output.split() == ["1000", "1.9.1"]


def test_unbuildable_entry_says_why_with_exit_2(engine, cli):
    done = cli("images", "build", "--framework", "tensorflow@1.15.5")
    assert done.returncode == 2
    assert "cannot be built here" in done.stderr and "Python <= 3.7" in done.stderr


def test_base_bootstrap_is_idempotent(engine, built_images, cli):
    started = time.monotonic()
    done = cli("base", "bootstrap", "--suite", "bookworm")
    assert done.returncode == 0, done.stderr
    assert "is present" in done.stdout
    assert time.monotonic() - started < 30


def _catalog_with(tmp_path, base_line: str, image_lines: str):
    path = tmp_path / "catalog.yaml"
    path.write_text(f"schema: 1\nbases:\n  {base_line}\nimages:\n{image_lines}")
    return load_catalog(path)


def test_registry_style_base_builds_when_present(engine, built_images, tmp_path):
    """A catalog base may name any image (as pulled from a registry); here a local tag stands in for the pull."""
    engine.images.get("benchmatrix/base:bookworm").tag("bmtest/registry-python", "3.11")
    try:
        catalog = _catalog_with(
            tmp_path,
            'slim: {image: "bmtest/registry-python:3.11", python: "3.11"}',
            '  - {framework: bmtest, version: "1.0", base: slim, pip: ["six==1.16.0"]}\n',
        )
        image_id = ensure_image(engine, catalog, catalog.images[0], BuildOptions(), force=True)
        output = engine.containers.run(
            image_id, ["python3", "-c", "import six; print(six.__version__)"], remove=True, network_mode="none"
        )
        assert output.decode().strip() == "1.16.0"
    finally:
        engine.images.remove("benchmatrix/bmtest:1.0-cpu", force=True)
        engine.images.remove("bmtest/registry-python:3.11")


def test_registry_base_that_cannot_be_pulled_says_so(engine, tmp_path):
    catalog = _catalog_with(
        tmp_path,
        'slim: {image: "bmtest/not-here:1", python: "3.11"}',
        '  - {framework: bmtest, version: "1.0", base: slim, pip: ["six==1.16.0"]}\n',
    )
    with pytest.raises(UsageError, match="bmtest/not-here:1 is not present and cannot be pulled"):
        ensure_image(engine, catalog, catalog.images[0], BuildOptions(), force=True)
