import pytest
import torch

from gnn_audio.graph import GridKnnGraph
from gnn_audio.models import ATGNN
from gnn_audio.models.atgnn import dilation_schedule, knn_schedule
from gnn_audio.zoo import (atgnn_iso, atgnn_iso_nomlg, atgnn_pyr_med, atgnn_pyr_med_nomlg,
                           atgnn_pyr_s, atgnn_pyr_s_nomlg, atgnn_pyr_t, atgnn_pyr_t_nomlg,
                           create_model)
from gnn_audio.zoo.summary import count_macs, count_parameters


@pytest.mark.parametrize("entry,target,tol", [
    (atgnn_pyr_s, 35_427_112, 0.01),        # authors' implementation
    (atgnn_pyr_s_nomlg, 26_835_672, 0.01),  # authors' implementation
    (atgnn_pyr_med, 62.7e6, 0.05),          # paper
    (atgnn_pyr_med_nomlg, 51.2e6, 0.05),    # paper
    (atgnn_iso, 38.7e6, 0.05),              # paper
])
def test_parameter_counts(entry, target, tol):
    n = count_parameters(entry(num_classes=200))
    assert abs(n - target) / target <= tol, (n, target)


def test_pyr_s_parameters_match_the_reference_exactly():
    assert count_parameters(atgnn_pyr_s()) == 35_427_112
    assert count_parameters(atgnn_pyr_s_nomlg()) == 26_835_672


@pytest.mark.parametrize("entry,paper_gflops", [(atgnn_pyr_s, 14.72), (atgnn_pyr_s_nomlg, 12.94)])
def test_macs_close_to_paper(entry, paper_gflops):
    macs = count_macs(entry(), torch.randn(1, 1024, 128)) / 1e9
    assert abs(macs - paper_gflops) / paper_gflops <= 0.10, macs


def test_schedules_follow_vision_gnn():
    assert knn_schedule(9, 12, rising=False) == [9] * 12
    assert knn_schedule(9, 16, rising=True)[0] == 9 and knn_schedule(9, 16, True)[-1] == 18
    assert dilation_schedule([9] * 12, 49) == [1] * 4 + [2] * 4 + [3] * 4
    assert max(dilation_schedule([9] * 22, 49)) == 5  # cap 49 // 9
    model = atgnn_pyr_s()
    graphs = [m for m in model.modules() if isinstance(m, GridKnnGraph)]
    assert [g.config.reduce_ratio for g in graphs] == [4, 4, 2, 2] + [1] * 8
    # the authors' relative-position table by default (issue 19)
    assert all(g.config.k == 9 and g.config.relative_pos == "reference" for g in graphs)
    assert [g.config.dilation for g in graphs] == [1] * 4 + [2] * 4 + [3] * 4
    assert [g.grid for g in graphs] == [(32, 256)] * 2 + [(16, 128)] * 2 + [(8, 64)] * 6 + [(4, 32)] * 2


def test_nomlg_has_no_label_parameters_and_mlg_changes_logits():
    plain = atgnn_pyr_t_nomlg()
    assert not [n for n, _ in plain.named_parameters() if "label" in n or "mlg" in n]
    torch.manual_seed(0)
    model = atgnn_pyr_t().eval()
    x = torch.randn(2, 400, 128)
    with torch.no_grad():
        feats, labels = model.forward_features(x)
        full = model.forward_head(feats, labels)
        patch_only = model.forward_head(feats, None)
        label_part = full - patch_only
        assert label_part.abs().mean() > 0.1 * patch_only.abs().mean()
        model.label_embed.add_(torch.randn_like(model.label_embed))
        assert not torch.allclose(model(x), full, atol=1e-3)


def test_any_number_of_frames_and_determinism():
    torch.manual_seed(1)
    model = atgnn_pyr_t().eval()
    with torch.no_grad():
        for frames in (1024, 1056, 300, 100):
            x = torch.randn(2, frames, 128)
            a, b = model(x), model(x)
            assert a.shape == (2, 200) and torch.isfinite(a).all()
            assert torch.equal(a, b)  # eval mode is deterministic
        # the [B, 1, mel, frames] layout gives the same logits
        x = torch.randn(2, 300, 128)
        torch.testing.assert_close(model(x), model(x.transpose(1, 2).unsqueeze(1)))
    assert model.position_embedding((8, 25)).shape == (1, 48, 8, 25)


