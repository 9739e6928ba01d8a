"""`data.rolling_spans: K` for tasks whose rows are independent examples: TFX's
SpanRangeStrategy resolver over the ExampleGen's Examples, keeping one artifact per span.

Each run's ExampleGen ingests the newest span; the resolver then hands Transform (and so the
Tuner and Trainer) the Examples of the latest K spans in the pipeline's metadata. A span
ingested more than once (a rerun, or a night without a new span) has several Examples
artifacts; only the newest of each counts, so no span is trained on twice.
"""

from __future__ import annotations

from tfx import v1 as tfx
from tfx.dsl.input_resolution.strategies.span_range_strategy import SpanRangeStrategy
from tfx.proto import range_config_pb2

RESOLVER_ID = "rolling_spans_resolver"


class LatestSpansStrategy(SpanRangeStrategy):
    """SpanRangeStrategy, then the newest artifact (highest id) of each span, newest span first."""

    def _resolve(self, input_dict):
        resolved = super()._resolve(input_dict)
        return {key: self._newest_per_span(artifacts) for key, artifacts in resolved.items()}

    @staticmethod
    def _newest_per_span(artifacts):
        newest = {}
        for artifact in artifacts:
            span = artifact.get_int_custom_property("span")
            if span not in newest or artifact.id > newest[span].id:
                newest[span] = artifact
        return [newest[span] for span in sorted(newest, reverse=True)]


def rolling_spans_resolver(example_gen, spans: int) -> tfx.dsl.Resolver:
    """The Examples of the latest `spans` spans, after `example_gen` has ingested this run's."""
    resolver = tfx.dsl.Resolver(
        strategy_class=LatestSpansStrategy,
        config={"range_config": range_config_pb2.RangeConfig(
            rolling_range=range_config_pb2.RollingRange(num_spans=spans))},
        examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples,
                                 producer_component_id=example_gen.id, output_key="examples"),
    ).with_id(RESOLVER_ID)
    resolver.add_upstream_node(example_gen)
    return resolver
