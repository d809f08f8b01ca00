"""The ``affect`` command: argument parsing and dispatch; the work is done by the job layer
(``apps.jobs``): each subcommand builds a job from its arguments, runs it and prints the result.

One error policy for every subcommand: bad input prints one line, ``affect: error: <what was
wrong; what is accepted>``, and exits with status 2, with no traceback (``--debug`` shows it) and no
partial output file (every writer is atomic). Heavy imports happen inside the jobs, so
``affect --help`` is quick.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from apps.common import JobError

EXIT_BAD_INPUT = 2


class UsageError(JobError):
    """Bad command-line syntax (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + error
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# -- each subcommand's job ------------------------------------------------------------------------
def _emotions_job(args):
    from apps.jobs import EmotionsJob

    return EmotionsJob(list(args.text), use_embedding=args.embedding)


def _models_job(args):
    from apps.jobs import ModelsJob

    return ModelsJob()


def _parse_fixed(items: list[str]) -> dict[str, float]:
    """``--fix NAME=VALUE`` items as a dict (the values' ranges are the job's to check)."""
    from generators.music.representation import ATTRIBUTES

    fixed = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or name not in ATTRIBUTES:
            raise UsageError(
                f"--fix takes NAME=VALUE with NAME one of {', '.join(ATTRIBUTES)}, got {item!r}"
            )
        try:
            fixed[name] = float(value)
        except ValueError:
            raise UsageError(f"--fix {name}= needs a number, got {value!r}") from None
    return fixed


def _music_job(args):
    from apps.jobs import MusicJob

    return MusicJob(args.emotion, args.output, bars=args.bars, seed=args.seed, wav=args.wav,
                    tonic=args.tonic, fixed=_parse_fixed(args.fix), seed_midi=args.seed_midi,
                    seed_mode=args.seed_mode, steps=args.steps, guidance=args.guidance,
                    model=args.model, device=args.device, precision=args.precision,
                    provenance=args.provenance)


def _speech_job(args):
    from apps.jobs import SpeechJob

    return SpeechJob(args.input, args.emotion, output=args.output, intensity=args.intensity,
                     seed=args.seed, steps=args.steps, guidance=args.guidance, vocoder=args.vocoder,
                     vocoder_precision=args.vocoder_precision, model=args.model, device=args.device,
                     precision=args.precision, check=args.check, provenance=args.provenance)


def _face_job(args):
    from apps.jobs import FaceJob

    return FaceJob(args.portrait, args.emotion, args.output, audio=args.audio, intensity=args.intensity,
                   face_resolution=args.face_resolution, seed=args.seed, steps=args.steps,
                   guidance=args.guidance, noise_scale=args.noise_scale, model=args.model,
                   device=args.device, precision=args.precision, provenance=args.provenance)


def _read_job(args):
    from apps.jobs import ReadJob

    return ReadJob(list(args.files), reference=args.reference, recognizer=args.recognizer)


def _train_job(args):
    from apps.jobs import TrainJob

    return TrainJob(args.medium, args.config, max_steps=args.max_steps, output_dir=args.output_dir,
                    max_minutes=args.max_minutes, resume=not args.no_resume,
                    prepare_only=args.prepare_only)


def _eval_job(args):
    from apps.jobs import EvalJob

    return EvalJob(args.medium, args.output_dir, emotions=args.emotions, intensities=args.intensities,
                   seeds=args.seeds, bars=args.bars, recordings=args.recordings, files=args.files,
                   labels=args.labels, model=args.model, portrait=args.portrait, panel=args.panel,
                   vocoder=args.vocoder, device=args.device)


def _bench_job(args):
    from apps.bench import BenchJob

    return BenchJob(list(args.media), repeats=args.repeats, device=args.device)


def _render_job(args):
    from apps.render import RenderJob

    return RenderJob(args.jobfile, args.output_dir, workers=args.workers, device=args.device,
                     retries=args.retries, force=args.force, dry_run=args.dry_run, quiet=args.quiet,
                     read=args.read, ray=args.ray, batch_size=args.batch_size, precision=args.precision)


def _demo_job(args):
    from apps.demo import DemoJob

    return DemoJob(args.output_dir)


def _studio_job(args):
    from apps.studio import StudioJob

    return StudioJob(args.host, args.port, root=args.root, device=args.device, queue_size=args.queue_size,
                     max_seconds=args.max_seconds, max_upload_mb=args.max_upload_mb)


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
    p.set_defaults(job=_emotions_job)

    p = sub.add_parser(
        "models", help="every model the package knows: role, source, licence, present"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(job=_models_job)

    p = sub.add_parser("music", help="generate a piece: MIDI, and audio with --wav")
    p.add_argument("--emotion", required=True, help="e.g. 'sad@0.8' or 'sad -> happy over 16 bars'")
    p.add_argument("--bars", type=int, default=16, help="length in 4/4 bars (1..64, default 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("-o", "--output", required=True, help="the .mid file to write")
    p.add_argument("--wav", help="also render audio to this .wav file")
    p.add_argument("--tonic", help="key tonic, e.g. D or F# (default: drawn from the seed)")
    p.add_argument(
        "--fix",
        action="append",
        metavar="NAME=VALUE",
        help="pin an attribute (tempo, major, density, register, ...); repeatable",
    )
    p.add_argument("--seed-midi", help="a MIDI file whose melody to continue or re-harmonise")
    p.add_argument("--seed-mode", choices=["continue", "reharmonize"], default="continue")
    p.add_argument("--steps", type=int, default=12, help="denoising steps (default 12)")
    p.add_argument("--guidance", type=float, default=2.0, help="guidance scale (default 2)")
    p.add_argument("--model", help="a checkpoint folder or hub id (default: the embedded one)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--precision", choices=["auto", "float32", "float16"], default="auto",
                   help="the denoiser's precision (auto: float16 on cuda, float32 on a CPU)")
    p.add_argument("--provenance", action="store_true",
                   help="also write <output>.provenance.json: emotion, seed, options, models, timings")
    p.set_defaults(job=_music_job)

    p = sub.add_parser("speech", help="emotional voice conversion of a recording")
    p.add_argument("input", help="a recording (wav, flac, ogg, opus, mp3; any rate; up to 120 s)")
    p.add_argument("--emotion", required=True, help="e.g. 'angry@0.7', 'sad -> happy over 3 s'")
    p.add_argument("--intensity", type=float, help="override the spec's intensity (0..1.5)")
    p.add_argument("-o", "--output", required=True, help="the .wav/.flac/.ogg file to write")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--steps", type=int, default=10, help="denoising steps (default 10)")
    p.add_argument("--guidance", type=float, default=1.5, help="guidance scale (default 1.5)")
    p.add_argument("--vocoder", choices=["hifigan", "fast", "world"], default="hifigan",
                   help="hifigan (default: HiFi-GAN V1), fast (the distilled CPU-fast neural "
                   "vocoder) or world (WORLD's own waveform, the fallback)")
    p.add_argument("--vocoder-precision", choices=["auto", "half", "float32"], default="auto",
                   help="HiFi-GAN's precision: auto (default: float16 on CUDA, float32 on a CPU), "
                   "half (float16 on CUDA, bfloat16 on a CPU with native support), float32")
    p.add_argument("--model", help="a checkpoint folder or hub id (default: the embedded one)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--precision", choices=["auto", "float32", "float16"], default="auto",
                   help="the denoiser's precision (auto: float16 on cuda, float32 on a CPU)")
    p.add_argument("--check", action="store_true",
                   help="read the result back: the speech recognizer against the source and alone, "
                        "and the speaker cosine to the source")
    p.add_argument("--provenance", action="store_true",
                   help="also write <output>.provenance.json: emotion, seed, options, models, timings")
    p.set_defaults(job=_speech_job)

    p = sub.add_parser("face", help="a talking head: portrait + speech + emotion -> mp4")
    p.add_argument("portrait", help="a photo with one clearly visible face (png, jpeg, webp, ...)")
    p.add_argument("--audio", help="the speech (wav, flac, ogg, mp3; up to 60 s); needed for an .mp4")
    p.add_argument("--emotion", required=True, help="e.g. 'happy@0.8', 'sad -> happy over 3 s'")
    p.add_argument("--intensity", type=float, help="override the spec's intensity (0..1.5)")
    p.add_argument("-o", "--output", required=True,
                   help="the .mp4 file to write (H.264 + AAC), or a .png for a still of the expression")
    p.add_argument("--face-resolution", type=int, default=256,
                   help="face height in output pixels; the frame is twice that (default 256)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--steps", type=int, default=10, help="denoising steps (default 10)")
    p.add_argument("--guidance", type=float, default=1.5, help="guidance scale (default 1.5)")
    p.add_argument("--noise-scale", type=float, default=0.7,
                   help="the motion sampler's temperature, (0, 1.5] (default 0.7)")
    p.add_argument("--model", help="a checkpoint folder or hub id (default: the embedded one)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--precision", choices=["auto", "float32", "float16"], default="auto",
                   help="the denoiser's precision (auto: float16 on cuda, float32 on a CPU)")
    p.add_argument("--provenance", action="store_true",
                   help="also write <output>.provenance.json: emotion, seed, options, models, timings")
    p.set_defaults(job=_face_job)

    p = sub.add_parser("read", help="read the emotion of a recording, MIDI file, photo or video")
    p.add_argument("files", nargs="+",
                   help="recordings (wav, flac, ogg, opus, mp3), MIDI files, photos or videos")
    p.add_argument("--reference", nargs="+", metavar="NEUTRAL",
                   help="recordings: the same speaker's neutral speech, for the speaker-normalised "
                        "reading (speech-prosody-v1)")
    p.add_argument("--recognizer", help="default: speech-prosody-v1 (audio), music-features-v1 "
                   "(MIDI), face-fer-v1 (photos, videos); or hub:<model id or folder>")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(job=_read_job)

    p = sub.add_parser("train", help="train a medium's model from a YAML recipe")
    p.add_argument("medium", choices=["music", "speech", "speech-recognizer", "face", "vocoder"], help="which model")
    p.add_argument("--config", required=True, help="e.g. configs/train/music.yaml")
    p.add_argument("--max-steps", type=int, help="override training.max_steps")
    p.add_argument("--output-dir", help="override training.output_dir")
    p.add_argument("--max-minutes", type=float, help="stop after a checkpoint at this wall time")
    p.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    p.add_argument("--prepare-only", action="store_true", help="only build the data cache")
    p.set_defaults(job=_train_job)

    p = sub.add_parser("eval", help="closed loop: generate, read back, score, write a report")
    p.add_argument(
        "medium",
        nargs="?",
        default="music",
        choices=["music", "speech", "face", "all", "vocoder"],
        help="which generator (default music); vocoder: the speech vocoders side by side",
    )
    p.add_argument("--recordings", type=int,
                   help="speech: how many real recordings (default all 10); face: default 3")
    p.add_argument("--files", help="score files made anywhere: a folder of MIDI files")
    p.add_argument("--labels", help="with --files: a CSV of file,emotion[,intensity]")
    p.add_argument("-o", "--output-dir", default="affect-eval", help="report folder")
    p.add_argument("--emotions", nargs="+", help="default: per medium")
    p.add_argument("--intensities", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--seeds", type=int, default=3, help="seeds per cell (default 3)")
    p.add_argument("--bars", type=int, default=8, help="bars per piece (default 8)")
    p.add_argument("--model", help="a checkpoint folder or hub id (default: the embedded one)")
    p.add_argument("--portrait", help="face: the photo to animate (default: scikit-image's "
                                      "astronaut, a real photographed portrait)")
    p.add_argument("--panel", type=int, default=100,
                   help="face: how many portraits of the LFW panel also hold every emotion as a "
                        "still (1-100, default 100; 0 = none)")
    p.add_argument("--vocoder", choices=["hifigan", "fast", "world"], default="hifigan",
                   help="speech: the vocoder of the conversions (default hifigan)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(job=_eval_job)

    p = sub.add_parser("bench", help="speed of each pipeline on this machine")
    p.add_argument("media", nargs="*", default=["music"],
                   help="what to time: music, speech, face, render, precision (float16 against "
                   "float32) (default: music)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(job=_bench_job)

    p = sub.add_parser("render", help="run a job file (YAML or JSON Lines) into a folder, resumably")
    p.add_argument("jobfile", help="the job file (schema: configs/render/README.md)")
    p.add_argument("-o", "--output-dir", required=True, help="the output folder (holds manifest.sqlite)")
    p.add_argument("--dry-run", action="store_true", help="check the file and print what would run")
    p.add_argument("--force", action="store_true", help="redo every job, even those already done")
    p.add_argument("--retries", type=int, default=0, help="tries again for failures that may pass")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes, each loading its models (default: one per GPU on cuda, else 1)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu); cuda with several GPUs: "
                   "one worker per GPU")
    p.add_argument("--batch-size", type=int, default=1,
                   help="jobs of one medium run through the denoiser together (default 1)")
    p.add_argument("--precision", choices=["auto", "float32", "float16"], default="auto",
                   help="the denoisers' precision (auto: float16 on cuda, float32 on a CPU)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on Ray: a local instance, or the cluster at ADDRESS")
    p.add_argument("--read", action="store_true", help="read every output back with its recognizer")
    p.add_argument("--quiet", action="store_true", help="one log line per job instead of a progress bar")
    p.set_defaults(job=_render_job)

    p = sub.add_parser("demo", help="render every medium with the embedded defaults into a folder")
    p.add_argument(
        "-o", "--output-dir", default="affect-demo", help="folder (default: affect-demo)"
    )
    p.set_defaults(job=_demo_job)

    p = sub.add_parser("studio", help="the studio: a web page (Gradio) on loopback for every medium")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 = any free one)")
    p.add_argument("--root", help="folder for per-request outputs (default: a folder in the temp dir)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--queue-size", type=int, default=16, help="requests that may wait (default 16)")
    p.add_argument("--max-seconds", type=float, default=60.0, help="longest recording taken (default 60 s)")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload (default 50 MB)")
    p.set_defaults(job=_studio_job)
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
        from apps.jobs import run

        result = run(args.job(args))
        if getattr(args, "json", False):
            print(json.dumps(result.data, indent=2))
        else:
            for line in result.lines:
                print(line)
        return getattr(result.data, "exit_status", 0)  # a render with failed jobs: 1
    except ValueError as exc:
        if debug:
            raise
        for line in getattr(exc, "errors", None) or [str(exc)]:  # a job file: every error, one per line
            _fail(line)
        return EXIT_BAD_INPUT
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        if debug:
            raise
        if getattr(exc, "filename", None):
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
