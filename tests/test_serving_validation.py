"""Serving validation's knowledge of TF Serving releases (components/serving_validation.py); the
checks on real pushed models run in the end-to-end tests."""

import pytest

from rnnflow.components.serving_validation import describe, missing_text_ops
from rnnflow.pipeline.config import ConfigError, load_config

OURS = {"NormalizeUTF8", "CaseFoldUTF8", "UnicodeScriptTokenizeWithOffsets"}


def test_each_release_lacks_the_text_ops_it_did_not_bundle():
    assert missing_text_ops("2.1", OURS) == {"NormalizeUTF8", "CaseFoldUTF8"}
    assert missing_text_ops("2.0", {"WordpieceTokenizeWithOffsets"}) == set()
    assert missing_text_ops("2.12", OURS) == set()
    assert missing_text_ops("2.19", OURS | {"TFText>Utf8Binarize"}) == {"TFText>Utf8Binarize"}
    assert missing_text_ops("2.20", OURS | {"TFText>Utf8Binarize"}) == set()


@pytest.mark.parametrize("value, message", [
    ("'2.5'", "serving.tf_serving_version: 2.5: rnnflow knows the TF Text ops of TF Serving 2.0, 2.1, 2.12 to 2.19"),
    ("'latest'", "serving.tf_serving_version: 'latest' is not a TF Serving release such as 2.16"),
    ("2.10", "serving.tf_serving_version: expected a string, got the number 2.1: write it in quotes"),
])
def test_an_unknown_release_is_a_config_error_naming_the_field(value, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_config("sentiment", [f"serving.tf_serving_version={value}"])
    assert load_config("sentiment", ["serving.tf_serving_version='2.19'"]).serving.tf_serving_version == "2.19"


def test_the_readable_report_says_why_a_model_is_not_servable():
    text = describe({"model": "/m/1", "problems": ["the model does not load and answer in a clean TensorFlow "
                                                     "process: KeyError: 'X'"]})
    assert text.splitlines()[:3] == ["serving validation of /m/1", "result: NOT servable",
                                     "problem: the model does not load and answer in a clean TensorFlow process: "
                                     "KeyError: 'X'"]
