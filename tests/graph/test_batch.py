import torch

from gnn_audio.graph import batch_to_feature_map, feature_map_to_batch


def test_roundtrip_and_layout():
    x = torch.randn(3, 5, 4, 6)
    data = feature_map_to_batch(x)
    assert data.num_graphs == 3 and data.x.shape == (72, 5)
    assert data.batch.tolist() == sum([[b] * 24 for b in range(3)], [])
    assert data.ptr.tolist() == [0, 24, 48, 72]
    # node b*H*W + h*W + w holds x[b, :, h, w], pos holds (h, w)
    assert torch.equal(data.x[1 * 24 + 2 * 6 + 5], x[1, :, 2, 5])
    assert data.pos[1 * 24 + 2 * 6 + 5].tolist() == [2.0, 5.0]
    back = batch_to_feature_map(data)
    assert torch.equal(back, x)
    graphs = data.to_data_list()
    assert len(graphs) == 3 and torch.equal(graphs[2].x, x[2].permute(1, 2, 0).reshape(24, 5))


def test_no_copies_for_channels_last():
    x = torch.randn(2, 8, 4, 4).contiguous(memory_format=torch.channels_last)
    data = feature_map_to_batch(x)
    assert data.x.data_ptr() == x.data_ptr()
    back = batch_to_feature_map(data, data.x * 2)
    assert back.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(back, 2 * x)
