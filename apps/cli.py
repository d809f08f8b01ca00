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
import time
from collections.abc import Callable

# No network unless a user names a hub model: the packaged models load from local folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

EXIT_BAD_INPUT = 2


def check_device(name: str) -> str:
    """A torch device that exists here, or a one-line error naming the ones that do."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; accepted: cpu, cuda, cuda:N, mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} asked for, but no CUDA GPU is available here; use cpu")
    if (
        device.type == "cuda"
        and device.index is not None
        and device.index >= torch.cuda.device_count()
    ):
        raise UsageError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError("device 'mps' asked for, but it is not available here; use cpu")
    return name


def quiet_diffusers() -> None:
    """No loading progress bars on the command line (results are printed instead)."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()


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


# -- affect music -------------------------------------------------------------------------------
def _parse_fixed(items: list[str]) -> dict[str, float]:
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


def _cmd_music(args: argparse.Namespace) -> int:
    from conditioning import parse_emotion
    from conditioning.io import check_writable
    from generators.music.pipeline_music import MAX_BARS

    spec = parse_emotion(args.emotion)  # checked before any model loads
    if not 1 <= args.bars <= MAX_BARS:
        raise UsageError(f"--bars must be in [1, {MAX_BARS}], got {args.bars}")
    fixed = _parse_fixed(args.fix)
    if not args.output.lower().endswith((".mid", ".midi")):
        raise UsageError(f"-o must name a .mid file, got {args.output!r}")
    check_writable(args.output)
    check_device(args.device)
    if args.wav:
        if not args.wav.lower().endswith(".wav"):
            raise UsageError(f"--wav must name a .wav file, got {args.wav!r}")
        check_writable(args.wav)
    import torch

    from generators.music import MusicPipeline, load_seed_midi

    seed_notes, tonic = None, args.tonic
    if args.seed_midi:
        seed_notes, seed_tonic = load_seed_midi(args.seed_midi)
        tonic = tonic if tonic is not None else seed_tonic
    quiet_diffusers()
    pipe = MusicPipeline.from_pretrained(args.model).to(args.device)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        emotion=spec,
        num_bars=args.bars,
        tonic=tonic,
        fixed_attributes=fixed,
        seed_notes=seed_notes,
        seed_mode=args.seed_mode,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        generator=torch.Generator().manual_seed(args.seed),
        output_type="audio" if args.wav else "midi",
    )
    out.save_midi(args.output)
    print(
        f"wrote {args.output} ({out.num_bars} bars, {out.key}, {out.instrumentation}, "
        f"{out.attributes['tempo'][0]:.0f} BPM at bar 1)"
    )
    if args.wav:
        out.save_wav(args.wav)
        print(f"wrote {args.wav} ({len(out.audio) / out.sample_rate:.1f} s, {out.sample_rate} Hz)")
    return 0


# -- affect speech ------------------------------------------------------------------------------
SPEECH_INPUTS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")
SPEECH_OUTPUTS = (".wav", ".flac", ".ogg")


def _cmd_speech(args: argparse.Namespace) -> int:
    from conditioning import parse_emotion
    from conditioning.io import check_writable

    spec = parse_emotion(args.emotion)  # checked before any model loads
    if args.intensity is not None:
        spec = spec.with_intensity(args.intensity)
    if not args.output.lower().endswith(SPEECH_OUTPUTS):
        raise UsageError(f"-o must name a {'/'.join(SPEECH_OUTPUTS)} file, got {args.output!r}")
    check_writable(args.output)
    check_device(args.device)
    from conditioning.audio import load_audio
    from generators.speech.pipeline_speech import MAX_SECONDS

    load_audio(args.input, max_seconds=MAX_SECONDS)  # bad audio fails here, before the model loads
    import torch

    from generators.speech import EmotionVoiceConversionPipeline

    quiet_diffusers()
    pipe = EmotionVoiceConversionPipeline.from_pretrained(args.model).to(args.device)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        args.input,
        emotion=spec,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        generator=torch.Generator().manual_seed(args.seed),
        vocoder=args.vocoder,
        vocoder_precision=args.vocoder_precision,
    )
    out.save(args.output)
    change = out.summary()
    print(
        f"wrote {args.output} ({out.duration:.1f} s, {out.sample_rate} Hz, {spec.to_string()}: "
        f"F0 {change['f0_st']:+.1f} st, level {change['gain_db']:+.1f} dB, "
        f"rate x{2.718281828 ** change['rate']:.2f})"
    )
    if out.limited_db >= LIMITER_NOTE_DB:
        print(f"note: the peak limiter took {out.limited_db:.1f} dB off the converted speech to hold "
              "its peaks at -1 dBFS (a loud recording has little room to get louder)")
    if args.check:
        print(_read_back(args.input, out, spec))
    return 0


