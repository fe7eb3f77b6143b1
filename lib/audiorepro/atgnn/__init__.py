"""Experiments of the ATGNN chapter (data preparation, the Section III-B recipe, evaluation).

The model lives in :mod:`audiorepro.models.atgnn`; this package turns the book's data into
tagging tensors and trains models with the shared loop (:func:`audiorepro.training.fit`).
"""
from .experiments import (RecipeConfig, TaggingData, WaveToLogits, build_model, evaluate_tagging,
                          label_attention, make_batch_fn, tagging_data, train_tagger)

__all__ = ["RecipeConfig", "TaggingData", "WaveToLogits", "build_model", "evaluate_tagging",
           "label_attention", "make_batch_fn", "tagging_data", "train_tagger"]
