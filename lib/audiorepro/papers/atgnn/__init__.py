"""Experiments of the ATGNN chapter (data preparation, the Section III-B recipe, evaluation).

The model lives in :mod:`audiorepro.papers.atgnn.model`; this package turns the book's data into
tagging tensors and trains models with the shared loop (:func:`audiorepro.training.fit`).
"""
from .experiments import (RecipeConfig, SeedComparison, TaggingData, WaveToLogits,
                          benchmark_table, build_model, compare_seeds, evaluate_tagging,
                          label_attention, make_batch_fn, run_dir_for, seed_summary, table_rows,
                          tagging_data, train_row, train_tagger)

__all__ = ["RecipeConfig", "SeedComparison", "TaggingData", "WaveToLogits", "benchmark_table",
           "build_model", "compare_seeds", "evaluate_tagging", "label_attention", "make_batch_fn",
           "run_dir_for", "seed_summary", "table_rows", "tagging_data", "train_row", "train_tagger"]
