"""The ``affect`` command.

One error policy for every subcommand: bad input prints one line, ``affect: error: <what was
wrong; what is accepted>``, and exits with status 2, with no traceback (``--debug`` shows it) and no
partial output file (every writer is atomic). Heavy imports happen inside the subcommands, so
``affect --help`` is quick.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable

# No network unless a user names a hub model: the packaged models load from local folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad command-line input (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + error
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# -- affect emotions ----------------------------------------------------------------------------
def _cmd_emotions(args: argparse.Namespace) -> int:
    from conditioning import ANCHORS, CATEGORIES, parse_emotion
    from conditioning.lexicon import load_lexicon
    from conditioning.parsing import __doc__ as forms_doc
    from conditioning.vocabulary import ALIASES, DESCRIPTIONS

    if not args.text:
        rows = []
        for k in CATEGORIES:
            a = ANCHORS[k]
            aliases = sorted(x for x, c in ALIASES.items() if c == k)
            rows.append(
                {
                    "category": k,
                    "valence": round(a.valence, 4),
                    "arousal": round(a.arousal, 4),
                    "dominance": round(a.dominance, 4),
                    "rated_word": a.rated_word,
                    "aliases": aliases,
                    "description": DESCRIPTIONS[k],
                }
            )
        if args.json:
            print(json.dumps({"categories": rows, "lexicon_words": len(load_lexicon())}, indent=2))
            return 0
        print("Emotion vocabulary (VAD anchors in [-1, 1], from Warriner et al. 2013 norms)")
        print(f"{'category':<10} {'valence':>8} {'arousal':>8} {'dominance':>9}  aliases")
        for r in rows:
            print(
                f"{r['category']:<10} {r['valence']:>8.3f} {r['arousal']:>8.3f} "
                f"{r['dominance']:>9.3f}  {', '.join(r['aliases'])}"
            )
        print(
            f"\nPackaged lexicon: {len(load_lexicon())} more words (e.g. wistful, furious); "
            "other words go to the text-embedding mapper."
        )
        table = forms_doc.split("Accepted forms", 1)[1]
        print("\nAccepted forms" + table.rstrip())
        return 0
    results = []
    for text in args.text:
        spec = parse_emotion(text, use_embedding=None if args.embedding else False)
        info = spec.describe()
        info["input"] = text
        if spec.curve is not None:
            curve = spec.curve
            times = [curve.start + (curve.end - curve.start) * i / 4 for i in range(5)]
            info["curve_samples"] = [
                {"time": round(t, 4), "unit": curve.unit, "spec": s.to_string()}
                for t, s in zip(times, curve.sample(times))
            ]
        results.append(info)
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
        return 0
    for info in results:
        v = info["vad"]
        print(f"{info['input']!r} -> {info['spec']}")
        weights = ", ".join(f"{k} {w:.3g}" for k, w in info["weights"].items())
        print(
            f"  weights: {weights}; intensity {info['intensity']:.3g}; dominant {info['dominant']}"
        )
        print(
            f"  VAD: valence {v['valence']:+.3f}, arousal {v['arousal']:+.3f}, "
            f"dominance {v['dominance']:+.3f}"
        )
        for note in info["notes"]:
            print(f"  mapping: {note}")
        for s in info.get("curve_samples", []):
            print(f"  at {s['time']:g} {s['unit']}: {s['spec']}")
    return 0


# -- affect models ------------------------------------------------------------------------------
def _cmd_models(args: argparse.Namespace) -> int:
    from apps.registry import model_rows

    rows = model_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        mark = "present" if r["present"] else "MISSING"
        print(f"{r['name']}  [{r['medium']}]  {mark}")
        print(f"  role:    {r['role']}")
        print(f"  source:  {r['source']}")
        print(f"  licence: {r['licence']}")
        if r.get("location"):
            print(f"  at:      {r['location']}")
    return 0


# -- affect demo --------------------------------------------------------------------------------
def _cmd_demo(args: argparse.Namespace) -> int:
    from apps.demo import run_demo

    written = run_demo(args.output_dir)
    print(f"affect demo wrote {len(written)} file(s) to {args.output_dir}:")
    for path, what in written:
        print(f"  {path}  ({what})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="affect",
        description=(
            "AffectStudio: one emotion space conditioning speech, music and face generators."
        ),
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is adjusted")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("emotions", help="the vocabulary, its VAD anchors, and how text parses")
    p.add_argument("text", nargs="*", help="emotion text to parse, e.g. 'angry@0.7' 'wistful'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--no-embedding",
        dest="embedding",
        action="store_false",
        help="map free words by the lexicon only (no text-embedding model)",
    )
    p.set_defaults(func=_cmd_emotions)

    p = sub.add_parser(
        "models", help="every model the package knows: role, source, licence, present"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("demo", help="render every medium with the embedded defaults into a folder")
    p.add_argument(
        "-o", "--output-dir", default="affect-demo", help="folder (default: affect-demo)"
    )
    p.set_defaults(func=_cmd_demo)
    return parser


def _fail(message: str) -> int:
    message = " ".join(str(message).split())  # one line
    print(f"affect: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING, format="affect: %(message)s"
        )
        if args.command is None:
            parser.print_help()
            return EXIT_BAD_INPUT
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except (UsageError, ValueError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        if debug:
            raise
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)) and getattr(
            exc, "filename", None
        ):
            return _fail(f"{exc.strerror}: {exc.filename}")
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("affect: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: still one line, with the way to see more
        if debug:
            raise
        print(
            f"affect: internal error: {type(exc).__name__}: {exc} (run with --debug for the "
            "traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
