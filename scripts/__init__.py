"""Benchmarks and model-building scripts. Run from the repository root, either as a file
(``python scripts/bench_x.py``) or as a module (``python -m scripts.bench_x``); shared pieces live in
:mod:`scripts.common`."""
