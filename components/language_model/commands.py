"""`rnnflow generate`: the language model's own CLI verb (`Task.commands`), sampling a
continuation of a prompt from a pushed model (a SavedModel directory, TF Serving REST or gRPC).
The settings are checked before the model loads."""

from __future__ import annotations

import math
import sys

from rnnflow.components.tasks.base import TaskCommand, refused

GENERATION_INPUTS = ("prompt", "max_length", "temperature", "top_k", "seed")
INT32_MAX, INT64_MAX = 2**31 - 1, 2**63 - 1


def generation_setting_errors(args) -> list[str]:
    """What is wrong with `generate`'s settings, checked before the model loads (the model
    checks max_length against its own task.max_generate)."""
    errors = []
    if not 0 <= args.max_length <= INT32_MAX:
        errors.append(f"--max-length {args.max_length}: must be between 0 and the model's task.max_generate")
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        errors.append(f"--temperature {args.temperature}: must be a finite number above 0")
    if not 0 <= args.top_k <= INT32_MAX:
        errors.append(f"--top-k {args.top_k}: must be between 0 (every token) and {INT32_MAX}")
    if not -INT64_MAX - 1 <= args.seed <= INT64_MAX:
        errors.append(f"--seed {args.seed}: must fit in 64 bits ({-INT64_MAX - 1} to {INT64_MAX})")
    return errors


def generate(args) -> int:
    if (exit_code := refused("generate", generation_setting_errors(args))) is not None:
        return exit_code
    from rnnflow.components.serving.serving_client import ServingError, open_model

    try:
        with open_model(args.model, args.model_name) as model:
            if sorted(model.inputs) != sorted(GENERATION_INPUTS):
                raise ServingError(f"{args.model}: serving_default takes {', '.join(model.inputs)}; rnnflow "
                                   f"generate needs a language model's ({', '.join(GENERATION_INPUTS)})")
            answer = model.predict({"prompt": [args.prompt], "max_length": args.max_length,
                                    "temperature": args.temperature, "top_k": args.top_k, "seed": args.seed})
    except ServingError as e:
        print(f"rnnflow: generate: {e}", file=sys.stderr)
        return 1
    text = answer["text"][0]
    unknown = int(answer["unknown_tokens"][0])
    if unknown:
        print(f"rnnflow: generate: {unknown} prompt tokens are not in the model's vocabulary and were read as "
              "its unknown token", file=sys.stderr)
    print(args.prompt + (text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text))
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True,
                        help="a serving dir (newest version) or version dir, a TF Serving REST URL or a gRPC address "
                             "(as for predict)")
    parser.add_argument("--model-name", help="REST/gRPC: the served model's name when the target does not say it")
    parser.add_argument("--prompt", default="", help="the text to continue (default: empty, a fresh start)")
    parser.add_argument("--max-length", type=int, default=200, help="tokens to generate (default 200)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="above 0; lower is more conservative (default 1.0)")
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k most likely tokens; 0: all")
    parser.add_argument("--seed", type=int, default=0, help="the same seed and settings give the same sample")


GENERATE = TaskCommand("generate", "sample a continuation of a prompt from a language model (task.type: "
                                   "language_model)", add_arguments, generate)
