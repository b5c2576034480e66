"""features -> graph: spectrogram kNN graphs and label co-occurrence graphs."""
from gnn_audio.graph.batch import (batch_to_feature_map, feature_map_to_batch,
                                   feature_map_to_nodes, nodes_to_feature_map)
from gnn_audio.graph.cooccurrence import (adjacency_to_graph, cooccurrence_adjacency,
                                          cooccurrence_graph, label_cooccurrence_counts)
from gnn_audio.graph.grid import GridKnnGraph, grid_knn_graph, pooled_keys
from gnn_audio.graph.knn import knn, knn_graph

__all__ = ["feature_map_to_batch", "batch_to_feature_map", "feature_map_to_nodes",
           "nodes_to_feature_map", "knn", "knn_graph", "grid_knn_graph", "GridKnnGraph",
           "pooled_keys", "cooccurrence_adjacency", "cooccurrence_graph", "adjacency_to_graph",
           "label_cooccurrence_counts"]
