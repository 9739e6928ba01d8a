"""`rnnflow translate`: the translation task's own CLI verb (`Task.commands`): translates text
with a pushed model (a SavedModel directory, TF Serving REST or gRPC), greedy or with a beam.
The settings are checked before the model loads."""

from __future__ import annotations

import sys

from rnnflow.components.tasks.base import TaskCommand, refused


def setting_errors(args) -> list[str]:
    from rnnflow.models.seq2seq import MAX_BEAM, MAX_LENGTH

    errors = []
    if not 0 <= args.beam_size <= MAX_BEAM:
        errors.append(f"--beam-size {args.beam_size}: must be between 1 and {MAX_BEAM} (0: greedy, the default)")
    if not 1 <= args.max_length <= MAX_LENGTH:
        errors.append(f"--max-length {args.max_length}: must be between 1 and {MAX_LENGTH} subword pieces")
    if not args.text:
        errors.append("--text: give at least one sentence")
    return errors


def translate(args) -> int:
    if (exit_code := refused("translate", setting_errors(args))) is not None:
        return exit_code
    from rnnflow.components.serving.serving_client import ServingError, open_model
    from rnnflow.components.translation.features import SOURCE
    from rnnflow.components.translation.schema import BEAM_SIGNATURE, TRANSLATION, TRUNCATED

    beam = args.beam_size > 0
    try:
        with open_model(args.model, args.model_name, **({"signature": BEAM_SIGNATURE} if beam else {})) as model:
            if SOURCE not in model.inputs or TRANSLATION not in model.outputs:
                raise ServingError(f"{args.model}: takes {', '.join(model.inputs)}; rnnflow translate needs a "
                                   f"translation model (input {SOURCE!r})")
            request = {SOURCE: list(args.text)}
            if beam:
                request.update(beam_size=args.beam_size, max_length=args.max_length)
            answer = model.predict(request)
    except ServingError as e:
        print(f"rnnflow: translate: {e}", file=sys.stderr)
        return 1
    for text, translation, cut in zip(args.text, answer[TRANSLATION], answer[TRUNCATED]):
        if int(cut):
            print(f"rnnflow: translate: the source was cut by {int(cut)} subword pieces (task.max_source_tokens): "
                  f"{text[:60]!r}", file=sys.stderr)
        print(translation.decode("utf-8", errors="replace") if isinstance(translation, bytes) else translation)
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True,
                        help="a serving dir (newest version) or version dir, a TF Serving REST URL or a gRPC address "
                             "(as for predict)")
    parser.add_argument("--model-name", help="REST/gRPC: the served model's name when the target does not say it")
    parser.add_argument("--text", action="append", default=[],
                        help="a sentence to translate (repeat for several; one translation per line, in order)")
    parser.add_argument("--beam-size", type=int, default=0,
                        help="beam search with this many hypotheses (1-16); 0: greedy (serving_default)")
    parser.add_argument("--max-length", type=int, default=200,
                        help="with --beam-size: the most subword pieces a translation may have (default 200)")


TRANSLATE = TaskCommand("translate", "translate sentences with a translation model (task.type: translation)",
                        add_arguments, translate)
