"""SentenceExampleGen: CoNLL or JSONL files -> one tf.Example per sentence (`features.py`), split
into train and eval by a hash of the sentence's tokens (`data.split.eval_percent`), so a repeated
sentence never sits in both.

The span's files are read once in the executor, by the same reader as the input check, whose
report travels with the Examples; Beam builds, serializes and writes the examples. The component
is TFX's FileBasedExampleGen, so its driver resolves spans and fingerprints the input.
"""

from __future__ import annotations

from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import artifact_utils, standard_component_specs

from rnnflow.components.ingest_config import config_from
from rnnflow.components.input_report import driver_span, set_report, span_input
from rnnflow.components.sequence_labeling import features
from rnnflow.components.sequence_labeling.reading import read_sentences, split_of
from rnnflow.components.sequence_labeling.schema import SPLITS
from rnnflow.components.task_example_gen import task_example_gen, write_splits
from rnnflow.components.tasks import get_task


class Executor(BaseBeamExecutor):
    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX's name)
        config = config_from(exec_properties)
        _, files = span_input(exec_properties)
        read = read_sentences(config.data, files)
        report = get_task(config.task_type).report(config, files, read)
        sentences = read.sentences
        by_split = {split: [] for split in SPLITS}
        for sentence in sentences:
            by_split[split_of(sentence.tokens, config.data.split.eval_percent)].append(
                (sentence.tokens, sentence.tags))
        empty = [split for split, rows in by_split.items() if not rows]
        if empty:
            raise ValueError(f"{len(sentences)} sentences leave the {empty[0]} split empty with "
                             f"data.split.eval_percent={config.data.split.eval_percent}; add sentences")
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        with self._make_beam_pipeline() as pipeline:
            write_splits(pipeline, by_split, lambda row: features.sentence_example(*row), examples.uri)
        examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
        for split, rows in by_split.items():
            examples.set_int_custom_property(f"{split}_sentences", len(rows))
        set_report(examples, report, [driver_span(exec_properties)])


def sentence_example_gen(config, input_base: str, pattern: str):
    return task_example_gen(config, input_base, pattern, Executor, SPLITS, "SentenceExampleGen")
