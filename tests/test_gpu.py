"""CUDA checks (marker ``gpu``: skipped cleanly where no CUDA device is present)."""
import pytest
import torch

from gnn_audio.graph import grid_knn_graph, knn_graph
from gnn_audio.nn import LabelLabelConv, MaxRelativeConv, PatchLabelConv
from gnn_audio.zoo import atgnn_pyr_t

pytestmark = pytest.mark.gpu


def test_knn_backends_agree_on_cuda():
    torch.manual_seed(0)
    x = torch.randn(3, 80, 16, 32, device="cuda")
    for r, d in ((4, 1), (1, 2)):
        outs = [grid_knn_graph(x, 9, dilation=d, reduce_ratio=r, relative_pos=True,
                               backend=b)[2].index for b in ("dense", "cluster")]
        assert torch.equal(outs[0], outs[1])
        cpu = grid_knn_graph(x.cpu(), 9, dilation=d, reduce_ratio=r, relative_pos=True,
                             backend="dense")[2].index
        assert torch.equal(outs[0].cpu(), cpu)
    with pytest.raises(ValueError, match="at most 100"):
        knn_graph(torch.randn(500, 8, device="cuda"), 30, dilation=4, backend="cluster")


def test_layers_match_cpu():
    torch.manual_seed(1)
    x = torch.randn(200, 16)
    ei = knn_graph(x, 6, loop=True)
    conv = MaxRelativeConv(16, 32, groups=4, norm="batch", act="gelu").eval()
    ref = conv(x, ei)
    out = conv.cuda()(x.cuda(), knn_graph(x.cuda(), 6, loop=True))
    torch.testing.assert_close(out.cpu(), ref, atol=1e-4, rtol=1e-4)
    plg = PatchLabelConv(16, 5).eval()
    labels = torch.randn(10, 16)
    ref = plg((x, labels))
    torch.testing.assert_close(plg.cuda()((x.cuda(), labels.cuda())).cpu(), ref, atol=1e-4,
                               rtol=1e-4)
    llg = LabelLabelConv(10)
    ref = llg(labels)
    torch.testing.assert_close(llg.cuda()(labels.cuda()).cpu(), ref, atol=1e-5, rtol=1e-5)


def test_atgnn_trains_under_bf16_on_cuda():
    torch.manual_seed(2)
    model = atgnn_pyr_t(llg_adjacency="softmax").cuda()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    x = torch.randn(4, 1024, 128, device="cuda")
    y = (torch.rand(4, 200, device="cuda") < 0.02).float()
    for _ in range(5):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)


def test_atgnn_compiles_fullgraph_on_cuda():
    torch.manual_seed(3)
    model = atgnn_pyr_t().cuda().eval()
    model.check_finite = False
    x = torch.randn(2, 256, 128, device="cuda")
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-3, atol=1e-3 * float(model(x).abs().max()))
