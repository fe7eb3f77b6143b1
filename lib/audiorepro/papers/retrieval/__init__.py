"""PaSST text-to-audio retrieval: P. Primus, K. Koutini, G. Widmer, "Advancing Natural-Language
Based Audio Retrieval with PaSST and Large Audio-Caption Data Sets", DCASE Workshop 2023.

A dual encoder (audio: PaSST or a PANNs CNN; text: a BERT-like transformer) projects recordings
and captions into one shared space, trained with a symmetric contrastive loss.

* :mod:`.model` - caption preprocessing, the text-encoder registry and wrapper, the audio
  encoders, the dual encoder, the loss and the keyword caption augmentation;
* :mod:`.data` - caption sets in the roles of ClothoV2 / AudioCaps / WavCaps (the book's synthetic
  world and Debian recordings, or the real data sets through the adapters), cached log-mels;
* :mod:`.experiments` - frozen pre-trained audio stand-ins or audio encoders trained end to end
  (official weights or the stand-ins, PaSST with patchout), training and evaluation, the runs of
  Table 3, Table 4 and Fig. 1 (recorded per seed with per-query ranks), the search demo,
  the claims decided by the results library;
* :mod:`.figures` - the chapter's plots;
* ``paper.yml`` - the paper's own numbers and claims.
"""
from audiorepro.papers.retrieval.data import (FEATURE_CODE, PAPER_NAMES, PAPER_ORDER,
                                              PRETRAIN_WORLD_SEED, CaptionSet, caption_set_from_table,
                                              caption_key, caption_sources, combine,
                                              compose_mixture_caption, leakage_note, leaked_captions,
                                              first_of_split, first_per_split, load_sources, logmel_features,
                                              paper_caption_sources, pretrain_set, project_path,
                                              screen_leaked_captions, search_collection,
                                              sets_of_combo, sources_table, synthetic_captions,
                                              unseen_wording,
                                              user_caption_set)
from audiorepro.papers.retrieval.experiments import (AUDIO_TRAINING, PAPER_PATCHOUT,
                                                     PATCHOUT_SECONDS, segment_patchout,
                                                     end_to_end_encoder, end_to_end_features,
                                                     silence_logmel,
                                                     DEFAULT_TAU, METRICS, NOTEBOOK_CLAIMS,
                                                     OFFICIAL_BACKBONES, PAPER_RECIPE, RECIPE_KEYS,
                                                     check_recipe,
                                                     STAND_INS, audio_label, checkpoint_embeddings,
                                                     TABLE2_BACKBONES, TABLE3_NOT_RUN, EvalSet,
                                                     NO_STAND_IN, check_rows, PAPER_TEXT, paper_text_model,
                                                     PairDataset, RunSpec, chance_retrieval,
                                                     collate_pairs, decide_claims, embed_audio,
                                                     embed_sources, embed_text, evaluate_retrieval,
                                                     load_stand_in, pairs_fingerprint, query_hits,
                                                     query_relevance, query_summary,
                                                     rank, run_experiment, run_segment_lengths,
                                                     run_stand_in, run_table3, run_table4,
                                                     search_index, seed_summary,
                                                     stand_in_embeddings, table3_coverage,
                                                     table2_parameters, table3_specs,
                                                     retrieval_outputs, train_retrieval)
from audiorepro.papers.retrieval.figures import (plot_query_hits, plot_segment_lengths, plot_table3,
                                                 plot_table4)
from audiorepro.papers.retrieval.model import (AUDIO_ENCODERS, SILENCE_LOGMEL, TEXT_MODELS,
                                               AudioEncoder, CachedAudio, DualEncoder, TextEncoder,
                                               TextModelMissing, UnknownTextModel,
                                               accepted_text_models, build_audio_encoder,
                                               contrastive_loss, keyword_rephrasings,
                                               preprocess_caption, resolve_text_model)

__all__ = [
    # end-to-end training
    "AUDIO_TRAINING", "PAPER_PATCHOUT", "PATCHOUT_SECONDS", "segment_patchout", "end_to_end_encoder", "end_to_end_features", "silence_logmel",
    # model
    "AUDIO_ENCODERS", "SILENCE_LOGMEL", "TEXT_MODELS", "AudioEncoder", "CachedAudio", "DualEncoder",
    "TextEncoder", "TextModelMissing", "UnknownTextModel", "accepted_text_models",
    "build_audio_encoder", "contrastive_loss", "keyword_rephrasings", "preprocess_caption",
    "resolve_text_model",
    # data
    "FEATURE_CODE", "PAPER_NAMES", "PAPER_ORDER", "PRETRAIN_WORLD_SEED", "CaptionSet",
    "caption_key", "caption_set_from_table", "caption_sources", "combine", "compose_mixture_caption",
    "leakage_note", "leaked_captions", "screen_leaked_captions",
    "load_sources", "logmel_features", "paper_caption_sources", "pretrain_set", "search_collection",
    "sets_of_combo",
    "sources_table", "synthetic_captions", "unseen_wording", "first_of_split", "first_per_split", "project_path", "user_caption_set",
    # experiments
    "METRICS", "NOTEBOOK_CLAIMS", "OFFICIAL_BACKBONES", "STAND_INS", "audio_label",
    "checkpoint_embeddings", "TABLE2_BACKBONES", "TABLE3_NOT_RUN", "NO_STAND_IN", "check_rows", "PAPER_TEXT", "paper_text_model", "EvalSet", "PairDataset", "RunSpec",
    "chance_retrieval", "collate_pairs", "decide_claims", "embed_audio", "embed_sources",
    "embed_text", "evaluate_retrieval", "DEFAULT_TAU", "PAPER_RECIPE", "RECIPE_KEYS", "check_recipe", "load_stand_in", "pairs_fingerprint", "query_hits",
    "query_relevance", "query_summary",
    "rank", "run_experiment", "run_segment_lengths", "run_stand_in", "run_table3", "run_table4",
    "search_index", "seed_summary", "stand_in_embeddings", "table2_parameters", "table3_coverage",
    "table3_specs",
    "retrieval_outputs",
    "train_retrieval",
    # figures
    "plot_query_hits", "plot_segment_lengths", "plot_table3", "plot_table4",
]
