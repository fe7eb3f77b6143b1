"""Bag of codewords: P. Verma, "Attention is All You Need? Good Embeddings with Statistics are
Enough: Large Scale Audio Understanding without Transformers/Convolutions/BERTs/Mixers/
Attention/RNNs or ....", arXiv 2022 (no public code; implemented from the text).

One-second log-mel chunks are cut into four patch families (143 vectors), one MLP autoencoder
per family compresses them, k-means turns each bottleneck into a codeword, and the 4 D codeword
counts feed an MLP tagger trained with random input-count masking.

Where each part lives:

* :mod:`.model` - patch geometry, autoencoders, k-means codebooks and counting functions, the
  head, the learned VQ codebook (modules, losses, pure functions; no I/O);
* :mod:`.data` - the 1 s log-mel chunks of a clip table (cached) and their waveforms;
* :mod:`.experiments` - the cached pipeline, head training, the Fig. 2 / Fig. 3 sweeps, the
  Table I baselines, the beyond-the-paper runs and the results registry (notebooks 03-05 read
  the configuration notebook ``book/bow/02_fig2_grid.ipynb`` records);
* :mod:`.figures` - the chapter's plots;
* ``paper.yml`` - the paper's printed numbers and headline claims.

Notebooks: ``from audiorepro.papers import bow`` and ``bow.<name>`` for the names below.
"""
from .baselines import TABLE1_FAMILIES, build_family
from .data import PAPER_SOURCE, SPLITS, ChunkSet, chunk_waves, compute_chunks, load_table, scale_label
from .experiments import (BASELINE_LOSSES, CHAPTER, CLAIM_METRIC, NOTEBOOK_CLAIMS, clip_items, decide_claims, grid_claim_runs,
                          masking_claim_probabilities, masking_claim_runs, record_seed_runs, seed_table,
                          table1_models, row_summary, RAW_COUNTS_ROW, GRID_KEYS, BaselineConfig, BowConfig, BowPipeline, HeadConfig, HeadResult,
                          MissingRecordError, autoencoder_table, best_config, best_per, codeword_usage,
                          head_run_dir, masking_row, MASKING_POINTS_LABEL, MIN_VECTORS_PER_WORD, codebook_support, paper_masking_points, paper_row_of, record_beyond,
                          record_grid, record_masking, record_representation, record_table1, run_beyond,
                          run_grid, run_head, run_masking, run_table1, stored_best_config, stored_best_masking,
                          summarize_grid, table1_baselines, table1_frame, train_baseline, train_head,
                          train_vq_autoencoder, vq_codes)
from .figures import (plot_codeword_usage, plot_counts, plot_curve, plot_families, plot_grid,
                      plot_reconstructions, plot_table1)
from .model import (FAMILIES, FAMILY_NAMES, FAMILY_SIZES, BowError, BowTagger, CountMasking, PatchAutoencoder,
                    PatchSpec, VQAutoencoder, assemble, assign_codes, bag_of_words, chunk_spectrogram, clip_pool,
                    extract_patches, family_boxes, family_shapes, fit_kmeans, huber_loss, ngram_counts,
                    temporal_bigrams)

__all__ = [
    # model
    "FAMILIES", "FAMILY_NAMES", "FAMILY_SIZES", "BowError", "PatchSpec", "family_shapes", "extract_patches",
    "assemble", "family_boxes", "chunk_spectrogram", "PatchAutoencoder", "fit_kmeans", "assign_codes",
    "bag_of_words", "ngram_counts", "temporal_bigrams", "CountMasking", "BowTagger", "huber_loss",
    "clip_pool", "VQAutoencoder",
    # data
    "ChunkSet", "compute_chunks", "chunk_waves", "load_table", "scale_label", "SPLITS", "PAPER_SOURCE",
    # experiments
    "MissingRecordError", "BowConfig", "BowPipeline", "HeadConfig", "HeadResult", "train_head", "head_run_dir",
    "run_head", "run_grid", "run_masking", "train_vq_autoencoder", "vq_codes", "run_beyond", "BaselineConfig",
    "table1_baselines", "train_baseline", "run_table1", "table1_frame", "GRID_KEYS", "summarize_grid",
    "best_config", "best_per", "paper_row_of", "masking_row", "paper_masking_points", "MASKING_POINTS_LABEL", "codebook_support", "MIN_VECTORS_PER_WORD", "codeword_usage",
    "autoencoder_table", "record_representation", "record_grid", "record_masking", "record_table1",
    "record_beyond", "stored_best_config", "stored_best_masking", "CHAPTER", "CLAIM_METRIC", "NOTEBOOK_CLAIMS",
    "clip_items", "record_seed_runs", "seed_table", "table1_models", "grid_claim_runs", "masking_claim_probabilities",
    "masking_claim_runs", "decide_claims", "row_summary", "RAW_COUNTS_ROW",
    # Table I baseline families
    "TABLE1_FAMILIES", "build_family", "BASELINE_LOSSES",
    # figures
    "plot_families", "plot_reconstructions", "plot_codeword_usage", "plot_counts", "plot_grid", "plot_curve",
    "plot_table1",
]
