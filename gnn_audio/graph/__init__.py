"""features -> graph: kNN graphs over spectrogram patches (label graphs: gnn_audio.labels)."""
from gnn_audio.graph.batch import (batch_to_feature_map, feature_map_to_batch,
                                   feature_map_to_nodes, nodes_to_feature_map)
from gnn_audio.graph.config import KnnConfig
from gnn_audio.graph.grid import GridKnnGraph, grid_knn_graph, pooled_keys
from gnn_audio.graph.knn import knn, knn_graph, knn_index
from gnn_audio.graph.neighbor_index import NeighborIndex

__all__ = ["feature_map_to_batch", "batch_to_feature_map", "feature_map_to_nodes",
           "nodes_to_feature_map", "knn", "knn_graph", "grid_knn_graph", "GridKnnGraph",
           "pooled_keys", "KnnConfig", "NeighborIndex", "knn_index"]
