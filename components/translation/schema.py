"""The translation task's schema: Transform's outputs and vocabulary names, the special ids,
signature and output names, its splits, its config sections and its metric names, which every
reader, writer, export and metric of the task shares. A leaf: it imports nothing else of its
package.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Optional

from rnnflow.components.common.run_facts import EVALUATION_EXAMPLES_SIGNATURE, SERVING_EXAMPLES_SIGNATURE
from rnnflow.pipeline.config import DataFields, constraint

# Transform's outputs: subword ids [batch, (pieces)]; the target's end with END_ID.
SOURCE_IDS = "source_ids"
TARGET_IDS = "target_ids"
SOURCE_VOCABULARY = "source_pieces"
TARGET_VOCABULARY = "target_pieces"
# Ids: 0 pads, then start and end, then the vocabulary file's pieces, then one unknown id.
PAD_ID, START_ID, END_ID = 0, 1, 2
FIRST_ID = 3
# WordPiece's marks: a piece that continues a word, and what stands for a character the
# vocabulary lacks (it maps to the unknown id).
SUFFIX = "##"
UNKNOWN = "[UNK]"
SPLITS = ("train", "eval")

# Signatures: serving_default(source) -> greedy; beam and score take more inputs.
BEAM_SIGNATURE = "translate_beam"
SCORE_SIGNATURE = "score"
EXAMPLES_SIGNATURE = SERVING_EXAMPLES_SIGNATURE  # examples (their `source`) -> what serving_default answers
EVAL_SIGNATURE = EVALUATION_EXAMPLES_SIGNATURE  # examples -> `translations` [batch, 2]: greedy, beam
TRANSLATION = "translation"
SCORE = "score"  # the translation's log-likelihood (nats)
LENGTH = "length"  # its pieces, end excluded
TRUNCATED = "truncated"  # source pieces dropped past task.max_source_tokens
TRANSLATIONS = "translations"
ATTENTION = "attention"


@dataclasses.dataclass(frozen=True)
class PairSplitConfig:
    """Pairs go to eval by a hash of their source sentence: a source with several translations
    (Tatoeba has many) sits in one split only."""
    eval_percent: int = constraint(10, min=1, max=99)


@dataclasses.dataclass(frozen=True)
class ParallelDataConfig(DataFields):  # path, eval_path, test_path, rolling_spans
    # tsv: one pair per line, source and target columns (Tatoeba/Anki: english<TAB>french<TAB>
    # attribution); parallel: line-aligned files, `path` naming the source side's files, each
    # ending in `source_suffix`, with the target side beside it ending in `target_suffix`
    # (train.de + train.en); jsonl: one {"source": ..., "target": ...} object per line.
    format: Literal["tsv", "parallel", "jsonl"] = "tsv"
    source_column: int = constraint(0, min=0)
    target_column: int = constraint(1, min=0)
    source_suffix: Optional[str] = None
    target_suffix: Optional[str] = None
    source_field: str = "source"
    target_field: str = "target"
    split: PairSplitConfig = dataclasses.field(default_factory=PairSplitConfig)


@dataclasses.dataclass(frozen=True)
class TranslationConfig:
    type: Literal["translation"]
    # Subword pieces per sentence: longer sources are cut (counted in the input report, and in
    # each served answer's `truncated`); longer targets are cut in training.
    max_source_tokens: int = constraint(64, min=1, max=1000)
    max_target_tokens: int = constraint(64, min=1, max=1000)
    # WordPiece vocabularies learned on the train split: the most frequent whole words (with
    # punctuation split off as continuation pieces) and every character seen at least
    # `min_frequency` times, so any word of a known script can be spelled.
    vocab_size: int = constraint(4000, min=16, max=200_000)
    min_frequency: int = constraint(2, min=1)
    # One vocabulary for both sides (languages sharing a script share names and numbers).
    joint_vocabulary: bool = False
    lowercase: bool = False
    attention: Literal["bahdanau", "luong_dot", "luong_general"] = "bahdanau"
    input_feeding: bool = True
    tie_embeddings: bool = False
    label_smoothing: float = constraint(0.1, min=0.0, max=0.9)
    # Decoding: a hypothesis ends after at most length_ratio x source pieces + length_offset
    # pieces (and max_length); the beam signature's defaults and the evaluation's beam.
    length_ratio: float = constraint(2.0, min=0.1, max=100.0)
    length_offset: float = constraint(10.0, min=0.0, max=1000.0)
    beam_size: int = constraint(5, min=1)  # at most models.seq2seq.MAX_BEAM (validate_config)
    length_penalty: float = constraint(0.6, min=0.0, max=5.0)


@dataclasses.dataclass(frozen=True)
class TranslationEvaluationConfig:
    """Blessing: sacreBLEU of the greedy translations on the eval split at least `min_bleu`, and
    at most `max_regression` points below the last blessed model's."""
    metric: Literal["bleu", "chrf"] = "bleu"
    min_bleu: float = constraint(1.0, min=0.0, max=100.0)
    max_regression: float = constraint(1.0, min=0.0, max=100.0)
    # Translate the eval (and test) split with the beam too (task.beam_size), for the `_beam`
    # scores beside the greedy ones; about beam_size times the decoding work.
    beam: bool = True


# Metric names (corpus-level, 0-100): sacreBLEU 13a on detokenized text, the same lowercased,
# chrF; `_beam` on the beam translations.
METRICS = ("bleu", "bleu_lowercase", "chrf")
BEAM_METRICS = tuple(f"{name}_beam" for name in METRICS)
