"""Differential privacy for a query's counts, with OpenDP's vetted mechanism (no hand-rolled noise).

A query releases a vector of counts. One person changes each count of a period by at most one
(daily distinct users, or a period's busiest day), and appears in every period of the series and
in at most `cells_per_person` cells of each period: so the vector's L1 sensitivity is
`periods * cells_per_person`. OpenDP's discrete Laplace mechanism is built for that sensitivity
and the epsilon the analyst spends, and OpenDP's own privacy map checks the guarantee.
"""

from __future__ import annotations

from collections.abc import Sequence

import opendp.prelude as dp

dp.enable_features("contrib")


def noisy_counts(counts: Sequence[int], sensitivity: int, epsilon: float) -> list[int]:
    """`counts` with discrete Laplace noise giving `epsilon`-DP for L1 `sensitivity`; never negative."""
    if not counts:
        return []
    space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
    measurement = space >> dp.m.then_laplace(scale=sensitivity / epsilon)
    # OpenDP states the guarantee for this sensitivity; refuse if it is weaker than asked.
    if measurement.map(sensitivity) > epsilon * (1 + 1e-9):
        raise RuntimeError("the noise does not give the epsilon asked for")
    # Clamping at zero is post-processing: it costs no privacy.
    return [max(0, int(c)) for c in measurement(list(counts))]