def test_isotropic_layout():
    model = atgnn_iso_nomlg()
    graphs = [m for m in model.modules() if isinstance(m, GridKnnGraph)]
    assert [g.config.k for g in graphs][0] == 9 and [g.config.k for g in graphs][-1] == 18
    assert not any(g.config.relative_pos for g in graphs)
    assert all(g.config.reduce_ratio == 1 for g in graphs)
    assert model.pos_embed.shape == (1, 320, 8, 64)  # N = F * T / 256 = 512 nodes


def test_bad_arguments():
    with pytest.raises(ValueError):
        ATGNN(arch="cube")
    with pytest.raises(ValueError):
        ATGNN(channels=[80, 160], blocks=[2, 2, 6, 2])
    with pytest.raises(ValueError):
        atgnn_pyr_t()(torch.randn(2, 3, 128, 100))


@pytest.mark.parametrize("arch, size, stride", [("pyramid", (3, 128), 4),
                                                ("pyramid", (64, 2), 4),
                                                ("isotropic", (15, 128), 16)])
def test_an_input_smaller_than_the_stem_is_one_line(arch, size, stride):
    with pytest.raises(ValueError) as err:
        ATGNN(num_classes=3, arch=arch, input_size=size,
              channels=[8, 16, 24, 32] if arch == "pyramid" else [16],
              blocks=[1, 1, 1, 1] if arch == "pyramid" else [1], mlg=False)
    assert f"needs at least {stride} frames and {stride} mel bins" in str(err.value)
    assert "\n" not in str(err.value)
    smallest = ATGNN(num_classes=3, arch=arch, input_size=(stride, stride),
                     channels=[8, 16, 24, 32] if arch == "pyramid" else [16],
                     blocks=[1, 1, 1, 1] if arch == "pyramid" else [1], mlg=False).eval()
    assert smallest(torch.randn(1, stride, stride)).shape == (1, 3)


@pytest.mark.parametrize("name", ["atgnn_pyr_s", "atgnn_iso"])
def test_builds_under_the_meta_device(name):
    """Its schedules are computed on the CPU whatever the default device, so a model can be
    built on meta (the trainer sizes its checkpoints that way before any audio is decoded)."""
    with torch.device("meta"):
        model = create_model(name, num_classes=10)
    assert {p.device.type for p in model.parameters()} == {"meta"}


def test_pyr_s_graphs_are_the_authors_at_1024_by_128():
    """atgnn_pyr_s builds the authors' graphs by default: every stage's relative-position
    term is the reference code's table (an independent numpy computation of it, see
    tests/graph/test_grid.py) at 128 mel x 1024 frames, and a stage-1 graph equals the brute
    force over normalised nodes, floor-pooled keys and that table."""
    from ..graph.test_grid import np_reference_table

    model = atgnn_pyr_s(num_classes=4)
    assert model.knn_config.relative_pos == "reference"
    graphs = {g.grid: g for g in model.modules() if isinstance(g, GridKnnGraph)}
    widths = {(32, 256): 80, (16, 128): 160, (8, 64): 400, (4, 32): 640}
    ratios = {(32, 256): 4, (16, 128): 2, (8, 64): 1, (4, 32): 1}
    for grid, graph in graphs.items():
        want = np_reference_table(grid[0] * grid[1], ratios[grid], widths[grid])
        torch.testing.assert_close(graph.pos_term, want, rtol=0, atol=2e-6)
    graph, table = graphs[(32, 256)], graphs[(32, 256)].pos_term.double()
    x = torch.randn(1, 80, 32, 256, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(0))
    _, _, nbr = graph(x)  # float64: no near-ties between the GEMM and cdist below
    q = torch.nn.functional.normalize(x[0].flatten(1).t(), dim=1)
    k = torch.nn.functional.normalize(
        torch.nn.functional.avg_pool2d(x, 4, 4)[0].flatten(1).t(), dim=1)
    want = ((torch.cdist(q, k) ** 2 + table).topk(9, largest=False).indices).sort(1).values
    assert torch.equal(nbr.index.sort(1).values, want)
