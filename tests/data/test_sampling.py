"""gnn_audio.data.sampling: PSLA's balanced weights, rank shares, resumable state."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torch.utils.data import DataLoader, Dataset

from gnn_audio.data.sampling import (BalancedSampler, ShardedEvalSampler, ShuffleSampler,
                                     balanced_weights)


def _psla_weights(targets: np.ndarray) -> np.ndarray:
    """PSLA's gen_weight_file.py, label by label."""
    n, s = targets.shape
    label_count = np.zeros(s)
    for i in range(n):
        for c in range(s):
            if targets[i, c]:
                label_count[c] += 1
    label_weight = 1000.0 / (label_count + 0.01)
    weights = np.zeros(n)
    for i in range(n):
        for c in range(s):
            if targets[i, c]:
                weights[i] += label_weight[c]
    return weights


def test_balanced_weights_equal_psla():
    rng = np.random.default_rng(0)
    targets = (rng.random((50, 8)) < 0.2).astype(np.float32)
    targets[3] = 0  # a clip without labels
    expected = _psla_weights(targets)
    np.testing.assert_allclose(balanced_weights(targets), expected, rtol=1e-12)
    np.testing.assert_allclose(balanced_weights(torch.from_numpy(targets)), expected, rtol=1e-12)
    assert balanced_weights(targets)[3] == 0.0


@pytest.mark.parametrize("targets, match", [
    (np.zeros(5), r"targets must be \[N, S\]"),
    (np.full((2, 2), np.nan), "finite values"),
    (np.full((2, 2), 3.0), "finite values"),
])
def test_balanced_weights_bad_input(targets, match):
    with pytest.raises(ValueError, match=match):
        balanced_weights(targets)


def test_draws_are_proportional_to_weights():
    weights = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 10.0])
    sampler = BalancedSampler(weights, num_samples=100_000, seed=1)
    counts = np.bincount(list(sampler), minlength=len(weights))
    assert counts.sum() == 100_000 and counts[4] == 0  # weight 0: never drawn
    expected = weights / weights.sum() * counts.sum()
    kept = weights > 0
    assert stats.chisquare(counts[kept], expected[kept]).pvalue > 1e-3
    np.testing.assert_allclose(counts / counts.sum(), weights / weights.sum(), atol=0.005)


def test_balanced_sampling_balances_labels():
    # class 0 on 90 clips, class 1 on 10: balanced draws give each class about half
    targets = np.zeros((100, 2))
    targets[:90, 0] = 1
    targets[90:, 1] = 1
    sampler = BalancedSampler(balanced_weights(targets), num_samples=20_000, seed=0)
    drawn = np.array(list(sampler))
    assert abs((drawn >= 90).mean() - 0.5) < 0.02


def test_same_seed_and_epoch_same_draws_others_differ():
    w = np.ones(50)
    a, b = BalancedSampler(w, seed=3), BalancedSampler(w, seed=3)
    assert list(a) == list(b) and list(a) == list(a)  # iterating again repeats the epoch
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    # (seed, epoch) = (0, 1) and (1, 0) are different streams (not seed + epoch)
    s01, s10 = BalancedSampler(w, seed=0), BalancedSampler(w, seed=1)
    s01.set_epoch(1)
    assert list(s01) != list(s10)


