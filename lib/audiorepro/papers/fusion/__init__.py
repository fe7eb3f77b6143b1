"""Multilayer fusion: D. Niizumi et al., *Composing General Audio Representation by Fusing
Multilayer Features of a Pre-trained Model*, EUSIPCO 2022.

* :mod:`.model` - Eqs. 1-3 (time max-pooling and flattening, fusion, mean + max pooling) and the
  layer framing of each backbone (pure tensor functions);
* :mod:`.data` - the nine downstream tasks: offline analogues from real Debian recordings, or the
  paper's datasets in EVAR layout;
* :mod:`.prepare` - EVAR's preparation of that layout from the official downloads (16 kHz audio,
  EVAR's metadata CSVs);
* :mod:`.experiments` - backbone setups, cached per-layer embeddings, the linear evaluation, the
  paper's layer choice, Table III comparisons, result records and verdicts;
* :mod:`.figures` - layer-wise heatmaps and the fusion-gain bars;
* ``paper.yml`` - the paper's own numbers and claims.
"""
from .data import (ANALOGUES, MUSIC_STYLES, TaskUnavailable, apply_channel, common_level_db,
                   equalise_levels, fusion_tasks, load_tasks, music_style_table, notebook_tasks,
                   paper_tasks, session_channel, shortcut_table, simulate_sessions, subsample,
                   task_overview, user_task)
from .experiments import (AST_BASELINE, FC1_BASELINE, LAYER_CLAIMS, SELECTED_ON_TEST, BackboneSetup, FusedRow,
                          FusionComparison, LayerEmbedder, LayerwiseRun, LinearEvalResult,
                          TaskOutputs, accuracy_matrix, accuracy_record, cached_layerwise,
                          ast_norm_stats, cached_layerwise_outputs, checkpoint_setup, choose_fusion_layers,
                          compare_fusion, control_curves,
                          decide_claims, embed_table, fusion_layers, embed_tasks, evaluate_task, group_means,
                          latest_table3, layer_trend_bootstrap, layer_trend_table,
                          layer_trend_verdict, layerwise_accuracy, layerwise_runs, linear_eval,
                          paper_layers, paper_table, paper_table4, peak_layers, peak_table, pretraining_gain_table,
                          random_controls, record_layerwise,
                          record_row, record_table3, resolution_table, seed_record, table3_frames, task_groups)
from .prepare import EVAR_UNIT_SECONDS, evar_metadata, prepare_evar_layout
from .figures import plot_control_curves, plot_fusion_gain, plot_layer_heatmap, plot_layer_heatmaps
from .model import (LATE_TASKS, PAPER_FUSION_LAYERS, PAPER_TASKS, FusionError, eq1_time_features,
                    eq2_fuse, eq3_pool, fused_embedding, layer_embeddings, layer_features)

__all__ = [
    # data
    "ANALOGUES", "MUSIC_STYLES", "TaskUnavailable", "fusion_tasks", "load_tasks",
    "music_style_table", "notebook_tasks", "paper_tasks", "shortcut_table", "subsample", "task_overview",
    "user_task", "EVAR_UNIT_SECONDS", "evar_metadata", "prepare_evar_layout", "apply_channel",
    "common_level_db", "equalise_levels", "session_channel", "simulate_sessions",
    # model
    "LATE_TASKS", "PAPER_FUSION_LAYERS", "PAPER_TASKS", "FusionError", "eq1_time_features",
    "eq2_fuse", "eq3_pool", "fused_embedding", "layer_embeddings", "layer_features",
    # experiments
    "AST_BASELINE", "FC1_BASELINE", "LAYER_CLAIMS", "SELECTED_ON_TEST", "BackboneSetup", "FusedRow", "FusionComparison",
    "LayerEmbedder", "LayerwiseRun", "LinearEvalResult", "TaskOutputs", "accuracy_matrix",
    "accuracy_record", "ast_norm_stats", "cached_layerwise", "cached_layerwise_outputs", "checkpoint_setup", "choose_fusion_layers",
    "compare_fusion", "control_curves", "decide_claims", "embed_table", "fusion_layers", "embed_tasks", "evaluate_task",
    "group_means", "latest_table3", "layer_trend_bootstrap", "layer_trend_table",
    "layer_trend_verdict", "layerwise_accuracy", "layerwise_runs", "linear_eval", "paper_layers",
    "paper_table", "paper_table4", "peak_layers", "peak_table", "pretraining_gain_table",
    "random_controls", "record_layerwise", "record_row",
    "record_table3", "resolution_table", "seed_record", "table3_frames", "task_groups",
    # figures
    "plot_control_curves", "plot_fusion_gain", "plot_layer_heatmap", "plot_layer_heatmaps",
]
