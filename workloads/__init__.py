"""Benchmark workloads that run inside framework containers.

This package is copied into every framework image and run as ``python -m workloads``.
It depends only on the standard library, NumPy and the framework under test, which
each adapter imports lazily so that ``--help`` works in any image.
"""
