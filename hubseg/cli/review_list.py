"""The review list printed by ``hubseg detect`` and ``hubseg demo``: most uncertain first."""

from __future__ import annotations


def review_table(result, limit: int | None = None) -> str:
    """The review list as a text table: most uncertain first (with a ``score`` column when the model has a
    review score, which then sets the order)."""
    rows = result.review_rows()
    scored = bool(rows) and all(row["review_score"] is not None for row in rows)
    score_head = f" {'score':>6}" if scored else ""
    header = (f"{'review':>6}  {'class':<24}{score_head} {'energy':>8} {'prob':>6} {'area µm²':>10} "
              f"{'centre x,y (level-0 px)':>24}")
    lines = [header, "-" * len(header)]
    for position, row in enumerate(rows[:limit] if limit else rows, start=1):
        centre = "%.0f,%.0f" % (row["x"], row["y"])
        score = f" {row['review_score']:>6.3f}" if scored else ""
        lines.append(
            f"{position:>6}  {row['class']:<24.24}{score} {row['energy']:>8.3f} {row['probability']:>6.3f} "
            f"{row['area_um2']:>10.0f} {centre:>24}"
        )
    if not rows:
        lines.append("(no objects found)")
    return "\n".join(lines)


def gate_text(result) -> str:
    """Which gate marks objects uncertain: the review score's (when the card has a review model) or energy's."""
    if result.review_gate:
        return f"review-score gate {result.review_gate.get('cutoff'):g} (uncertain below)"
    if result.energy_gate:
        return f"energy gate {result.energy_gate.get('cutoff')}"
    return "no gate (the model card has none)"
