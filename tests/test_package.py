import subprocess
import sys

import gnn_audio


def test_version_attribute():
    assert isinstance(gnn_audio.__version__, str)
    assert gnn_audio.__version__.count(".") >= 2


def test_cli_version():
    out = subprocess.run([sys.executable, "-m", "gnn_audio.cli", "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"gnn-audio {gnn_audio.__version__}"


def test_pyg_stack_imports_and_runs():
    import torch
    import torch_cluster
    import torch_scatter
    import torchaudio
    import torch_geometric  # noqa: F401

    x = torch.rand(32, 3)
    edge_index = torch_cluster.knn_graph(x, k=4)
    assert edge_index.shape == (2, 32 * 4)
    out, arg = torch_scatter.scatter_max(torch.tensor([1.0, 3.0, 2.0]), torch.tensor([0, 0, 1]))
    assert out.tolist() == [3.0, 2.0] and arg.tolist() == [1, 2]
    fb = torchaudio.compliance.kaldi.fbank(torch.randn(1, 16000), num_mel_bins=40)
    assert fb.shape == (98, 40)
