"""EmotionVoiceConversionPipeline: a recording + an emotion spec -> the same words, the same voice,
the target emotion at the target intensity.

Data flow (per utterance; long inputs are handled in windows, see below):

1. the recording is read at any rate/channel count, mixed to mono and resampled to 22,050 Hz;
   leading and trailing silence are set aside and put back unchanged at the end;
2. WORLD analysis gives F0, spectral envelope and aperiodicity at the mel frame rate; the
   content cepstrum, source prosody and the GE2E speaker embedding are the condition;
3. the spec is steered by the speech ``DirectionVectorModel`` (after EmoReg: neutral + intensity x
   typical length x direction, per category of a mixture) into a prosody-change embedding, per
   frame when the spec is an ``EmotionCurve``;
4. the ``ProsodyDenoiser`` generates the frame-level changes by reverse diffusion (DPM-Solver++,
   classifier-free guidance on the emotion);
5. the changes are applied to the WORLD parameters, which are synthesised; the HiFi-GAN V1
   vocoder re-synthesises the mel spectrogram of that signal into the output waveform (WORLD's own
   waveform is the stated fallback, ``vocoder="world"``);
6. a peak limiter keeps the output at or below -1 dBFS.

Long inputs: the model runs on windows of ``WINDOW_FRAMES`` frames (about 11.9 s) overlapping by
``OVERLAP_FRAMES``, cross-faded; analysis, synthesis and the vocoder work on the whole signal (the
vocoder in overlapping blocks whose edges are discarded), so there is no seam to hear.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline, DPMSolverMultistepScheduler

from conditioning import DirectionVectorModel, EmotionSpec, parse_emotion
from conditioning.audio import load_audio, speech_bounds
from generators.modeling_1d import WindowRequest, sample_windows_batch
from generators.pipeline_utils import DenoiserCheckpointMixin, run_calls, sample_by_steps
from generators.speech.features import (
    CHANGE_SCALES,
    CHANGES,
    FRAME_MS,
    SR,
    apply_prosody,
    content_features,
    prosody_features,
    synthesize,
    warp_mel,
    world_analyze,
)
from generators.speech.modeling_speech import ProsodyDenoiser
from generators.speech.profiles import PROSODY, clip_raw, default_direction_model, from_z, to_z
from generators.speech.vocoder import MelSpectrogram, load_hifigan

logger = logging.getLogger(__name__)

DEFAULT_DIR = Path(__file__).parent / "default"
#: the CPU-fast vocoder distilled from HiFi-GAN V1 (``affect train vocoder``; modeling_vocoder.py)
FAST_VOCODER_DIR = Path(__file__).parent / "vocoder_fast"
#: the neural vocoders by name, and WORLD's own waveform
VOCODERS = ("hifigan", "fast", "world")
MAX_SECONDS = 120.0
WINDOW_FRAMES = 1024
OVERLAP_FRAMES = 128
#: HiFi-GAN's block (frames): its activations for one block dominate the process's peak memory
#: (30 s input, 2026-12-04: 512 frames 1.84 GB, 256 frames 1.32 GB, 6 % slower)
VOCODER_BLOCK = 256
VOCODER_CONTEXT = 32
PEAK_DBFS = -1.0
#: the loudest level (RMS, dBFS) HiFi-GAN is given: its output passes a tanh, and by copy-synthesis
#: of two real recordings its log-mel error is flat from -40 to -21 dBFS and grows above (a louder
#: angry voice came out 2 dB quieter, with 8 % of its samples pressed against full scale on a loud
#: recording); louder signals are vocoded at this level and scaled back, and the peak limiter, not
#: the vocoder, then keeps the peaks at PEAK_DBFS
VOCODER_LEVEL_DBFS = -24.0
#: HiFi-GAN's precision: "auto" is float16 on CUDA and float32 on a CPU; "half" is float16 on CUDA
#: and bfloat16 on a CPU with native support for it; "float32" is full precision everywhere
VOCODER_PRECISIONS = ("auto", "half", "float32")
#: frames past the last voiced one that the model generates; the rest of the unvoiced tail holds
#: the last generated frame's changes (see ``generated_frames``)
TAIL_FRAMES = 3


def make_scheduler(training: bool = False):
    """Cosine-schedule v-prediction; DPM-Solver++ (2nd order) for sampling."""
    if training:
        from diffusers import DDPMScheduler

        return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                             prediction_type="v_prediction")
    return DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                                       algorithm_type="dpmsolver++", solver_order=2,
                                       prediction_type="v_prediction")


@dataclass
class SpeechOutput:
    """Converted speech: ``audio`` (float32 mono in [-1, 1]) at ``sample_rate``."""

    audio: np.ndarray
    sample_rate: int
    spec: EmotionSpec
    changes: np.ndarray = field(repr=False)  # (T, 5) frame-level changes that were applied
    embedding: np.ndarray = field(repr=False)  # (T, 8) standardised prosody-change embedding
    notes: list[str] = field(default_factory=list)
    #: how much the peak limiter lowered the converted speech's level (dB, RMS over the speech):
    #: "louder" asked of a recording already near full scale is partly realised as limiting
    limited_db: float = 0.0

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    def save(self, path: str | Path) -> None:
        from conditioning.audio import save_audio

        save_audio(path, self.audio, self.sample_rate)

    def summary(self) -> dict:
        """Utterance-level change that was applied (medians over voiced/speech frames)."""
        c = self.changes
        return {name: round(float(np.median(c[:, i])), 3) for i, name in enumerate(CHANGES)}


def limit_peaks(wav: np.ndarray, sr: int, ceiling_db: float = PEAK_DBFS) -> np.ndarray:
    """Smooth peak limiter: gain = min(1, ceiling / peak envelope), 2 ms attack, 60 ms release."""
    ceiling = 10 ** (ceiling_db / 20)
    env = np.abs(wav).astype(np.float64)
    need = np.minimum(1.0, ceiling / np.maximum(env, 1e-9))
    if need.min() >= 1.0:
        return wav.astype(np.float32)
    from scipy.ndimage import minimum_filter1d
    from scipy.signal import lfilter

    hold = minimum_filter1d(need, size=max(3, int(0.004 * sr)), mode="nearest")
    a = np.exp(-1.0 / (0.06 * sr))  # release: one-pole smoothing of the gain, then never above need
    smooth = lfilter([1 - a], [1, -a], hold - 1.0, zi=[0.0])[0] + 1.0
    gain = np.minimum(hold, smooth)
    out = wav * gain
    return np.clip(out, -ceiling, ceiling).astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def level_taken_db(before: np.ndarray, after: np.ndarray) -> float:
    """The level (RMS) that limiting took off a signal, in dB (0 when nothing was taken)."""
    a, b = _rms(before), _rms(after)
    return 0.0 if a <= 0.0 or b <= 0.0 else max(0.0, 20.0 * np.log10(a / b))


class EmotionVoiceConversionPipeline(DenoiserCheckpointMixin, DiffusionPipeline):
    """Emotional voice conversion. ``pipe(audio, sample_rate, emotion="angry@0.7")``."""

    def __init__(self, denoiser: ProsodyDenoiser, scheduler,
                 direction_model: DirectionVectorModel | None = None) -> None:
        """``direction_model``: the emotion -> prosody-change directions, saved and loaded with the
        checkpoint (``emotion/``); None takes the literature profiles (``default_direction_model``)."""
        super().__init__()
        self.register_modules(denoiser=denoiser, scheduler=scheduler)
        self.direction_model = direction_model if direction_model is not None else default_direction_model()
        self.vocoder_name = "universal"
        self._vocoder = None
        self._fast_vocoder = None
        self._mel = None
        self._speaker = None

    # -- loading and saving (generators.pipeline_utils) -----------------------------------------
    _denoiser_class, _medium, _default_dir = ProsodyDenoiser, "speech", DEFAULT_DIR

    def _settings(self) -> dict:
        return {"vocoder": self.vocoder_name, "sample_rate": SR, "prosody": list(PROSODY),
                "changes": list(CHANGES)}

    def _apply_settings(self, settings: dict) -> None:
        self.vocoder_name = settings.get("vocoder", "universal")

    # -- parts loaded on first use --------------------------------------------------------------
    def vocoder(self, name: str = "hifigan"):
        """The neural vocoder ``name`` ("hifigan": HiFi-GAN V1; "fast": the distilled FastVocoder),
        loaded on first use."""
        if self._mel is None:
            self._mel = MelSpectrogram()
        if name == "fast":
            if self._fast_vocoder is None:
                self._fast_vocoder = load_fast_vocoder().to(self.device)
            return self._fast_vocoder
        if self._vocoder is None:
            self._vocoder = load_hifigan(self.vocoder_name).to(self.device)
        return self._vocoder

    def speaker_encoder(self):
        if self._speaker is None:
            from conditioning.speaker import load_speaker_encoder

            self._speaker = load_speaker_encoder()
        return self._speaker

    # -- conditioning ---------------------------------------------------------------------------
    def emotion_embedding(self, spec: EmotionSpec, frames: int) -> np.ndarray:
        """(frames, 8) standardised prosody-change embedding for a spec (per frame for a curve)."""
        times = (np.arange(frames) + 0.5) * FRAME_MS / 1000.0
        z = self.direction_model.steer_frames(spec, times, "speech")
        return to_z(clip_raw(from_z(z))).astype(np.float32)

    # -- generation -----------------------------------------------------------------------------
    @torch.inference_mode()
    def __call__(
        self,
        audio: np.ndarray | str | Path,
        sample_rate: int | None = None,
        emotion: str | EmotionSpec = "neutral",
        intensity: float | None = None,
        num_inference_steps: int = 10,
        guidance_scale: float = 1.5,
        generator: torch.Generator | None = None,
        vocoder: str = "hifigan",
        vocoder_precision: str = "auto",
        return_dict: bool = True,
    ):
        """``vocoder_precision``: "auto" (float16 on CUDA, float32 on a CPU), "half" (float16 on
        CUDA, bfloat16 on a CPU with native support) or "float32" (see ``VOCODER_PRECISIONS``).
        On a CPU, bfloat16 cost words (README: 1.6 points more word error on the evaluation's
        recordings) and was not faster on every CPU that has it, so it is not the default."""
        state = self._prepare(audio, sample_rate, emotion, intensity, num_inference_steps, guidance_scale,
                              generator, vocoder, vocoder_precision)
        x = self._sample([state])[0]
        result = self._finish(state, x)
        return result if return_dict else (result.audio, result.sample_rate)

    @torch.inference_mode()
    def batch(self, calls: list[dict]) -> list[SpeechOutput | Exception]:
        """Several conversions, each given as the keyword arguments of one ``__call__``: their
        prosody models run as one batch wherever their windows have the same length and the
        same steps and guidance (the same recording in several emotions, long recordings'
        full windows). Each keeps its own generator, so each result matches its call alone up
        to the rounding of a larger batch. A call that fails (bad audio, no voiced speech) gives
        its exception in its place; the others go on."""
        return run_calls(calls, self._prepare, lambda states: sample_by_steps(states, self._sample),
                         lambda state: self._finish(state, state.pop("x")))

    def _prepare(self, audio, sample_rate=None, emotion="neutral", intensity=None, num_inference_steps=10,
                 guidance_scale=1.5, generator=None, vocoder="hifigan", vocoder_precision="auto") -> dict:
        """Everything before the prosody model: input checks, analysis and the condition."""
        spec = parse_emotion(emotion, intensity)  # a spec passes through; text is parsed here once
        self.check_inputs(num_inference_steps, guidance_scale)
        if vocoder not in VOCODERS:
            raise ValueError(f"vocoder must be one of {', '.join(VOCODERS)}, got {vocoder!r}")
        if vocoder_precision not in VOCODER_PRECISIONS:
            raise ValueError(f"vocoder_precision must be one of {', '.join(VOCODER_PRECISIONS)}, "
                             f"got {vocoder_precision!r}")
        src = load_audio(audio, sample_rate, target_sr=SR, max_seconds=MAX_SECONDS)
        start, end = speech_bounds(src.wav, SR)
        notes = [f"converted {(end - start) / SR:.2f} s of speech; silence kept as it was: "
                 f"{start / SR:.2f} s before, {(len(src.wav) - end) / SR:.2f} s after"]
        speech = src.wav[start:end]
        feats = world_analyze(speech)
        if not (feats.f0 > 0).any():
            raise ValueError("no voiced speech found in the recording (WORLD found no pitch)")
        content, pros = content_features(feats), prosody_features(feats)
        spk = self.speaker_encoder().embed(speech, SR).astype(np.float32)
        emb = self.emotion_embedding(spec, feats.frames)
        n = generated_frames(pros[:, 1] > 0)
        cond = np.concatenate([content[:n], pros[:n], emb[:n], np.ones((n, 1), np.float32)], axis=1)
        request = WindowRequest(cond, generator, guidance_scale, extra=torch.from_numpy(spk))
        return {"spec": spec, "src": src, "start": start, "end": end, "notes": notes, "speech": speech,
                "feats": feats, "emb": emb, "request": request, "steps": num_inference_steps,
                "vocoder": vocoder, "vocoder_precision": vocoder_precision}

    @torch.inference_mode()
    def _sample(self, states: list[dict]) -> list[np.ndarray]:
        """The prosody model's reverse diffusion for states of the same number of steps."""
        return sample_windows_batch(lambda x, t, c, spk: self.denoiser(x, t, c, spk), self.scheduler,
                                    [s["request"] for s in states], len(CHANGES), len(PROSODY) + 1,
                                    states[0]["steps"], WINDOW_FRAMES, OVERLAP_FRAMES, self.device,
                                    self.denoiser.dtype)

    def _finish(self, state: dict, x: np.ndarray) -> SpeechOutput:
        """Everything after the prosody model: the changes applied, synthesis, the vocoder, the limiter."""
        feats, src, start, end = state["feats"], state["src"], state["start"], state["end"]
        notes, vocoder, vocoder_precision = state["notes"], state["vocoder"], state["vocoder_precision"]
        n = len(x)
        x = np.concatenate([x, np.repeat(x[-1:], feats.frames - n, axis=0)])
        changes = x * CHANGE_SCALES
        moved = apply_prosody(feats, changes)
        wav = synthesize(moved)
        if vocoder != "world":
            half = vocoder_precision == "half" or (vocoder_precision == "auto" and self.device.type == "cuda")
            wav = self._vocode(wav, state["speech"], moved, half=half, name=vocoder)
        out = np.nan_to_num(np.concatenate([src.wav[:start], wav, src.wav[end:]]))
        limited = limit_peaks(out, SR)
        taken = level_taken_db(out[start : start + len(wav)], limited[start : start + len(wav)])
        if taken >= 0.1:
            notes.append(f"the peak limiter took {taken:.1f} dB off the converted speech to hold its "
                         f"peaks at {PEAK_DBFS:.0f} dBFS")
        return SpeechOutput(limited, SR, state["spec"], changes, state["emb"], notes, limited_db=taken)

    def _vocode(self, wav: np.ndarray, source: np.ndarray | None = None, moved=None,
                half: bool = False, name: str = "hifigan") -> np.ndarray:
        voc = self.vocoder(name)
        return vocode(voc, self._mel, wav, source, moved, self.device, half=half)


