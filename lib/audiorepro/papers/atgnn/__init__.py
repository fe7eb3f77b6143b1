"""ATGNN: Audio Tagging Graph Neural Network (S. Singh, C. J. Steinmetz, E. Benetos, H. Phan,
D. Stowell; IEEE Signal Processing Letters, 2024) - the book's chapter ``atgnn``.

* :mod:`.model` - the ATGNN modules (PGN, MLG = PLG + LLG), config and presets, parameter / MAC
  counting, the label-noise-robust BCE and the ImageNet ViG checkpoint filter;
* :mod:`.data` - the synthetic world or a clip table (AudioSet, FSD50K) as tagging tensors;
* :mod:`.experiments` - the Section III-B recipe with the shared loop, the rows of Tables I-III,
  per-seed records with per-item outputs, the claims decided by the library, counts, the label-graph analysis and the result records;
* :mod:`.figures` - the chapter's plots;
* ``paper.yml`` - the paper's own numbers and claims.

Notebooks use ``from audiorepro.papers import atgnn`` and the names below.
"""
from .data import TaggingData, tagging_data
from .experiments import (COUNT_SETTINGS, ablation_table, main_sweep_runs, NOTEBOOK_CLAIMS, OWN_FRONTENDS, PSLA_RECIPES, LabelGraphStats, LrChoice,
                          RecipeConfig, WaveToLogits, WeightAverage, adjacency_vs_lift, benchmark_table, build_model,
                          check_table, checkpoint_digest, code_digest, count_baselines, count_variants,
                          decide_adjacency_claim, decide_claims, evaluate_tagging, item_ids,
                          k_regime, k_spec, k_sweep, label_attention, label_graph_spec, make_batch_fn, own_frontend_data, predict_tagging,
                          record_k_sweep, record_label_graph, record_row, record_runs,
                          psla_recipe, run_dir_for, seed_summary, select_lr, table_rows, table_summary, train_row,
                          train_rows, train_tagger)
from .figures import (plot_counts, plot_k_sweep, plot_label_attention, plot_label_graph,
                      plot_table_runs)
from .model import (ATGNN, PRESETS, ATGNNConfig, build_atgnn, count_atgnn, graph_schedule,
                    load_vig_weights, schedule_summary)

__all__ = [
    # model
    "ATGNN", "ATGNNConfig", "PRESETS", "build_atgnn", "count_atgnn", "graph_schedule", "load_vig_weights", "schedule_summary",
    # data
    "TaggingData", "tagging_data",
    # experiments
    "RecipeConfig", "PSLA_RECIPES", "psla_recipe", "WeightAverage", "make_batch_fn", "train_tagger", "build_model", "WaveToLogits",
    "evaluate_tagging", "predict_tagging", "item_ids", "label_attention", "table_rows",
    "run_dir_for", "code_digest", "checkpoint_digest", "train_row", "train_rows", "select_lr", "LrChoice", "OWN_FRONTENDS", "own_frontend_data",
    "table_summary", "record_runs", "record_row", "check_table", "seed_summary", "NOTEBOOK_CLAIMS",
    "decide_claims", "decide_adjacency_claim", "k_regime", "k_spec", "k_sweep", "record_k_sweep",
    "main_sweep_runs", "ablation_table",
    "COUNT_SETTINGS", "count_variants", "count_baselines", "LabelGraphStats",
    "label_graph_spec", "adjacency_vs_lift", "record_label_graph", "benchmark_table",
    # figures
    "plot_counts", "plot_k_sweep", "plot_table_runs", "plot_label_graph", "plot_label_attention",
]