#: the limiter's level reduction (dB, over the speech) from which ``affect speech`` mentions it
LIMITER_NOTE_DB = 1.0


def _read_back(source: str, out, spec) -> str:
    """``affect speech --check``: the project's recognizer reads the conversion against the source
    (the speaker-normalised reading) and alone, and the speaker embeddings are compared."""
    from conditioning.audio import load_audio
    from conditioning.speaker import speaker_similarity
    from evaluators.recognizers import load_recognizer

    rec = load_recognizer("speech-prosody-v1")
    src = load_audio(source)
    against = rec(out.audio, out.sample_rate, reference=(src.wav, src.sample_rate))
    alone = rec(out.audio, out.sample_rate)
    cosine = speaker_similarity(src.wav, src.sample_rate, out.audio, out.sample_rate)

    def said(reading) -> str:
        text = f"{reading.category} {reading.probabilities[reading.category]:.2f}"
        if spec.curve is None and spec.dominant != reading.category:
            text += f", {spec.dominant} {reading.probabilities[spec.dominant]:.2f}"
        return text

    return (f"read back by speech-prosody-v1: against the source {said(against)}; the clip alone "
            f"{said(alone)}; speaker cosine to the source {cosine:.2f}")


# -- affect read --------------------------------------------------------------------------------
READ_AUDIO = (".wav", ".flac", ".ogg", ".opus", ".mp3")
READ_MIDI = (".mid", ".midi")
READ_VIDEO = (".mp4", ".mov", ".mkv", ".webm", ".avi")
#: what each kind of file is read by unless --recognizer says otherwise, and what the
#: registry's ``reads`` field must be for a named recognizer to take that kind of file
READ_DEFAULTS = {"audio": ("speech-prosody-v1", "audio"), "midi": ("music-features-v1", "midi"),
                 "image": ("face-fer-v1", "frames"), "video": ("face-fer-v1", "frames")}
READ_KIND_NAMES = {"audio": "a recording", "midi": "a MIDI file", "image": "a photo", "video": "a video"}
#: a video is read on every n-th frame (the face recognizer's reading changes slowly)
READ_VIDEO_EVERY = 5


def _read_kind(path: str) -> str:
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    for kind, suffixes in (("audio", READ_AUDIO), ("midi", READ_MIDI), ("image", IMAGE_INPUTS),
                           ("video", READ_VIDEO)):
        if suffix in suffixes:
            return kind
    raise UsageError(
        f"cannot read {path!r}: give a recording ({', '.join(READ_AUDIO)}), a MIDI file "
        f"({', '.join(READ_MIDI)}), a photo ({', '.join(IMAGE_INPUTS)}) or a video "
        f"({', '.join(READ_VIDEO)})"
    )


def _read_recognizer(name: str | None, kind: str):
    """The recognizer for one kind of file: the default, a registered name that reads that kind,
    or hub:<id> for audio (speech) and photos/videos (faces)."""
    from evaluators.recognizers import RECOGNIZERS, load_recognizer

    default, reads = READ_DEFAULTS[kind]
    name = name or default
    if name.startswith("hub:"):
        if kind == "midi":
            raise UsageError("hub recognizers read speech audio or faces, not MIDI")
        return name, load_recognizer(name, "speech" if kind == "audio" else "face")
    if name not in RECOGNIZERS:
        raise UsageError(f"unknown recognizer {name!r}; accepted: {', '.join(RECOGNIZERS)}, "
                         "hub:<model id or folder>")
    if RECOGNIZERS[name].reads != reads:
        fit = [n for n, r in RECOGNIZERS.items() if r.reads == reads]
        raise UsageError(f"{name} cannot read {READ_KIND_NAMES[kind]}; for this file: {', '.join(fit)}")
    return name, load_recognizer(name)


