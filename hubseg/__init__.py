"""hubseg: whole-slide glomeruli segmentation with energy scores, for human-in-the-loop review in QuPath."""

__version__ = "0.1.0"
