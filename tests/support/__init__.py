"""Helpers the tests share: a real server process and OpenAPI validation (server), tiny training data and
models (training), QuPath projects through paquo (paquo), in-memory project stores (fakes)."""