def _reading_dict(path: str, reading, extra: dict | None = None) -> dict:
    probs = {k: round(float(v), 4) for k, v in reading.probabilities.items()}
    out = {"file": path, "category": reading.category, "probabilities": probs}
    for axis in ("valence", "arousal", "dominance"):
        value = getattr(reading, axis, None)
        out[axis] = None if value is None else round(float(value), 4)
    out.update(extra or {})
    return out


def _mean_reading(readings: list) -> dict:
    """One reading of a video: the frames' mean probabilities and VAD, and each category's share of
    the frames."""
    from collections import Counter

    import numpy as np

    keys = list(readings[0].probabilities)
    probs = {k: round(float(np.mean([r.probabilities[k] for r in readings])), 4) for k in keys}
    mean = {axis: (None if getattr(readings[0], axis, None) is None
                   else round(float(np.mean([getattr(r, axis) for r in readings])), 4))
            for axis in ("valence", "arousal", "dominance")}
    shares = Counter(r.category for r in readings)
    return {"probabilities": probs, "category": max(probs, key=probs.get), **mean,
            "frames": len(readings),
            "frame_shares": {k: round(v / len(readings), 3) for k, v in shares.most_common()}}


def _describe(d: dict) -> str:
    ranked = sorted(d["probabilities"].items(), key=lambda kv: -kv[1])
    then = ", ".join(f"{k} {v:.2f}" for k, v in ranked[1:3])
    axes = " ".join(f"{a} {d[a]:+.2f}" for a in ("valence", "arousal", "dominance")
                    if d.get(a) is not None)
    n_ref = len(d.get("reference") or [])
    how = f" (against {n_ref} neutral clip{'s' if n_ref > 1 else ''} of the speaker)" if n_ref else ""
    frames = f", mean of {d['frames']} frames" if d.get("frames") else ""
    return (f"{d['file']}: {d['recognizer']}{how} reads {d['category']} "
            f"({ranked[0][1]:.2f}; then {then}{frames}); {axes}")


