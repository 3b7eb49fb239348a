"""Measurements of the product itself (harness ÷ bare, container overhead, the gate's error rates, store scale).

Each script runs from the repository root as `python -m bench.<name>`, importing `orchestrator` and
`workloads` like any other user of the package.
"""
