"""Multilayer fusion: D. Niizumi et al., *Composing General Audio Representation by Fusing
Multilayer Features of a Pre-trained Model*, EUSIPCO 2022.

* :mod:`.model` - Eqs. 1-3 (time max-pooling and flattening, fusion, mean + max pooling) and the
  layer framing of each backbone (pure tensor functions);
* :mod:`.data` - the nine downstream tasks: offline analogues from real Debian recordings, or the
  paper's datasets in EVAR layout;
* :mod:`.experiments` - backbone setups, cached per-layer embeddings, the linear evaluation, the
  paper's layer choice, Table III comparisons, result records and verdicts;
* :mod:`.figures` - layer-wise heatmaps and the fusion-gain bars;
* ``paper.yml`` - the paper's own numbers and claims.
"""
from .data import (ANALOGUES, MUSIC_STYLES, TaskUnavailable, fusion_tasks, load_tasks,
                   music_style_table, paper_tasks, subsample, task_overview)
from .experiments import (BackboneSetup, FusionComparison, LayerEmbedder, LinearEvalResult,
                          accuracy_matrix, accuracy_record, cached_layerwise, choose_fusion_layers,
                          compare_fusion, embed_table, embed_tasks, evaluate_task, group_means,
                          latest_table3, layer_trend_table, layer_trend_verdict,
                          layerwise_accuracy, layerwise_matrices, linear_eval, paper_table4,
                          peak_layers, peak_table, record_layerwise, record_table3,
                          register_layer_verdict, register_standin_gtzan_verdict,
                          register_standin_layer_verdict, table3_frames, task_groups)
from .figures import plot_fusion_gain, plot_layer_heatmap, plot_layer_heatmaps
from .model import (LATE_TASKS, PAPER_FUSION_LAYERS, PAPER_TASKS, FusionError, eq1_time_features,
                    eq2_fuse, eq3_pool, fused_embedding, layer_embeddings, layer_features)

__all__ = [
    # data
    "ANALOGUES", "MUSIC_STYLES", "TaskUnavailable", "fusion_tasks", "load_tasks",
    "music_style_table", "paper_tasks", "subsample", "task_overview",
    # model
    "LATE_TASKS", "PAPER_FUSION_LAYERS", "PAPER_TASKS", "FusionError", "eq1_time_features",
    "eq2_fuse", "eq3_pool", "fused_embedding", "layer_embeddings", "layer_features",
    # experiments
    "BackboneSetup", "FusionComparison", "LayerEmbedder", "LinearEvalResult", "accuracy_matrix",
    "accuracy_record", "cached_layerwise", "choose_fusion_layers", "compare_fusion",
    "embed_table", "embed_tasks", "evaluate_task", "group_means", "latest_table3",
    "layer_trend_table", "layer_trend_verdict", "layerwise_accuracy", "layerwise_matrices",
    "linear_eval", "paper_table4", "peak_layers", "peak_table", "record_layerwise",
    "record_table3", "register_layer_verdict", "register_standin_gtzan_verdict",
    "register_standin_layer_verdict", "table3_frames", "task_groups",
    # figures
    "plot_fusion_gain", "plot_layer_heatmap", "plot_layer_heatmaps",
]