def _cmd_read(args: argparse.Namespace) -> int:
    from pathlib import Path

    kinds = [_read_kind(f) for f in args.files]  # every file's kind is checked before any model loads
    for f in args.files + (args.reference or []):
        if not Path(f).is_file():
            raise UsageError(f"no such file: {f!r}")
    if args.reference:
        if any(k != "audio" for k in kinds) or (args.recognizer not in (None, "speech-prosody-v1")):
            raise UsageError("--reference (the same speaker's neutral speech) is read by "
                             "speech-prosody-v1 on recordings only")
        for r in args.reference:
            if _read_kind(r) != "audio":
                raise UsageError(f"--reference {r!r} must be a recording ({', '.join(READ_AUDIO)})")
    loaded: dict[str, tuple[str, object]] = {}
    results = []
    for path, kind in zip(args.files, kinds):
        if kind not in loaded:
            loaded[kind] = _read_recognizer(args.recognizer, kind)
        name, rec = loaded[kind]
        if kind == "video":
            from generators.face.video import read_video_frames

            try:
                frames = list(read_video_frames(path))
            except (OSError, RuntimeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise UsageError(f"cannot decode the video {path!r} ({first}); accepted: "
                                 f"{', '.join(READ_VIDEO)} files that ffmpeg plays") from None
            if not frames:
                raise UsageError(f"{path!r} holds no video frames")
            d = _mean_reading(rec.read_frames(frames, every=READ_VIDEO_EVERY))
            results.append({"file": path, "recognizer": name, **d})
            continue
        extra = {"reference": list(args.reference)} if args.reference else {}
        try:
            reading = rec(path, reference=list(args.reference)) if args.reference else rec(path)
        except ValueError as exc:
            if kind == "image" and str(exc).startswith("no face found"):
                raise UsageError(f"no face found in {path!r}; accepted: a photo with a frontal face "
                                 "of at least 50 px") from None
            raise
        results.append(_reading_dict(path, reading, {"recognizer": name, **extra}))
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    else:
        for d in results:
            print(_describe(d))
    return 0


# -- affect face --------------------------------------------------------------------------------
IMAGE_INPUTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def _cmd_face(args: argparse.Namespace) -> int:
    from conditioning import parse_emotion
    from conditioning.io import check_writable

    spec = parse_emotion(args.emotion)  # checked before any model loads
    if args.intensity is not None:
        spec = spec.with_intensity(args.intensity)
    still = args.output.lower().endswith(".png")
    if not (still or args.output.lower().endswith(".mp4")):
        raise UsageError(f"-o must name an .mp4 file (a talking head, with --audio) or a .png file "
                         f"(a still of the expression), got {args.output!r}")
    if still and spec.curve is not None:
        raise UsageError("a .png still holds one expression; give a category, mixture or VAD point "
                         "with an intensity, not a curve")
    if not still and not args.audio:
        raise UsageError("--audio is required for an .mp4 talking head (wav, flac, ogg, mp3; up to "
                         "60 s); without audio, -o a .png writes a still of the expression")
    if not 64 <= args.face_resolution <= 1024:
        raise UsageError(f"--face-resolution must be in [64, 1024] px, got {args.face_resolution}")
    if not 0.0 < args.noise_scale <= 1.5:
        raise UsageError(f"--noise-scale must be in (0, 1.5], got {args.noise_scale}")
    check_writable(args.output)
    check_device(args.device)
    from conditioning.audio import load_audio
    from generators.face.pipeline_face import MAX_SECONDS
    from generators.face.portrait import analyse_portrait

    if not still:
        load_audio(args.audio, max_seconds=MAX_SECONDS)  # bad audio fails here, before the model loads
    portrait = analyse_portrait(args.portrait, args.face_resolution)  # no face: fails here
    import torch

    from generators.face import TalkingHeadPipeline

    quiet_diffusers()
    pipe = TalkingHeadPipeline.from_pretrained(args.model).to(args.device)
    pipe.set_progress_bar_config(disable=True)
    if still:
        from PIL import Image

        from conditioning.io import atomic_write

        frame = pipe.expression_stills(None, [spec], portrait=portrait)[0]
        with atomic_write(args.output, "wb") as tmp:
            Image.fromarray(frame).save(tmp, format="PNG")
        print(f"wrote {args.output} (a still of {spec.to_string()}; {portrait.size}x{portrait.size} px, "
              f"face {portrait.face_resolution} px)")
        return 0
    out = pipe(None, args.audio, emotion=spec, num_inference_steps=args.steps,
               guidance_scale=args.guidance, generator=torch.Generator().manual_seed(args.seed),
               noise_scale=args.noise_scale, seed=args.seed, portrait=portrait)
    out.save(args.output)
    for note in out.notes:
        logging.getLogger("affect").info(note)
    print(f"wrote {args.output} ({out.n_frames} frames, {out.duration:.2f} s at {out.fps} fps, "
          f"{portrait.size}x{portrait.size} px, face {portrait.face_resolution} px; {spec.to_string()})")
    return 0


# -- affect train -------------------------------------------------------------------------------
def _cmd_train(args: argparse.Namespace) -> int:
    from configs import load_layered

    cfg = load_layered(args.config)
    if args.medium == "music":
        from generators.music.training import train_music

        for section in ("data", "model", "training"):
            if section not in cfg:
                raise ValueError(f"config {args.config!r} has no '{section}' section")
        if args.max_minutes is not None:
            cfg["training"]["max_minutes"] = args.max_minutes
        final = train_music(
            cfg,
            max_steps=args.max_steps,
            output_dir=args.output_dir,
            resume=not args.no_resume,
            prepare_only=args.prepare_only,
        )
        print("corpus prepared" if final is None else f"wrote {final}")
        return 0
    if args.medium in ("speech", "face"):
        if args.medium == "speech":
            from generators.speech.training import train_speech as trainer
        else:
            from generators.face.training import train_face as trainer

        for section in ("data", "model", "training"):
            if section not in cfg:
                raise ValueError(f"config {args.config!r} has no '{section}' section")
        if args.max_minutes is not None:
            cfg["training"]["max_minutes"] = args.max_minutes
        final = trainer(cfg, max_steps=args.max_steps, output_dir=args.output_dir,
                        resume=not args.no_resume)
        print(f"wrote {final}")
        return 0
    if args.medium == "speech-recognizer":
        from evaluators.recognizers.speech import train_recognizer

        data = cfg.get("data", {})
        folder = data.get("folder")
        if not folder:  # the synthetic corpus, rendered by the speech generator's rules
            from generators.speech.corpus import render_from_config

            folder = render_from_config(data)
        out = args.output_dir or cfg["training"]["output_dir"]
        t0 = time.time()
        tr = cfg["training"]
        rec = train_recognizer(folder, out, hidden=int(tr.get("hidden", 64)),
                               epochs=int(tr.get("epochs", 400)), augment=int(tr.get("augment", 0)),
                               holdout_speakers=int(tr.get("holdout_speakers", 0)),
                               reference_hidden=tr.get("reference_hidden"),
                               pool=bool(tr.get("pool_references", False)),
                               reference_inputs=str(tr.get("reference_inputs", "delta")),
                               exclude_features=list(tr.get("exclude_features") or ()),
                               ensemble=int(tr.get("ensemble", 1)),
                               meta={"data": str(folder), "recipe": cfg})
        ref = rec.meta.get("reference")
        print(f"wrote {out} (held-out accuracy {rec.meta['validation_accuracy']:.3f}"
              + (f", speaker-normalised {ref['validation_accuracy']:.3f}" if ref else "")
              + f" on {rec.meta['clips']} clips; {rec.meta['validation']}; "
              f"fit in {(time.time() - t0) / 60:.1f} min)")
        return 0
    raise UsageError(f"no trainer for {args.medium!r}; available: music, speech, speech-recognizer, face")


# -- affect eval --------------------------------------------------------------------------------
def _cmd_eval(args: argparse.Namespace) -> int:
    from conditioning import parse_emotion

    if args.files or args.labels:
        if not (args.files and args.labels):
            raise UsageError("--files DIR and --labels labels.csv go together")
        from evaluators.loop import evaluate_files

        report = evaluate_files(args.files, args.labels, args.output_dir)
        acc = report["accuracy_at_max_intensity"]["accuracy"]
        print(
            f"scored {report['sweep']['pieces']} files, {len(report['failed'])} failed; "
            f"accuracy {acc:.2f}"
        )
        for f in report["failed"]:
            print(f"  failed: {f['file']}: {f['error']}")
        print(f"wrote {args.output_dir}/report.json and {args.output_dir}/report.html")
        return 0
    if args.medium == "speech":
        return _eval_speech(args)
    if args.medium == "face":
        return _eval_face(args)
    if args.medium == "all":
        return _eval_all(args)
    if args.emotions is None:
        args.emotions = ["happy", "sad", "angry", "calm", "fearful", "surprised"]
    for e in args.emotions:
        parse_emotion(e)
    if not args.seeds >= 1 or not 1 <= args.bars <= 64:
        raise UsageError("--seeds must be >= 1 and --bars in [1, 64]")
    out = args.output_dir
    from pathlib import Path

    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"-o {out!r} exists and is not a folder")
    check_device(args.device)
    from evaluators.loop import evaluate_music
    from generators.music import MusicPipeline

    quiet_diffusers()
    pipe = MusicPipeline.from_pretrained(args.model).to(args.device)
    pipe.set_progress_bar_config(disable=True)
    report = evaluate_music(
        pipe, out, args.emotions, args.intensities, list(range(args.seeds)), num_bars=args.bars
    )
    acc = report["accuracy_at_max_intensity"]["accuracy"]
    print(
        f"music: accuracy at intensity {max(args.intensities):g} = {acc:.2f} "
        f"({report['sweep']['pieces']} pieces)"
    )
    for e, v in report["intensity_spearman"].items():
        print(f"  {e:<10} intensity Spearman {v['value']:+.2f} {'pass' if v['pass'] else 'FAIL'}")
    for name, g in report["quality_guards"].items():
        print(f"  {name:<20} {g['value']:.3f} in {g['bounds']}: {'pass' if g['pass'] else 'FAIL'}")
    print(f"wrote {Path(out) / 'report.json'} and {Path(out) / 'report.html'}")
    return 0


