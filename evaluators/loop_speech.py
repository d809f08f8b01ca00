"""The closed loop for speech: convert real recordings to emotions x intensities, read every output
back (recognizers, ASR, speaker encoder, prosody statistics), score, and write the report.

The converter is an argument (``convert(wav, sample_rate, emotion=..., generator=...)`` returning
an object with ``.audio`` and ``.sample_rate``), so evaluators never import a generator.

What is checked, with the thresholds of the speech issue:

- words kept: pocketsphinx WER on converted speech at intensity 1 at most 10 points above the WER
  on the sources;
- speaker kept: GE2E cosine (source, converted) >= 0.75 at intensity 1;
- emotion delivered: the acoustic correlates the literature fixes (``LITERATURE``) move the stated
  way and monotonically over the intensities (Spearman >= 0.9 of the mean over recordings), and
  the recognizer reads the target at intensity 1 for >= 80 % of conversions;
- clean audio: no NaN, no clipping, peak <= -1 dBFS.

Recognizers that accept a ``reference`` (speech-prosody-v1 with its second head) read every
conversion twice: plainly (the clip alone) and **speaker-normalised**, with the source recording
(the same speaker's neutral speech) as the reference. Both readings are reported side by side
(``recognizers`` lists the normalised one as ``<name>+reference``). The speaker-normalised
reading is the figure of record (``accuracy_at_max_intensity``, ``intensity_spearman``,
``headline_reading``): in conversion the source is always at hand. The plain reading stays beside
it (``plain_reading``) as the known limit of a recognizer that never heard real emotional speech.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from conditioning import parse_emotion
from conditioning.audio import load_audio, save_audio
from evaluators.metrics import EmotionAccuracy, IntensityMonotonicity, WordErrorRate, spearman
from evaluators.metrics.speech import (
    SignalGuards,
    SpeakerSimilarity,
    prosody_statistics,
    transcribe,
)
from evaluators.recognizers.speech import acoustic_features, reference_features
from evaluators.report import reader_agreement

logger = logging.getLogger(__name__)

TESTDATA = Path("/usr/share/pocketsphinx/test/data")
#: correlate -> direction (+1 up, -1 down) per emotion: Juslin & Laukka (2003) Table 7 (anger,
#: happiness, fear, sadness: F0 level, intensity, rate), Scherer (2003) for surprise (F0 only).
#: "tempo" is source duration / converted duration (> 1 faster). Smiling raises the formants
#: (Tartter 1980): the median F3 over voiced frames for happiness (F3 follows the vocal tract's
#: length and is the steadiest of the three; Eide & Gish 1996 normalise speakers by it).
LITERATURE = {
    "angry": {"f0_median_st": 1, "level_db": 1, "tempo": 1},
    "happy": {"f0_median_st": 1, "level_db": 1, "tempo": 1, "f3_median_hz": 1},
    "fearful": {"f0_median_st": 1, "tempo": 1},
    "sad": {"f0_median_st": -1, "level_db": -1, "tempo": -1},
    "surprised": {"f0_median_st": 1},
}
SPEECH_TARGETS = {"wer_points": 10.0, "speaker_cosine": 0.75, "spearman": 0.9, "accuracy": 0.8,
                  "peak_db": -1.0}


def real_recordings(limit: int | None = None) -> list[tuple[Path, str]]:
    """(clip, transcript) of Debian's pocketsphinx-testdata: 5 LibriVox excerpts (one reader) and
    5 spoken card names (another speaker), 16 kHz."""
    out = []
    for folder, trans in (("librivox", "transcription"), ("cards", "cards.transcription")):
        t = TESTDATA / folder / trans
        if not t.is_file():
            continue
        for line in t.read_text().splitlines():
            m = re.match(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\((\S+)\)\s*$", line)
            if m:
                clip = TESTDATA / folder / f"{m.group(2)}.wav"
                if clip.is_file():
                    out.append((clip, " ".join(m.group(1).split())))
    if not out:
        raise FileNotFoundError(2, "no real recordings (install Debian's pocketsphinx-testdata)", str(TESTDATA))
    if limit:  # alternate speakers so a short sweep still has both
        lib = [o for o in out if "librivox" in str(o[0])]
        cards = [o for o in out if "cards" in str(o[0])]
        mixed = [x for pair in zip(lib, cards) for x in pair] + lib[len(cards):] + cards[len(lib):]
        out = mixed[:limit]
    return out


def evaluate_speech(
    convert: Callable,
    out_dir: str | Path,
    recordings: list[tuple[Path, str]],
    emotions: list[str],
    intensities: list[float],
    recognizers: list | None = None,
    seed: int = 0,
    keep_audio: bool = True,
    top_recordings: list[tuple[Path, str]] | None = None,
) -> dict:
    """Run the sweep and write ``report.json`` / ``report.html``; returns the report.

    ``top_recordings``: more recordings converted at the top intensity only; they count in the
    accuracy, speaker and signal figures (more outputs per emotion where the accuracy is read),
    not in the intensity Spearman figures or the word error, which take the full sweep's
    recordings."""
    import torch

    from evaluators.recognizers.speech import SpeechEmotionRecognizer
    from evaluators.report import write_report

    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    recognizers = recognizers or [SpeechEmotionRecognizer.from_pretrained()]
    main = recognizers[0]
    for e in emotions:
        parse_emotion(e)
    top = max(intensities)
    normalising = [r for r in recognizers if getattr(r, "supports_reference", False)]
    names = [n for n, _ in _readings(recognizers)]
    acc = {n: EmotionAccuracy() for n in names}
    mono = {n: IntensityMonotonicity() for n in names}
    wer_src, wer_conv = WordErrorRate(), WordErrorRate()
    spk, guards = SpeakerSimilarity(), SignalGuards()
    rows, sources = [], []
    full = len(recordings)
    for k, (clip, text) in enumerate(list(recordings) + list(top_recordings or [])):
        src = load_audio(clip)
        sweep = intensities if k < full else [top]
        s_stats = prosody_statistics(src.wav, src.sample_rate)
        # word error on the full sweep's recordings (the offline recognizer is the slow part)
        hyp = transcribe(src.wav, src.sample_rate) if k < full else None
        if hyp is not None:
            wer_src.update(text, hyp)
        sources.append({"file": str(clip), "text": text, "asr": hyp, **s_stats})
        # the same speaker's neutral voice through the converter's own channel (analysis,
        # re-synthesis, vocoder): the reference of the channel-matched reading
        neutral = (convert(src.wav, src.sample_rate, emotion="neutral",
                           generator=torch.Generator().manual_seed(seed)) if normalising else None)
        # recognizers that read acoustic functionals get them computed once per clip and once per
        # reference (the same readings as calling each recognizer on the audio)
        refs = ({"source": reference_features((src.wav, src.sample_rate)),
                 "neutral": reference_features((neutral.audio, neutral.sample_rate))} if normalising else {})
        for emotion in emotions:
            for intensity in sweep:
                res = convert(src.wav, src.sample_rate, emotion=f"{emotion}@{intensity:g}",
                              generator=torch.Generator().manual_seed(seed))
                guards.update(res.audio)
                stats = prosody_statistics(res.audio, res.sample_rate)
                stats["tempo"] = s_stats["active_seconds"] / max(stats["active_seconds"], 1e-3)
                row = {"recording": k, "emotion": emotion, "intensity": intensity, **stats}
                if k >= full:
                    row["top_only"] = True
                out_audio = load_audio(res.audio, res.sample_rate)
                feats = acoustic_features(out_audio.wav, out_audio.sample_rate) if any(
                    hasattr(r, "read_features") for r in recognizers) else None
                for rec in recognizers:
                    take = partial(_take, emotion=emotion, intensity=intensity, top=top,
                                   mono=mono if k < full else None, acc=acc, row=row, is_main=rec is main)
                    shared = hasattr(rec, "read_features")
                    take(_one(rec.read_features(feats)) if shared else rec(res.audio, res.sample_rate),
                         rec.name, "")
                    if rec in normalising:  # the source recording is the speaker's neutral voice
                        take(_one(rec.read_features(feats, refs["source"])) if shared else
                             rec(res.audio, res.sample_rate, reference=(src.wav, src.sample_rate)),
                             f"{rec.name}+reference", "_normalised")
                        take(_one(rec.read_features(feats, refs["neutral"])) if shared else
                             rec(res.audio, res.sample_rate, reference=(neutral.audio, neutral.sample_rate)),
                             f"{rec.name}+neutral-conversion", "_channel_matched", vad=False)
                if intensity == top:
                    if k < full:
                        row["asr"] = transcribe(res.audio, res.sample_rate)
                        e, n = wer_conv.edits, wer_conv.words
                        wer_conv.update(text, row["asr"])
                        row["wer"] = (wer_conv.edits - e) / max(wer_conv.words - n, 1)
                    row["speaker_cosine"] = spk.update(src.wav, src.sample_rate, res.audio, res.sample_rate)
                    if keep_audio:
                        path = out / "audio" / f"{k:02d}_{emotion}_{intensity:g}.wav"
                        save_audio(path, res.audio, res.sample_rate)
                        row["file"] = str(path.relative_to(out))
                rows.append(row)
            logger.info("speech eval: recording %d %s done", k, emotion)
    return write_report(out, _speech_report(rows, sources, emotions, intensities, recognizers,
                                            acc, mono, wer_src, wer_conv, spk, guards))


def _one(readings):
    """The reading of one clip (``read_features`` gives a list for a batch, or one reading)."""
    return readings[0] if isinstance(readings, list) else readings


def _take(reading, key: str, suffix: str, *, emotion: str, intensity: float, top: float, mono: dict,
          acc: dict, row: dict, is_main: bool, vad: bool = True) -> None:
    """Score one reading (``key`` in ``mono``/``acc``) and note it in the row: the main
    recognizer's as ``read<suffix>``, ``p_target<suffix>`` (and VAD), the others' as
    ``read:<key>``."""
    p = reading.probabilities[emotion]
    if mono is not None:  # None: a top-only recording, outside the Spearman figures
        mono[key].update(emotion, intensity, p)
    if intensity == top:
        acc[key].update(emotion, reading.category)
    if not is_main:
        row[f"read:{key}"] = reading.category
        return
    row.update({f"read{suffix}": reading.category, f"p_target{suffix}": p})
    if vad:
        row.update({f"valence{suffix}": reading.valence, f"arousal{suffix}": reading.arousal})


def _speech_report(rows, sources, emotions, intensities, recognizers, acc, mono, wer_src, wer_conv,
                   spk, guards) -> dict:
    main = recognizers[0]
    correlates = {}
    swept = [r for r in rows if not r.get("top_only")]  # the recordings of the full sweep
    for emotion, fixed in LITERATURE.items():
        if emotion not in emotions:
            continue
        for name, sign in fixed.items():
            per_rec = []
            means = []
            for x in intensities:
                vals = [r[name] for r in swept if r["emotion"] == emotion and r["intensity"] == x]
                means.append(float(np.nanmean(vals)))
            for k in sorted({r["recording"] for r in swept}):
                ys = [next(r[name] for r in swept if r["emotion"] == emotion and r["intensity"] == x
                           and r["recording"] == k) for x in intensities]
                per_rec.append(spearman(intensities, np.multiply(ys, sign)))
            rho = spearman(intensities, np.multiply(means, sign))
            correlates[f"{emotion}:{name}"] = {
                "direction": "up" if sign > 0 else "down", "means": means,
                "change_at_top": means[-1] - means[0], "spearman_of_means": rho,
                "share_of_recordings_spearman_ge_0.9": float(np.mean(np.array(per_rec) >= 0.9)),
                "pass": bool(rho >= SPEECH_TARGETS["spearman"]),
            }
    wsrc, wconv = wer_src.compute(), wer_conv.compute()
    s = spk.compute()
    g = guards.compute()
    head = f"{main.name}+reference" if f"{main.name}+reference" in acc else main.name
    a = acc[head].compute()
    plain = acc[main.name].compute()
    quality = {"wer_source": wsrc, "wer_converted_at_top": wconv,
               "wer_increase_points": 100 * (wconv - wsrc), "speaker_cosine_mean": s["mean"],
               "speaker_cosine_min": s["min"], "max_peak_db": g["max_peak_db"],
               "clips_with_nan": g["nan"], "clips_clipped": g["clipped"]}
    return {
        "medium": "speech",
        "sweep": {"emotions": emotions, "intensities": intensities,
                  "recordings": [Path(x["file"]).name for x in sources], "conversions": len(rows),
                  "top_only_recordings": len({r["recording"] for r in rows if r.get("top_only")})},
        "recognizer": {"name": main.name, "licence": main.licence},
        "recognizers": [{"name": n, "licence": lic,
                         "reading": READING_KINDS[n.split("+")[1] if "+" in n else ""],
                         "accuracy_at_max_intensity": acc[n].compute()["accuracy"],
                         "n": acc[n].compute()["n"], "standard_error": acc[n].compute()["standard_error"],
                         "intensity_spearman": mono[n].compute()} for n, lic in _readings(recognizers)],
        "agreement_at_top": reader_agreement(
            [r for r in rows if r["intensity"] == max(intensities)],
            {**({head: "read_normalised"} if head != main.name else {}), main.name: "read",
             **{r.name: f"read:{r.name}" for r in recognizers if r is not main}}),
        "headline_reading": {"name": head, "reading": READING_KINDS[head.split("+")[1] if "+" in head else ""]},
        # the rows' fields of the headline reading (the page's plots read them)
        "row_suffix": "_normalised" if head != main.name else "",
        "accuracy_at_max_intensity": a,
        "accuracy_pass": bool(a["accuracy"] >= SPEECH_TARGETS["accuracy"]),
        "intensity_spearman": {e: {"value": v, "pass": bool(v >= SPEECH_TARGETS["spearman"])}
                               for e, v in mono[head].compute().items()},
        "plain_reading": {
            "name": main.name, "accuracy_at_max_intensity": plain,
            "intensity_spearman": mono[main.name].compute(),
            "note": "the known limit: the clip alone, without the speaker's neutral voice, read by a "
                    "recognizer that never heard real emotional speech"},
        **_normalised_section(main, acc, mono),
        "correlates": correlates,
        "quality": quality,
        "quality_guards": {
            "wer_increase_points": {"value": quality["wer_increase_points"],
                                    "bounds": [-100.0, SPEECH_TARGETS["wer_points"]],
                                    "pass": bool(quality["wer_increase_points"] <= SPEECH_TARGETS["wer_points"])},
            "speaker_cosine_min": {"value": s["min"], "bounds": [SPEECH_TARGETS["speaker_cosine"], 1.0],
                                   "pass": bool(s["min"] >= SPEECH_TARGETS["speaker_cosine"])},
            "max_peak_db": {"value": g["max_peak_db"], "bounds": [-100.0, SPEECH_TARGETS["peak_db"]],
                            "pass": bool(g["max_peak_db"] <= SPEECH_TARGETS["peak_db"] + 1e-3
                                         and g["nan"] == 0 and g["clipped"] == 0)},
        },
        "sources": sources,
        "rows": rows,
    }


def _readings(recognizers) -> list[tuple[str, str]]:
    """(name, licence) of every reading: each recognizer's plain one, then the speaker-normalised
    ones of those that accept a reference."""
    out = [(r.name, r.licence) for r in recognizers]
    for suffix in ("reference", "neutral-conversion"):
        out += [(f"{r.name}+{suffix}", r.licence) for r in recognizers if getattr(r, "supports_reference", False)]
    return out


#: What each reading gives the recognizer besides the clip.
READING_KINDS = {
    "": "plain (the clip alone)",
    "reference": "speaker-normalised (reference: the source recording)",
    "neutral-conversion": "speaker- and channel-normalised (reference: the source converted to neutral, "
                          "through the same analysis, re-synthesis and vocoder)",
}


def _normalised_section(main, acc, mono) -> dict:
    """The main recognizer's speaker-normalised reading beside its plain one (empty when it has
    none)."""
    key = f"{main.name}+reference"
    if key not in acc:
        return {}
    a, plain = acc[key].compute(), acc[main.name].compute()
    sp, sp_plain = mono[key].compute(), mono[main.name].compute()
    matched_key = f"{main.name}+neutral-conversion"
    am, spm = acc[matched_key].compute(), mono[matched_key].compute()
    return {
        "speaker_normalised": {
            "name": key,
            "reference": "the source recording (the same speaker's neutral speech, same words)",
            "accuracy_at_max_intensity": a,
            "accuracy_pass": bool(a["accuracy"] >= SPEECH_TARGETS["accuracy"]),
            "intensity_spearman": {e: {"value": v, "pass": bool(v >= SPEECH_TARGETS["spearman"])}
                                   for e, v in sp.items()},
        },
        "channel_matched": {
            "name": matched_key,
            "reference": READING_KINDS["neutral-conversion"].split("(reference: ")[1].rstrip(")"),
            "accuracy_at_max_intensity": am,
            "accuracy_pass": bool(am["accuracy"] >= SPEECH_TARGETS["accuracy"]),
            "intensity_spearman": {e: {"value": v, "pass": bool(v >= SPEECH_TARGETS["spearman"])}
                                   for e, v in spm.items()},
        },
        "readings_side_by_side": {
            "accuracy_at_max_intensity": {"plain": plain["accuracy"], "speaker_normalised": a["accuracy"],
                                          "channel_matched": am["accuracy"]},
            "intensity_spearman": {e: {"plain": sp_plain.get(e), "speaker_normalised": v,
                                       "channel_matched": spm.get(e)} for e, v in sp.items()},
        },
    }
