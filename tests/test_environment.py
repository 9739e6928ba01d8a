"""The installed stack is the one the lock promises, with its native parts in use."""

import pathlib
import re

LOCK = pathlib.Path(__file__).resolve().parent.parent / "requirements" / "lock.txt"


def test_protobuf_runs_its_native_parser_not_the_pure_python_fallback():
    """protobuf 3.20.3 (what a Python 3.10 resolution picks) has no cp311 wheel and falls back to
    pure-Python parsing, which cost every pipeline run about a fifth of its CPU time."""
    from google.protobuf.internal import api_implementation

    assert api_implementation.Type() == "upb"


def test_the_lock_pins_protobuf_4_and_a_kfp_whose_protos_load_on_it():
    pins = dict(re.findall(r"^([a-z0-9_.-]+)==(\S+)", LOCK.read_text(), re.M))
    assert pins["protobuf"].split(".")[0] == "4"
    assert tuple(int(p) for p in pins["kfp"].split(".")[:2]) >= (2, 7)
    from kfp.pipeline_spec import pipeline_spec_pb2  # raises on protobuf 4 with kfp < 2.7's protos

    assert pipeline_spec_pb2.PipelineSpec(pipeline_info={"name": "x"}).pipeline_info.name == "x"