def _eval_all(args: argparse.Namespace) -> int:
    from pathlib import Path

    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {str(out)!r} exists and is not a folder")
    check_device(args.device)
    import copy

    from evaluators.loop_all import ALL_SWEEP, evaluate_all
    from generators.music import MusicPipeline
    from generators.speech import EmotionVoiceConversionPipeline

    sweep = copy.deepcopy(ALL_SWEEP)
    if args.recordings:
        sweep["speech"]["recordings"] = args.recordings
    if args.seeds != 3:  # the flag's default belongs to `eval music`
        sweep["music"]["seeds"] = list(range(args.seeds))
    quiet_diffusers()
    music = MusicPipeline.from_pretrained().to(args.device)
    speech = EmotionVoiceConversionPipeline.from_pretrained().to(args.device)
    for p in (music, speech):
        p.set_progress_bar_config(disable=True)
    from skimage import data

    from generators.face import TalkingHeadPipeline
    from generators.face.portrait import analyse_portrait

    face = TalkingHeadPipeline.from_pretrained().to(args.device)
    face.set_progress_bar_config(disable=True)
    portrait = analyse_portrait(data.astronaut())

    def animate(audio, sr, emotion, generator):
        return face(None, audio, sr, emotion=emotion, generator=generator, portrait=portrait)

    report = evaluate_all(out, {"music": music, "speech": speech, "face": animate}, sweep)
    s = report["summary"]
    for medium, h in s["media"].items():
        recs = ", ".join(f"{n} {a:.2f}" for n, a in h["recognizers"].items())
        print(f"{medium}: accuracy at intensity 1: {recs}")
        for e, v in h["intensity_spearman"].items():
            print(f"  {e:<10} intensity Spearman {v:+.2f} "
                  f"{'pass' if h['intensity_spearman_pass'][e] else 'FAIL'}")
        for k, g in h["guards"].items():
            print(f"  {k:<22} {g['value']:.3f} {'pass' if g['pass'] else 'FAIL'}")
        for k, c in (h.get("correlates") or {}).items():
            print(f"  {k:<24} Spearman {c['spearman']:+.2f} {'pass' if c['pass'] else 'FAIL'}")
    if s["cross_modal"]:
        c = s["cross_modal"]
        print(f"cross-modal: dominant category matches the spec {c['dominant_match_rate']:.2f}; "
              f"mean VAD distance to spec {c['mean_vad_distance_to_spec']:.2f}, between media "
              f"{c['mean_vad_distance_between_media']:.2f}; transfer voice->music match "
              f"{c['transfer_dominant_match_rate']:.2f}")
    print(f"not landed yet: {', '.join(s['not_landed']) or 'none'}; time (s): {s['seconds']}")
    print(f"wrote {out / 'report.json'} and {out / 'report.html'}")
    return 0


