"""The backend registry: `run --backend` offers its names, and each entry builds a backend of that name."""

from __future__ import annotations

import argparse

import pytest

from orchestrator.backends import BackendName
from orchestrator.backends.local import LocalBackend
from orchestrator.backends.registry import BACKENDS, BackendSetup, backend_kind
from orchestrator.cli.run import add_backend_options


def run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_backend_options(parser)
    return parser


def test_run_backend_offers_exactly_the_registered_backends():
    assert set(BACKENDS) == set(BackendName)
    for name in BackendName:
        assert run_parser().parse_args(["--backend", name.value]).backend is name
    assert run_parser().parse_args([]).backend is BackendName.LOCAL
    with pytest.raises(argparse.ArgumentError, match=r"invalid choice: 'kubernetes' \(choose from 'local', 'slurm'\)"):
        run_parser().parse_args(["--backend", "kubernetes"])


def test_each_entry_is_found_by_its_name(tmp_path):
    for name in BackendName:
        assert backend_kind(name.value) is BACKENDS[name] and BACKENDS[name].name is name
    local = backend_kind("local").create(object(), BackendSetup(data_dir=tmp_path))  # type: ignore[arg-type]
    assert isinstance(local, LocalBackend) and local.name == "local"


def test_a_slurm_run_does_not_describe_its_submit_host_as_the_machine_that_ran_it():
    """Its cells record their nodes; the run names the submit host as that only."""
    kind = backend_kind("slurm")
    assert not kind.on_this_host
    host = kind.run_host(object())  # type: ignore[arg-type]
    assert set(host) == {"backend", "submit_host"} and "hostname" not in host
