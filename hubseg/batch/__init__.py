"""Cohort runs: detect glomeruli in many slides with a local process pool or a Ray cluster (``hubseg batch``).

The driver (:func:`hubseg.batch.runner.run_batch`) lists the slides, skips finished ones on ``resume``,
hands one slide per task to workers that each load the model once (:mod:`hubseg.batch.worker`), and
writes ``summary.csv``/``summary.json`` (:mod:`hubseg.batch.summary`). It never reads pixels.
"""

from hubseg.batch.inputs import BatchItem, collect_inputs
from hubseg.batch.worker import BatchConfig, ModelSpec

__all__ = ["BatchItem", "BatchConfig", "ModelSpec", "collect_inputs"]