def _recording_eval_args(args: argparse.Namespace, default_emotions: list[str]):
    """What `eval speech` and `eval face` check first: the emotions (parsed), --recordings, the
    output folder and the device; returns (emotions, output folder)."""
    from pathlib import Path

    from conditioning import CATEGORIES

    emotions = args.emotions or default_emotions
    for e in emotions:
        if e not in CATEGORIES:
            raise UsageError(f"--emotions {e!r}: the sweep takes category names; accepted: "
                             f"{', '.join(CATEGORIES)}")
    if args.recordings is not None and args.recordings < 1:
        raise UsageError("--recordings must be >= 1")
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {str(out)!r} exists and is not a folder")
    check_device(args.device)
    return emotions, out


def _eval_face(args: argparse.Namespace) -> int:
    emotions, out = _recording_eval_args(args, ["happy", "sad", "angry", "surprised"])
    if not 0 <= args.panel <= 100:
        raise UsageError(f"--panel must be in [0, 100] portraits, got {args.panel}")
    from skimage import data

    from evaluators.loop_face import evaluate_face, lfw_portraits
    from evaluators.loop_speech import real_recordings
    from generators.face import TalkingHeadPipeline
    from generators.face.portrait import analyse_portrait

    # the portrait first: a bad one is refused before any model is loaded or folder made
    portrait = analyse_portrait(args.portrait if args.portrait else data.astronaut())
    quiet_diffusers()
    pipe = TalkingHeadPipeline.from_pretrained(args.model).to(args.device)
    pipe.set_progress_bar_config(disable=True)
    clips = [c for c, _ in real_recordings() if "librivox" in str(c)][: args.recordings or 3]

    def animate(image, audio, sr, emotion, generator):
        return pipe(image, audio, sr, emotion=emotion, generator=generator, portrait=portrait)

    panel = ({"stills": pipe.expression_stills, "portraits": lfw_portraits(args.panel)}
             if args.panel else None)
    report = evaluate_face(animate, out, None, clips, emotions, args.intensities, panel=panel)
    for e, v in report["expression"].items():
        print(f"face: {e:<10} target top on {v['target_share_at_top']:.2f} of frames at the top "
              f"intensity; P(target) Spearman {v['spearman_of_means']:+.2f} "
              f"{'pass' if v['pass'] else 'FAIL'}")
    if panel:
        pr = report["portrait_panel"]
        print(f"portrait panel: {pr['portraits']} LFW faces ({len(pr['skipped'])} without a face "
              f"found); relaxed read as {pr['relaxed_read_as']}")
        for e, v in pr["emotions"].items():
            print(f"  {e:<10} read as {e} on {v['target_top_at_top']:.2f} of portraits at the top "
                  f"intensity; P(target) Spearman of means {v['spearman_of_means']:+.2f}, rising on "
                  f"{v['portraits_rising']:.2f} of portraits")
    for name, g in report["quality_guards"].items():
        print(f"  {name:<26} {g['value']:.3f} in {g['bounds']}: {'pass' if g['pass'] else 'FAIL'}")
    print(f"wrote {out / 'report.json'} and {out / 'report.html'}")
    return 0


