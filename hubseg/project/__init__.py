"""QuPath project batch work (paquo) and the review-state rules around it."""
