"""THGCL: temporal heterogeneous graph contrastive learning for audio-visual event classification.

Paper: Y. Chen, Y. Xiao, J. Huang, *Temporal Heterogeneous Graph Contrastive Learning for
Multimodal Acoustic Event Classification* (in Chinese); its printed numbers are in ``paper.yml``.

* :mod:`.model` - the temporal heterogeneous graph (Eqs. 1-2), the THGN layers and model, the
  focal / NT-Xent losses (Eqs. 4-5), the chapter's variants and parameter counts;
* :mod:`.data` - node features: the synthetic audio-visual world (VGGish segment embeddings,
  projected pseudo-visual vectors), the real TMac feature file and a user's clip table of
  features (both read streaming);
* :mod:`.experiments` - training with :func:`audiorepro.training.fit`, run caches, evaluation,
  recording per seed with per-item outputs (Tables 1-2, Fig. 3, the robustness sweep, parameter
  counts) and the verdicts (:func:`decide_claims`);
* :mod:`.figures` - the chapter's plots.

Notebooks: ``from audiorepro.papers import thgcl`` and call ``thgcl.<name>``.
"""
from .data import (CLIP_TABLE_FORMAT, AVFeatures, H5Array, StreamedAVFeatures,
                   audio_segment_embeddings, av_collate, chapter_features, clip_table_av_features,
                   evaluation_set_split, load_audio_encoder, node_statistics, project_visual,
                   stratified_split, synthetic_av_features, tmac_av_features, world_features,
                   youtube_id_of)
from .experiments import (BALANCE_MODELS, BALANCE_SETTINGS, CLAIMS_BY_NOTEBOOK, balanced_setting,
                          chance_table, modality_balance, decide_claims, edge_weight_summary,
                          evaluate_model, kernel_ablation, leader_share, node_weight_table,
                          predict_scores, record_param_counts, robustness_conditions,
                          robustness_sweep, run_variants, seed_summary, train_config, train_variant)
from .figures import (balance_figure, draw_graph, graph_panels, weight_matrices, plot_curves, robustness_figure,
                      table1_figure, table2_figure)
from .model import (THGN, VARIANTS, GraphConfig, TemporalGraph, THGCLError, build_graph, build_variant,
                    edge_weights, focal_loss, gaussian_weights, hawkes_weights, make_batch_fn, nt_xent,
                    paper_layer_counts, parameter_table)

__all__ = [
    "CLIP_TABLE_FORMAT", "AVFeatures", "H5Array", "StreamedAVFeatures", "clip_table_av_features",
    "node_statistics", "stratified_split", "audio_segment_embeddings", "av_collate", "chapter_features",
    "load_audio_encoder", "project_visual", "synthetic_av_features", "tmac_av_features",
    "world_features", "evaluation_set_split", "youtube_id_of", "BALANCE_MODELS", "BALANCE_SETTINGS",
    "balanced_setting", "modality_balance", "CLAIMS_BY_NOTEBOOK", "chance_table", "decide_claims", "edge_weight_summary",
    "evaluate_model", "kernel_ablation", "leader_share", "node_weight_table", "predict_scores",
    "record_param_counts", "robustness_conditions", "robustness_sweep", "run_variants",
    "seed_summary", "train_config", "train_variant", "draw_graph", "graph_panels",
    "weight_matrices", "plot_curves", "balance_figure", "robustness_figure", "table1_figure", "table2_figure",
    "THGN", "VARIANTS", "GraphConfig", "TemporalGraph", "THGCLError", "build_graph",
    "build_variant", "edge_weights", "focal_loss", "gaussian_weights", "hawkes_weights",
    "make_batch_fn", "nt_xent", "paper_layer_counts", "parameter_table",
]