def _eval_speech(args: argparse.Namespace) -> int:
    emotions, out = _recording_eval_args(args, ["angry", "happy", "fearful", "sad", "surprised"])
    from evaluators.loop_speech import evaluate_speech, real_recordings
    from evaluators.recognizers.speech import SpeechCueRecognizer, SpeechEmotionRecognizer
    from generators.speech import EmotionVoiceConversionPipeline

    quiet_diffusers()
    recordings = real_recordings(args.recordings)
    pipe = EmotionVoiceConversionPipeline.from_pretrained(args.model).to(args.device)
    pipe.set_progress_bar_config(disable=True)
    report = evaluate_speech(pipe, out, recordings, emotions, args.intensities,
                             [SpeechEmotionRecognizer.from_pretrained(), SpeechCueRecognizer()])
    acc = report["accuracy_at_max_intensity"]["accuracy"]
    print(f"speech: {report['sweep']['conversions']} conversions of {len(recordings)} real "
          f"recordings; recognizer accuracy at intensity {max(args.intensities):g} = {acc:.2f} "
          f"({'pass' if report['accuracy_pass'] else 'FAIL'} >= 0.80)")
    norm = report.get("speaker_normalised")
    if norm:
        print(f"  speaker-normalised reading (reference: the source recording): accuracy "
              f"{norm['accuracy_at_max_intensity']['accuracy']:.2f} "
              f"({'pass' if norm['accuracy_pass'] else 'FAIL'} >= 0.80)")
    matched = report.get("channel_matched")
    if matched:
        print(f"  channel-matched reading (reference: the source converted to neutral): accuracy "
              f"{matched['accuracy_at_max_intensity']['accuracy']:.2f} "
              f"({'pass' if matched['accuracy_pass'] else 'FAIL'} >= 0.80)")
    side = report.get("readings_side_by_side", {}).get("intensity_spearman", {})
    for e, v in side.items():
        print(f"  Spearman intensity vs P({e}): plain {v['plain']:+.2f}, speaker-normalised "
              f"{v['speaker_normalised']:+.2f}, channel-matched {v['channel_matched']:+.2f}")
    for k, c in report["correlates"].items():
        print(f"  {k:<24} {c['direction']:<4} {c['change_at_top']:+7.2f}  Spearman "
              f"{c['spearman_of_means']:+.2f} {'pass' if c['pass'] else 'FAIL'}")
    for name, g in report["quality_guards"].items():
        print(f"  {name:<22} {g['value']:.3f} in {g['bounds']}: {'pass' if g['pass'] else 'FAIL'}")
    print(f"wrote {out / 'report.json'} and {out / 'report.html'}")
    return 0


