"""TextWindowExampleGen: text files -> one tf.Example per window (`features.py`), split into train
and eval by contiguous blocks (`reading.py`).

The span's files are read once in the executor, by the reader the input check uses, whose report
travels with the Examples; Beam serializes and writes the windows. The component is TFX's
FileBasedExampleGen, so its driver resolves spans and fingerprints the input.
"""

from __future__ import annotations

from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import artifact_utils, standard_component_specs

from rnnflow.components.ingest_config import config_from
from rnnflow.components.input_report import driver_span, set_report, span_input
from rnnflow.components.language_model import features
from rnnflow.components.language_model.reading import split_texts
from rnnflow.components.language_model.schema import SPLITS
from rnnflow.components.task_example_gen import task_example_gen, write_splits
from rnnflow.components.tasks import get_task


class Executor(BaseBeamExecutor):
    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX's name)
        config = config_from(exec_properties)
        _, files = span_input(exec_properties)
        splits = split_texts(config, files)
        report = get_task(config.task_type).report(config, files, splits)
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        with self._make_beam_pipeline() as pipeline:
            write_splits(pipeline, {split: splits.windows[split] for split in SPLITS}, features.window_example,
                         examples.uri)
        examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
        for split in SPLITS:
            examples.set_int_custom_property(f"{split}_windows", len(splits.windows[split]))
        set_report(examples, report, [driver_span(exec_properties)])


def text_window_example_gen(config, input_base: str, pattern: str):
    return task_example_gen(config, input_base, pattern, Executor, SPLITS, "TextWindowExampleGen")