def load_fast_vocoder(path: str | Path | None = None):
    """The distilled FastVocoder from a folder (config.json + safetensors), by default the one
    that ships in the package (``FAST_VOCODER_DIR``), in float32."""
    from generators.speech.modeling_vocoder import FastVocoder

    folder = Path(path) if path is not None else FAST_VOCODER_DIR
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no FastVocoder in {folder} (train one with: affect train vocoder "
                                "--config configs/train/vocoder.yaml, then vocoder_stage2.yaml and "
                                "vocoder_stage3.yaml)")
    return FastVocoder.from_pretrained(str(folder)).float().eval()


def generated_frames(voiced: np.ndarray, tail: int = TAIL_FRAMES) -> int:
    """How many frames the model generates: up to ``tail`` frames past the last voiced one.

    What follows the last voiced frame (a final consonant, a breath, room noise that the silence
    trimming kept) has no pitch to move, and on real recordings it pulled the model's reading of
    the phrase end: on the evaluation's spoken card names, whose unvoiced tails last 0.14-0.53 s,
    the generated final rise of surprise came out 0.3-1.3 st *below* the body, where the
    literature rule puts it 2.7-3.4 st above; generated without the tail, 1.1-2.9 st above. The
    tail then holds the last generated frame's changes (level, tilt, rate, ...), as the rule
    holds the final movement after the last voiced frame."""
    idx = np.flatnonzero(voiced)
    return len(voiced) if idx.size == 0 else min(len(voiced), int(idx[-1]) + 1 + tail)


