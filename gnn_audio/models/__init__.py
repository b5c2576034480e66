"""graph -> model: ATGNN, AT-GCN, CNN10 and the embedding baselines."""
from gnn_audio.models.atgnn import ATGNN
from gnn_audio.models.vig_weights import load_vig_imagenet

__all__ = ["ATGNN", "load_vig_imagenet"]
