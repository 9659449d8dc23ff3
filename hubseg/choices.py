"""Option choices shared by the library, the CLI and the server: one list each (import-light, no torch).

``hubseg.inference`` re-exports them, so ``hubseg.inference.TTA_MODES`` is this same tuple.
"""

#: Test-time augmentation: none = 1 pass, h = + horizontal flip (2), flips = + vertical flip (3),
#: all = + both flips (4 passes).
TTA_MODES = ("none", "h", "flips", "all")
#: "model" = the card's ``stain_normalization`` (None → no normalisation); the others override it.
STAIN_NORMALIZATION_CHOICES = ("model", "none", "macenko", "reinhard")