@torch.inference_mode()
def vocode(voc, mel_fn, wav: np.ndarray, source: np.ndarray | None = None, moved=None,
           device: torch.device | str = "cpu", half: bool = False) -> np.ndarray:
    """The neural vocoder ``voc`` (HiFi-GAN V1 or the FastVocoder) over the mel of the WORLD
    signal ``wav``, in blocks of ``VOCODER_BLOCK`` frames with ``VOCODER_CONTEXT`` frames of context on each side (discarded), so blocks join seamlessly.
    With the ``source`` speech and its ``moved`` features, unvoiced frames take the source's own
    mel (moved in time, level and tilt) instead of WORLD's re-synthesis of them. A signal louder
    than ``VOCODER_LEVEL_DBFS`` is vocoded at that level and scaled back (``vocoder_scale``), so the
    result may exceed full scale: callers limit it. float32, or with ``half``: float16 on CUDA,
    bfloat16 on CPUs that support it natively."""
    device = torch.device(device)
    scale = vocoder_scale(wav)
    mel = mel_fn(torch.from_numpy((wav / scale).astype(np.float32)))
    if source is not None and moved is not None:
        source = (source / scale).astype(np.float32)
        src = warp_mel(mel_fn(torch.from_numpy(source)).numpy(), moved, mel_fn.centres)
        n = min(mel.shape[1], src.shape[1], len(moved.f0))
        v = torch.from_numpy((moved.f0[:n] > 0).astype(np.float32))
        v = torch.nn.functional.avg_pool1d(v[None, None], 5, 1, 2, count_include_pad=False)[0, 0]
        mel = mel.clone()
        mel[:, :n] = mel[:, :n] * v + torch.from_numpy(src[:, :n]).float() * (1 - v)
    mel = mel.to(device)
    n = mel.shape[-1]
    pieces = []
    if device.type == "cpu":
        amp = dict(device_type="cpu", dtype=torch.bfloat16,
                   enabled=half and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    else:
        amp = dict(device_type=device.type, dtype=torch.float16, enabled=half and device.type == "cuda")
    for s in range(0, n, VOCODER_BLOCK):
        e = min(n, s + VOCODER_BLOCK)
        a, b = max(0, s - VOCODER_CONTEXT), min(n, e + VOCODER_CONTEXT)
        with torch.autocast(**amp):
            y = voc(mel[None, :, a:b])[0].float()
        hop = voc.hop
        pieces.append(y[(s - a) * hop : (s - a) * hop + (e - s) * hop].cpu().numpy())
    y = np.concatenate(pieces) * scale
    return y[: len(wav)] if len(y) >= len(wav) else np.pad(y, (0, len(wav) - len(y)))


def vocoder_scale(wav: np.ndarray, level_dbfs: float = VOCODER_LEVEL_DBFS) -> float:
    """The factor a signal is divided by before HiFi-GAN (and its output multiplied by after) so
    that the vocoder works at ``level_dbfs`` RMS at most; 1 for signals at or below it."""
    rms = _rms(wav)
    if rms <= 0.0:
        return 1.0
    return float(max(1.0, rms / 10 ** (level_dbfs / 20)))
