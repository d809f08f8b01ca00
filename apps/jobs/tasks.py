"""The jobs that are not one generation: the emotion vocabulary and how text parses
(``EmotionsJob``), the model registry (``ModelsJob``), the closed loop (``EvalJob``), training
(``TrainJob``); the bench's and the demo's jobs live with them (``apps.bench``, ``apps.demo``). Same shape as the media jobs:
``validate()`` first, then ``run(models)`` -> ``JobResult`` (lines to print, data as JSON)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from apps.jobs.base import JobError, JobResult, Models, check_device, parse_job_emotion, validator

EVAL_DEFAULT_EMOTIONS = {"music": ["happy", "sad", "angry", "calm", "fearful", "surprised"],
                         "speech": ["angry", "happy", "fearful", "sad", "surprised"],
                         "face": ["happy", "sad", "angry", "surprised"],
                         "vocoder": ["angry", "happy", "fearful", "sad", "surprised"]}


def _mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


# -- the vocabulary and the registry --------------------------------------------------------------
@dataclass
class EmotionsJob:
    """How emotion texts parse (the mapping shown), or the whole vocabulary when ``texts`` is empty."""

    texts: list[str] = field(default_factory=list)
    use_embedding: bool = True
    medium = "emotions"

    @validator
    def validate(self) -> None:
        for text in self.texts:
            parse_job_emotion(text) if self.use_embedding else _parse_lexicon_only(text)

    def run(self, models: Models) -> JobResult:
        from conditioning import ANCHORS, CATEGORIES, parse_emotion
        from conditioning.lexicon import load_lexicon
        from conditioning.parsing import __doc__ as forms_doc
        from conditioning.vocabulary import ALIASES, DESCRIPTIONS

        if not self.texts:
            rows = [{"category": k, "valence": round(ANCHORS[k].valence, 4),
                     "arousal": round(ANCHORS[k].arousal, 4), "dominance": round(ANCHORS[k].dominance, 4),
                     "rated_word": ANCHORS[k].rated_word,
                     "aliases": sorted(x for x, c in ALIASES.items() if c == k),
                     "description": DESCRIPTIONS[k]} for k in CATEGORIES]
            lines = ["Emotion vocabulary (VAD anchors in [-1, 1], from Warriner et al. 2013 norms)",
                     f"{'category':<10} {'valence':>8} {'arousal':>8} {'dominance':>9}  aliases"]
            lines += [f"{r['category']:<10} {r['valence']:>8.3f} {r['arousal']:>8.3f} "
                      f"{r['dominance']:>9.3f}  {', '.join(r['aliases'])}" for r in rows]
            lines.append(f"\nPackaged lexicon: {len(load_lexicon())} more words (e.g. wistful, furious); "
                         "other words go to the text-embedding mapper.")
            lines.append("\nAccepted forms" + forms_doc.split("Accepted forms", 1)[1].rstrip())
            return JobResult(self, [], lines, {"categories": rows, "lexicon_words": len(load_lexicon())})
        results = []
        for text in self.texts:
            spec = parse_emotion(text, use_embedding=None if self.use_embedding else False)
            info = spec.describe()
            info["input"] = text
            if spec.curve is not None:
                curve = spec.curve
                times = [curve.start + (curve.end - curve.start) * i / 4 for i in range(5)]
                info["curve_samples"] = [{"time": round(t, 4), "unit": curve.unit, "spec": s.to_string()}
                                         for t, s in zip(times, curve.sample(times))]
            results.append(info)
        lines = []
        for info in results:
            v = info["vad"]
            weights = ", ".join(f"{k} {w:.3g}" for k, w in info["weights"].items())
            lines += [f"{info['input']!r} -> {info['spec']}",
                      f"  weights: {weights}; intensity {info['intensity']:.3g}; dominant {info['dominant']}",
                      f"  VAD: valence {v['valence']:+.3f}, arousal {v['arousal']:+.3f}, "
                      f"dominance {v['dominance']:+.3f}"]
            lines += [f"  mapping: {note}" for note in info["notes"]]
            lines += [f"  at {s['time']:g} {s['unit']}: {s['spec']}" for s in info.get("curve_samples", [])]
        return JobResult(self, [], lines, results if len(results) > 1 else results[0])


def _parse_lexicon_only(text: str) -> None:
    from conditioning import parse_emotion

    try:
        parse_emotion(text, use_embedding=False)
    except ValueError as exc:
        raise JobError(str(exc)) from None


@dataclass
class ModelsJob:
    """Every model the package knows: role, source, licence, whether it is present."""

    medium = "models"

    @validator
    def validate(self) -> None:
        return None

    def run(self, models: Models) -> JobResult:
        from apps.registry import model_rows

        rows = model_rows()
        lines = []
        for r in rows:
            lines += [f"{r['name']}  [{r['medium']}]  {'present' if r['present'] else 'MISSING'}",
                      f"  role:    {r['role']}", f"  source:  {r['source']}", f"  licence: {r['licence']}"]
            if r.get("location"):
                lines.append(f"  at:      {r['location']}")
        return JobResult(self, [], lines, rows)


# -- the closed loop ------------------------------------------------------------------------------
@dataclass
class EvalJob:
    """``affect eval``: sweep a generator (or all), read back, score, write report.json/.html in
    ``output_dir``; or score files made anywhere (``files`` + ``labels``)."""

    medium_name: str = "music"
    output_dir: str | Path = "affect-eval"
    emotions: list[str] | None = None
    intensities: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    seeds: int = 3
    bars: int = 8
    recordings: int | None = None
    files: str | None = None
    labels: str | None = None
    model: str | None = None
    portrait: str | None = None
    panel: int = 100
    vocoder: str = "hifigan"
    device: str = "cpu"
    medium = "eval"
    _portrait: object = field(default=None, init=False, repr=False)

    @validator
    def validate(self) -> None:
        if self.files or self.labels:
            if not (self.files and self.labels):
                raise JobError("--files DIR and --labels labels.csv go together")
            return
        out = Path(self.output_dir)
        if self.medium_name == "music":
            self.emotions = self.emotions or EVAL_DEFAULT_EMOTIONS["music"]
            for e in self.emotions:
                parse_job_emotion(e)
            if not self.seeds >= 1 or not 1 <= self.bars <= 64:
                raise JobError("--seeds must be >= 1 and --bars in [1, 64]")
        elif self.medium_name in ("speech", "face", "vocoder"):
            from conditioning import CATEGORIES

            self.emotions = self.emotions or EVAL_DEFAULT_EMOTIONS[self.medium_name]
            for e in self.emotions:
                if e not in CATEGORIES:
                    raise JobError(f"--emotions {e!r}: the sweep takes category names; accepted: "
                                   f"{', '.join(CATEGORIES)}")
            if self.recordings is not None and self.recordings < 1:
                raise JobError("--recordings must be >= 1")
        if out.exists() and not out.is_dir():
            raise JobError(f"-o {str(out)!r} exists and is not a folder")
        check_device(self.device)
        if self.medium_name == "face":
            if not 0 <= self.panel <= 100:
                raise JobError(f"--panel must be in [0, 100] portraits, got {self.panel}")
            from skimage import data

            from generators.face.portrait import analyse_portrait

            # the portrait first: a bad one is refused before any model is loaded or folder made
            self._portrait = analyse_portrait(self.portrait if self.portrait else data.astronaut())

    def run(self, models: Models) -> JobResult:
        self.validate()
        run = {"speech": self._speech, "face": self._face, "all": self._all,
               "vocoder": self._vocoders}.get(self.medium_name, self._music)
        if self.files:
            run = self._files
        lines, report = run(models)
        return JobResult(self, [], lines, report)

    def _files(self, models: Models):
        from evaluators.loop import evaluate_files

        report = evaluate_files(self.files, self.labels, self.output_dir)
        acc = report["accuracy_at_max_intensity"]["accuracy"]
        lines = [f"scored {report['sweep']['pieces']} files, {len(report['failed'])} failed; accuracy {acc:.2f}"]
        lines += [f"  failed: {f['file']}: {f['error']}" for f in report["failed"]]
        lines.append(f"wrote {self.output_dir}/report.json and {self.output_dir}/report.html")
        return lines, report

    def _music(self, models: Models):
        from evaluators.loop import evaluate_music

        out = self.output_dir
        with models.use("music", self.model, self.device) as pipe:
            report = evaluate_music(pipe, out, self.emotions, self.intensities, list(range(self.seeds)),
                                    num_bars=self.bars)
        acc = report["accuracy_at_max_intensity"]["accuracy"]
        lines = [f"music: accuracy at intensity {max(self.intensities):g} = {acc:.2f} "
                 f"({report['sweep']['pieces']} pieces)"]
        lines += [f"  {e:<10} intensity Spearman {v['value']:+.2f} {_mark(v['pass'])}"
                  for e, v in report["intensity_spearman"].items()]
        lines += [f"  {name:<20} {g['value']:.3f} in {g['bounds']}: {_mark(g['pass'])}"
                  for name, g in report["quality_guards"].items()]
        lines.append(f"wrote {Path(out) / 'report.json'} and {Path(out) / 'report.html'}")
        return lines, report

    def _all(self, models: Models):
        from skimage import data

        from evaluators.loop_all import ALL_SWEEP, evaluate_all
        from generators.face.portrait import analyse_portrait

        out = Path(self.output_dir)
        sweep = copy.deepcopy(ALL_SWEEP)
        if self.recordings:
            sweep["speech"]["recordings"] = self.recordings
        if self.seeds != 3:  # the flag's default belongs to `eval music`
            sweep["music"]["seeds"] = list(range(self.seeds))
        with models.use("music", None, self.device) as music, \
                models.use("speech", None, self.device) as speech, \
                models.use("face", None, self.device) as face:
            portrait = analyse_portrait(data.astronaut())

            def animate(audio, sr, emotion, generator):
                return face(None, audio, sr, emotion=emotion, generator=generator, portrait=portrait)

            report = evaluate_all(out, {"music": music, "speech": speech, "face": animate}, sweep)
        from evaluators.loop_all import verdict

        s = report["summary"]
        lines = []
        for medium, h in s["media"].items():
            lines.append(verdict(medium, h))
            lines += [f"  {e:<10} intensity Spearman {v:+.2f} {_mark(h['intensity_spearman_pass'][e])}"
                      for e, v in h["intensity_spearman"].items()]
            lines += [f"  {k:<22} {g['value']:.3f} {_mark(g['pass'])}" for k, g in h["guards"].items()]
            lines += [f"  {k:<24} Spearman {c['spearman']:+.2f} {_mark(c['pass'])}"
                      for k, c in (h.get("correlates") or {}).items()]
        if s["cross_modal"]:
            c = s["cross_modal"]
            lines.append(f"cross-modal: dominant category matches the spec {c['dominant_match_rate']:.2f}; "
                         f"mean VAD distance to spec {c['mean_vad_distance_to_spec']:.2f}, between media "
                         f"{c['mean_vad_distance_between_media']:.2f}; transfer voice->music match "
                         f"{c['transfer_dominant_match_rate']:.2f}")
        lines.append(f"not landed yet: {', '.join(s['not_landed']) or 'none'}; took {s['wall_seconds'] / 60:.1f} min "
                     f"wall clock ({'media side by side, ' if s['side_by_side'] else ''}each part, s: {s['seconds']})")
        lines.append(f"wrote {out / 'report.json'} and {out / 'report.html'}")
        return lines, report

    def _face(self, models: Models):
        from evaluators.loop_face import evaluate_face, lfw_portraits
        from evaluators.loop_speech import real_recordings

        out, portrait = Path(self.output_dir), self._portrait
        clips = [c for c, _ in real_recordings() if "librivox" in str(c)][: self.recordings or 3]
        with models.use("face", self.model, self.device) as pipe:
            def animate(image, audio, sr, emotion, generator):
                return pipe(image, audio, sr, emotion=emotion, generator=generator, portrait=portrait)

            panel = ({"stills": pipe.expression_stills, "portraits": lfw_portraits(self.panel)}
                     if self.panel else None)
            from evaluators.recognizers import load_recognizer

            readers = [load_recognizer("face-fer-v1", medium="face"), load_recognizer("face-facex-v1", medium="face")]
            report = evaluate_face(animate, out, None, clips, self.emotions, self.intensities, readers,
                                   panel=panel)
        lines = [f"face: {e:<10} target top on {v['target_share_at_top']:.2f} of frames at the top "
                 f"intensity; P(target) Spearman {v['spearman_of_means']:+.2f} {_mark(v['pass'])}"
                 for e, v in report["expression"].items()]
        if panel:
            pr = report["portrait_panel"]
            lines.append(f"portrait panel: {pr['portraits']} LFW faces ({len(pr['skipped'])} without a face "
                         f"found); relaxed read as {pr['relaxed_read_as']}")
            lines += [f"  {e:<10} read as {e} on {v['target_top_at_top']:.2f} of portraits at the top "
                      f"intensity; P(target) Spearman of means {v['spearman_of_means']:+.2f}, rising on "
                      f"{v['portraits_rising']:.2f} of portraits" for e, v in pr["emotions"].items()]
        lines += [f"  {name:<26} {g['value']:.3f} in {g['bounds']}: {_mark(g['pass'])}"
                  for name, g in report["quality_guards"].items()]
        lines.append(f"wrote {out / 'report.json'} and {out / 'report.html'}")
        return lines, report

    def _vocoders(self, models: Models):
        from conditioning.audio import resample
        from evaluators.loop_speech import real_recordings
        from evaluators.loop_vocoder import evaluate_vocoders
        from generators.speech.pipeline_speech import FAST_VOCODER_DIR, SR

        out = Path(self.output_dir)
        recordings = real_recordings(self.recordings)
        vocoders = ["hifigan"] + (["fast"] if (FAST_VOCODER_DIR / "config.json").is_file() else [])
        with models.use("speech", self.model, self.device) as pipe:
            def copy(wav, sr, vocoder):
                return pipe._vocode(resample(wav, sr, SR), name=vocoder), SR

            report = evaluate_vocoders(partial(pipe), copy, out, recordings, self.emotions, vocoders,
                                       top=max(self.intensities))
        lines = [f"{v}: copy log-mel distance {s['log_mel_distance_copy']:.3f}, log-spectrum distance "
                 f"{s['log_spectrum_distance_copy']:.3f}, PESQ "
                 f"{'(not installed)' if s['pesq_wb_copy'] is None else format(s['pesq_wb_copy'], '.2f')}, harmonic "
                 f"contrast {s['harmonic_contrast_copy']:.3f} (the recordings' "
                 f"{report['harmonic_contrast_source']:.3f}); word error "
                 f"{100 * s['wer_intensity_0']:.1f} % at intensity 0, {100 * s['wer_top']:.1f} % at the top; "
                 f"speaker cosine {s['speaker_cosine_mean']:.3f} (min {s['speaker_cosine_min']:.3f}); "
                 f"copy real-time factor {s['copy_real_time_factor']:.3f}" for v, s in report["vocoders"].items()]
        lines += [f"{v} against hifigan: log-mel distance x{a['log_mel_distance_ratio']:.2f}, log-spectrum "
                  f"distance x{a['log_spectrum_distance_ratio']:.2f}, PESQ "
                  f"{'-' if a['pesq_wb_change'] is None else format(a['pesq_wb_change'], '+.2f')}, word error "
                  f"{a['wer_points']:+.1f} points, speaker cosine {a['speaker_cosine_change']:+.3f}"
                  for v, a in report.get("against_hifigan", {}).items()]
        lines.append(f"wrote {out / 'report.json'} and {out / 'report.html'}")
        return lines, report

    def _speech(self, models: Models):
        from evaluators.loop_speech import evaluate_speech, real_recordings
        from evaluators.recognizers.speech import SpeechCueRecognizer, SpeechEmotionRecognizer

        out = Path(self.output_dir)
        recordings = real_recordings(self.recordings)
        with models.use("speech", self.model, self.device) as pipe:
            report = evaluate_speech(partial(pipe, vocoder=self.vocoder), out, recordings, self.emotions,
                                     self.intensities,
                                     [SpeechEmotionRecognizer.from_pretrained(), SpeechCueRecognizer()])
        from evaluators.report import accuracy_text

        acc = report["accuracy_at_max_intensity"]
        plain = report["plain_reading"]["accuracy_at_max_intensity"]
        lines = [f"speech: {report['sweep']['conversions']} conversions of {len(recordings)} real "
                 f"recordings ({self.vocoder} vocoder); accuracy at intensity {max(self.intensities):g}, "
                 f"{report['headline_reading']['reading']}: {accuracy_text(acc)} "
                 f"({_mark(report['accuracy_pass'])} >= 0.80); the plain reading (the known limit): "
                 f"{accuracy_text(plain)}"]
        for key, what in (("speaker_normalised", "speaker-normalised reading (reference: the source "
                           "recording)"), ("channel_matched", "channel-matched reading (reference: the "
                           "source converted to neutral)")):
            sec = report.get(key)
            if sec:
                lines.append(f"  {what}: accuracy {sec['accuracy_at_max_intensity']['accuracy']:.2f} "
                             f"({_mark(sec['accuracy_pass'])} >= 0.80)")
        side = report.get("readings_side_by_side", {}).get("intensity_spearman", {})
        lines += [f"  Spearman intensity vs P({e}): plain {v['plain']:+.2f}, speaker-normalised "
                  f"{v['speaker_normalised']:+.2f}, channel-matched {v['channel_matched']:+.2f}"
                  for e, v in side.items()]
        lines += [f"  {k:<24} {c['direction']:<4} {c['change_at_top']:+7.2f}  Spearman "
                  f"{c['spearman_of_means']:+.2f} {_mark(c['pass'])}" for k, c in report["correlates"].items()]
        lines += [f"  {name:<22} {g['value']:.3f} in {g['bounds']}: {_mark(g['pass'])}"
                  for name, g in report["quality_guards"].items()]
        lines.append(f"wrote {out / 'report.json'} and {out / 'report.html'}")
        return lines, report


# -- training, the bench, the demo -----------------------------------------------------------------
@dataclass
class TrainJob:
    """``affect train MEDIUM --config recipe.yaml``: train a medium's model (resumable)."""

    medium_name: str
    config: str
    max_steps: int | None = None
    output_dir: str | None = None
    max_minutes: float | None = None
    resume: bool = True
    prepare_only: bool = False
    medium = "train"
    _cfg: dict | None = field(default=None, init=False, repr=False)

    @validator
    def validate(self) -> dict:
        from configs import load_layered

        if self.medium_name not in ("music", "speech", "speech-recognizer", "face", "vocoder"):
            raise JobError(f"no trainer for {self.medium_name!r}; available: music, speech, "
                           "speech-recognizer, face, vocoder")
        self._cfg = cfg = load_layered(self.config)
        if self.medium_name != "speech-recognizer":
            for section in ("data", "model", "training"):
                if section not in cfg:
                    raise JobError(f"config {self.config!r} has no '{section}' section")
            if self.max_minutes is not None:
                cfg["training"]["max_minutes"] = self.max_minutes
        return cfg

    def run(self, models: Models) -> JobResult:
        cfg = self._cfg or self.validate()
        if self.medium_name == "music":
            from generators.music.training import train_music

            final = train_music(cfg, max_steps=self.max_steps, output_dir=self.output_dir,
                                resume=self.resume, prepare_only=self.prepare_only)
            return JobResult(self, [], ["corpus prepared" if final is None else f"wrote {final}"], str(final))
        if self.medium_name in ("speech", "face", "vocoder"):
            if self.medium_name == "speech":
                from generators.speech.training import train_speech as trainer
            elif self.medium_name == "vocoder":
                from generators.speech.training_vocoder import train_vocoder as trainer
            else:
                trainer = _face_trainer()
            final = trainer(cfg, max_steps=self.max_steps, output_dir=self.output_dir, resume=self.resume)
            return JobResult(self, [], [f"wrote {final}"], str(final))
        return self._recognizer(cfg)

    def _recognizer(self, cfg: dict) -> JobResult:
        from evaluators.recognizers.speech import train_recognizer

        data = cfg.get("data", {})
        folder = data.get("folder")
        if not folder:  # the synthetic corpus, rendered by the speech generator's rules
            from generators.speech.corpus import render_from_config

            folder = render_from_config(data)
        out = self.output_dir or cfg["training"]["output_dir"]
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
        line = (f"wrote {out} (held-out accuracy {rec.meta['validation_accuracy']:.3f}"
                + (f", speaker-normalised {ref['validation_accuracy']:.3f}" if ref else "")
                + f" on {rec.meta['clips']} clips; {rec.meta['validation']}; "
                f"fit in {(time.time() - t0) / 60:.1f} min)")
        return JobResult(self, [], [line], rec.meta)


def _face_trainer():
    """Face training, with the speech pipeline as its converter of the synthetic corpus (the share
    ``data.convert_fraction``): generators/face never imports the speech generator, apps/ joins them."""
    import functools

    from generators.face.training import train_face
    from generators.speech import EmotionVoiceConversionPipeline

    evc = functools.cache(EmotionVoiceConversionPipeline.from_pretrained)  # loaded on the first conversion
    return functools.partial(train_face, convert=lambda wav, sr, emotion, generator: evc()(
        wav, sr, emotion=emotion, generator=generator).audio)
