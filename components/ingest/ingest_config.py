"""The config an ExampleGen executor runs with, carried in its CustomConfig.

Only the data sections travel (with the code version): changing the model or the
training settings keeps ExampleGen cached.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import any_pb2, struct_pb2
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs

from rnnflow.pipeline.config import PipelineConfig, code_version, data_sections, parse_config

_CONFIG_KEY = "config_json"


def example_gen_custom_config(config: PipelineConfig) -> example_gen_pb2.CustomConfig:
    """The data sections of the config (and the code version, so code changes re-ingest)."""
    struct = struct_pb2.Struct()
    struct.update({_CONFIG_KEY: json.dumps(data_sections(config), sort_keys=True),
                   "code_version": code_version()})
    packed = any_pb2.Any()
    packed.Pack(struct)
    return example_gen_pb2.CustomConfig(custom_config=packed)


def config_from(exec_properties: dict[str, Any]) -> PipelineConfig:
    """The config an ExampleGen executor was compiled with (its data sections)."""
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    packed = json.loads(raw) if isinstance(raw, str) else raw
    values = packed.get("customConfig", packed.get("custom_config", {})).get("value", {})
    return parse_config(json.loads(values[_CONFIG_KEY]))
