import pytest
import torch

from gnn_audio.train.recipe import get_recipe
from gnn_audio.train.schedule import lr_factor, make_scheduler


def test_warmup_is_linear_over_the_first_steps():
    assert [lr_factor(s, 100, warmup_steps=4) for s in range(6)] == [0.25, 0.5, 0.75, 1, 1, 1]


def test_halving_every_five_epochs_after_epoch_ten():
    factors = [lr_factor(e * 10, 10, decay_start=10, decay_every=5) for e in range(25)]
    assert factors[:10] == [1.0] * 10          # epochs 1-10 (1-based)
    assert factors[10:15] == [0.5] * 5         # epochs 11-15
    assert factors[15:20] == [0.25] * 5
    assert factors[20] == 0.125


def test_scheduler_follows_the_recipe_per_step():
    base = get_recipe("atgnn_fsd50k")
    recipe = base.replace(optim=base.optim.replace(warmup_steps=3, lr_decay_start=1,
                                                   lr_decay_every=1))
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=recipe.optim.lr)
    sched = make_scheduler(opt, steps_per_epoch=4, recipe=recipe)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [recipe.optim.lr * f for f in (1 / 3, 2 / 3, 1, 1, .5, .5, .5, .5, .25, .25)]
    assert seen == pytest.approx(expected)
