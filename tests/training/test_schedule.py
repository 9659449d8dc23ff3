"""The LR schedule must survive the very short runs a quick fine-tune produces."""

import pytest
import torch

from hubseg.training.recipe import one_cycle_schedule


@pytest.mark.parametrize("total_steps", [1, 2, 3, 4, 5, 8, 40])
def test_one_cycle_schedule_runs_every_step_with_finite_rates(total_steps):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=1e-3)
    scheduler = one_cycle_schedule(optimizer, 1e-3, total_steps)
    used = []  # the rate each optimizer step actually used
    for _ in range(total_steps):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert all(0 < rate <= 1e-3 * (1 + 1e-9) for rate in used)
    if total_steps >= 3:
        # a real cycle: warm up to max_lr, then anneal
        assert used[0] < max(used) and used[-1] < max(used)
        assert max(used) == pytest.approx(1e-3, rel=1e-6)
    else:
        assert used == [1e-3] * total_steps