# -- affect bench -------------------------------------------------------------------------------
def _cmd_bench(args: argparse.Namespace) -> int:
    from apps.bench import run_bench

    check_device(args.device)

    results = run_bench(args.media, repeats=args.repeats, device=args.device)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for row in results:
        print(
            f"{row['medium']:<6} {row['task']:<48} {row['seconds_median']:7.2f} s "
            f"(min {row['seconds_min']:.2f}, {row['repeats']} runs)  {row['note']}"
        )
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
    p.set_defaults(func=_cmd_music)

    p = sub.add_parser("speech", help="emotional voice conversion of a recording")
    p.add_argument("input", help="a recording (wav, flac, ogg, opus, mp3; any rate; up to 120 s)")
    p.add_argument("--emotion", required=True, help="e.g. 'angry@0.7', 'sad -> happy over 3 s'")
    p.add_argument("--intensity", type=float, help="override the spec's intensity (0..1.5)")
    p.add_argument("-o", "--output", required=True, help="the .wav/.flac/.ogg file to write")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--steps", type=int, default=10, help="denoising steps (default 10)")
    p.add_argument("--guidance", type=float, default=1.5, help="guidance scale (default 1.5)")
    p.add_argument("--vocoder", choices=["hifigan", "world"], default="hifigan",
                   help="hifigan (default, neural) or world (the fallback)")
    p.add_argument("--vocoder-precision", choices=["auto", "half", "float32"], default="auto",
                   help="HiFi-GAN's precision: auto (default: float16 on CUDA, float32 on a CPU), "
                   "half (float16 on CUDA, bfloat16 on a CPU with native support), float32")
    p.add_argument("--model", help="a checkpoint folder or hub id (default: the embedded one)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--check", action="store_true",
                   help="read the result back: the speech recognizer against the source and alone, "
                        "and the speaker cosine to the source")
    p.set_defaults(func=_cmd_speech)

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
    p.set_defaults(func=_cmd_face)

    p = sub.add_parser("read", help="read the emotion of a recording, MIDI file, photo or video")
    p.add_argument("files", nargs="+",
                   help="recordings (wav, flac, ogg, opus, mp3), MIDI files, photos or videos")
    p.add_argument("--reference", nargs="+", metavar="NEUTRAL",
                   help="recordings: the same speaker's neutral speech, for the speaker-normalised "
                        "reading (speech-prosody-v1)")
    p.add_argument("--recognizer", help="default: speech-prosody-v1 (audio), music-features-v1 "
                   "(MIDI), face-fer-v1 (photos, videos); or hub:<model id or folder>")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_read)

    p = sub.add_parser("train", help="train a medium's model from a YAML recipe")
    p.add_argument("medium", choices=["music", "speech", "speech-recognizer", "face"], help="which model")
    p.add_argument("--config", required=True, help="e.g. configs/train/music.yaml")
    p.add_argument("--max-steps", type=int, help="override training.max_steps")
    p.add_argument("--output-dir", help="override training.output_dir")
    p.add_argument("--max-minutes", type=float, help="stop after a checkpoint at this wall time")
    p.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    p.add_argument("--prepare-only", action="store_true", help="only build the data cache")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="closed loop: generate, read back, score, write a report")
    p.add_argument(
        "medium",
        nargs="?",
        default="music",
        choices=["music", "speech", "face", "all"],
        help="which generator (default music)",
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
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("bench", help="speed of each pipeline on this machine")
    p.add_argument("media", nargs="*", default=["music"], help="media to time (default: all)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_bench)

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