@pytest.mark.parametrize("num_samples", [1000, 1001])
def test_two_ranks_disjoint_and_covering(num_samples):
    w = np.random.default_rng(0).random(40)
    single = BalancedSampler(w, num_samples, seed=5)
    ranks = [BalancedSampler(w, num_samples, rank=r, world_size=2, seed=5) for r in range(2)]
    for epoch in (0, 4):
        for s in (single, *ranks):
            s.set_epoch(epoch)
        shares = [list(s) for s in ranks]
        total = ranks[0].total_size
        assert total == 2 * ((num_samples + 1) // 2) and len(ranks[0]) == total // 2
        assert [len(x) for x in shares] == [total // 2] * 2
        # positions rank::2 of one epoch sequence: disjoint positions, together all of them
        merged = [None] * total
        merged[0::2], merged[1::2] = shares
        if num_samples % 2 == 0:  # same sequence as a single process drawing num_samples
            assert merged == list(single)
        full = BalancedSampler(w, total, seed=5)
        full.set_epoch(epoch)
        assert merged == list(full)


def test_resume_mid_epoch_reproduces_the_rest():
    w = np.random.default_rng(1).random(30) + 0.1
    ref = BalancedSampler(w, 101, seed=2, world_size=1)
    ref.set_epoch(3)
    expected = list(ref)

    s = BalancedSampler(w, 101, seed=2)
    s.set_epoch(3)
    it = iter(s)
    head = [next(it) for _ in range(37)]
    state = s.state_dict()
    assert state == {"epoch": 3, "position": 37, "seed": 2, "rank": 0, "world_size": 1,
                     "total_size": 101, "num_clips": 30}

    resumed = BalancedSampler(w, 101, seed=2)
    resumed.load_state_dict(state)
    resumed.set_epoch(3)  # the training loop sets the epoch again: the position stays
    assert len(resumed) == 101
    rest = iter(resumed)
    middle = [next(rest) for _ in range(20)]
    assert resumed.state_dict()["position"] == 57  # counted from the epoch's start
    assert head + middle + list(rest) == expected
    assert resumed.state_dict()["position"] == 101
    resumed.set_epoch(4)  # a new epoch starts at its beginning
    assert resumed.state_dict()["position"] == 0 and len(list(resumed)) == 101


def test_resume_on_every_rank_from_rank_zero_state():
    w = np.arange(1, 21, dtype=float)
    ranks = [BalancedSampler(w, 64, rank=r, world_size=2, seed=0) for r in range(2)]
    full = [list(s) for s in ranks]
    state = ranks[0].state_dict(consumed=10)
    for r in range(2):
        s = BalancedSampler(w, 64, rank=r, world_size=2, seed=0)
        s.load_state_dict(state)
        assert s.rank == r and list(s) == full[r][10:]


class _Indices(Dataset):
    def __len__(self):
        return 1000

    def __getitem__(self, i):
        return i


def test_state_with_consumed_batches_under_dataloader_prefetch():
    w = np.random.default_rng(2).random(50) + 0.01
    sampler = BalancedSampler(w, 96, seed=9)
    expected = list(sampler)
    loader = DataLoader(_Indices(), batch_size=4, sampler=sampler, num_workers=1,
                        prefetch_factor=4)
    it = iter(loader)
    used = [next(it).tolist() for _ in range(3)]
    assert sampler.state_dict()["position"] > 12  # the loader fetched ahead
    state = sampler.state_dict(consumed=3 * 4)
    del it
    assert state["position"] == 12

    resumed = BalancedSampler(w, 96, seed=9)
    resumed.load_state_dict(state)
    rest = [i for b in DataLoader(_Indices(), batch_size=4, sampler=resumed) for i in b.tolist()]
    assert sum(used, []) + rest == expected
    # consumed past the end (last batch multiplied out) is clipped to the epoch's end
    assert resumed.state_dict(consumed=10_000)["position"] == 96


@pytest.mark.parametrize("change, match", [
    ({"seed": 1}, "seed is 1 in the state, 0 here"),
    ({"world_size": 2}, "world_size is 2"),
    ({"total_size": 7}, "total_size is 7"),
    ({"num_clips": 11}, "num_clips is 11"),
    ({"position": 99}, "position 99 outside 0..10"),
])
def test_load_state_rejects_a_state_of_another_sampler(change, match):
    s = BalancedSampler(np.ones(10))
    state = {**s.state_dict(), **change}
    with pytest.raises(ValueError, match=match):
        s.load_state_dict(state)


@pytest.mark.parametrize("kwargs, match", [
    ({"weights": np.ones(5), "rank": 2, "world_size": 2}, "need 0 <= rank < world_size"),
    ({"weights": np.ones(5), "world_size": 0}, "need 0 <= rank < world_size"),
    ({"weights": np.zeros(5)}, "not all zero"),
    ({"weights": np.array([1.0, -1.0])}, "non-negative"),
    ({"weights": np.array([1.0, np.nan])}, "finite"),
    ({"weights": np.ones((2, 2))}, "1-D"),
    ({"weights": np.ones(0)}, "non-empty"),
    ({"weights": np.ones(5), "num_samples": 0}, "num_samples must be >= 1"),
])
def test_balanced_sampler_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BalancedSampler(**kwargs)


def test_state_dict_rejects_negative_consumed_and_epoch():
    s = BalancedSampler(np.ones(4))
    with pytest.raises(ValueError, match="consumed must be >= 0"):
        s.state_dict(consumed=-1)
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        s.set_epoch(-1)


@pytest.mark.parametrize("num_clips, world_size", [(7, 2), (8, 2), (3, 5)])
def test_shuffle_sampler_shares(num_clips, world_size):
    ranks = [ShuffleSampler(num_clips, rank=r, world_size=world_size, seed=1)
             for r in range(world_size)]
    for epoch in (0, 1):
        for s in ranks:
            s.set_epoch(epoch)
        shares = [list(s) for s in ranks]
        assert len({len(x) for x in shares}) == 1
        merged = [i for x in zip(*shares) for i in x]
        assert sorted(set(merged)) == list(range(num_clips))  # every clip, once per pass
        assert len(merged) - num_clips == (-num_clips) % world_size  # padding only
        assert len(set(merged[:num_clips])) == num_clips  # a permutation, then the padding
    single = ShuffleSampler(num_clips, seed=1)
    assert sorted(single) == list(range(num_clips))


def test_shuffle_sampler_resumes():
    s = ShuffleSampler(20, seed=4)
    s.set_epoch(2)
    expected = list(s)
    t = ShuffleSampler(20, seed=4)
    t.load_state_dict({**s.state_dict(consumed=5), "epoch": 2})
    assert list(t) == expected[5:]


@pytest.mark.parametrize("num_clips, world_size", [(10, 3), (9, 3), (2, 4), (0, 2), (5, 1)])
def test_sharded_eval_sampler_counts_every_clip_once(num_clips, world_size):
    shares = [list(ShardedEvalSampler(num_clips, rank=r, world_size=world_size))
              for r in range(world_size)]
    assert sum(shares, []) == list(range(num_clips))  # in order, no padding, no repeats
    sizes = [len(x) for x in shares]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    assert [len(ShardedEvalSampler(num_clips, rank=r, world_size=world_size))
            for r in range(world_size)] == sizes


def test_sharded_eval_sampler_bad_arguments():
    with pytest.raises(ValueError, match="need 0 <= rank < world_size"):
        ShardedEvalSampler(10, rank=3, world_size=3)
    with pytest.raises(ValueError, match="num_clips must be >= 0"):
        ShardedEvalSampler(-1)
