"""Images from the catalog on the real engine: labels, cache hits, no CA left behind, honest refusals."""

from __future__ import annotations

import time

from orchestrator.catalog import load_catalog
from orchestrator.images import HASH_LABEL, BuildOptions, build


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
    before = engine.images.get("benchmatrix/mxnet:1.9.1-cpu").id
    started = time.monotonic()
    catalog = load_catalog()
    entry = catalog.find("mxnet", "1.9.1", "cpu")[0]
    image_id = build(engine, catalog, entry, BuildOptions())
    elapsed = time.monotonic() - started
    assert image_id == before
    assert elapsed <= 5.0, f"cached rebuild took {elapsed:.1f} s"


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
