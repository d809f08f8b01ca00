"""TalkingHeadPipeline: one portrait + speech + an emotion spec -> a talking-head video.

Data flow:

1. the portrait is read (any size, EXIF orientation applied), its largest face meshed (478
   points) and a square working frame cut around it (``portrait.analyse_portrait``);
2. the speech is read at any rate/channel count and resampled to 22,050 Hz; its log-mel
   spectrogram is averaged into 25 fps frames (``articulation.audio_features``);
3. the spec is steered by the face ``DirectionVectorModel`` (after EmoReg: neutral + intensity x
   typical length x direction, per category of a mixture) into 16 action-unit intensities, per
   frame when the spec is an ``EmotionCurve`` (timed in seconds);
4. the ``MotionDenoiser`` generates the rig's 18 parameters for every frame by reverse diffusion
   (DPM-Solver++, classifier-free guidance on the emotion), in overlapping windows for long clips;
5. blinks, gaze shifts and slight head motion are added by a seeded stochastic process (blink
   rate about 20 per minute while speaking; intervals gamma-distributed, no two blinks within
   1.2 s; Bentivoglio et al. 1997 measured 17/min at rest and 26/min in conversation); the
   upper lids follow the gaze up and down (``rig.LID_FOLLOW``);
6. every frame, the rig moves the mesh and the renderer warps the portrait (piecewise affine) and
   paints the mouth interior; frames are produced on demand and streamed to an H.264 + AAC mp4.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline, DPMSolverMultistepScheduler

from conditioning import CATEGORIES, DirectionVectorModel, EmotionSpec, parse_emotion
from conditioning.audio import load_audio
from generators.face.articulation import FPS, SR, audio_features, frames_for
from generators.face.modeling_face import MotionDenoiser
from generators.face.portrait import Portrait, analyse_portrait
from generators.face.renderer import Renderer
from generators.face.rig import EMOTION_AUS, MOTION, Rig, default_direction_model
from generators.modeling_1d import WindowRequest, sample_windows_batch
from generators.pipeline_utils import DenoiserCheckpointMixin, run_calls, sample_by_steps

logger = logging.getLogger(__name__)

DEFAULT_DIR = Path(__file__).parent / "default"
MAX_SECONDS = 60.0
WINDOW_FRAMES = 256
OVERLAP_FRAMES = 32
#: The diffusion sample is (parameters - CENTRE) / SCALE.
PARAM_CENTRE, PARAM_SCALE = 0.3, 0.3


def make_scheduler(training: bool = False):
    """Cosine-schedule v-prediction; DPM-Solver++ (2nd order) for sampling."""
    if training:
        from diffusers import DDPMScheduler

        return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                             prediction_type="v_prediction")
    return DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                                       algorithm_type="dpmsolver++", solver_order=2,
                                       prediction_type="v_prediction")


def blink_track(n_frames: int, rng: np.random.Generator, per_minute: float = 20.0) -> np.ndarray:
    """(n_frames,) lid closure 0..1: blinks of ~0.3 s (close 0.1 s, open 0.2 s), intervals drawn
    from a gamma distribution (shape 3) with the given mean rate, none closer than 1.2 s."""
    out = np.zeros(n_frames)
    mean = 60.0 / per_minute
    t = rng.uniform(0.3, mean)
    shape = np.array([0.5, 1.0, 0.8, 0.45, 0.15])  # per frame at 25 fps
    while t * FPS < n_frames:
        i = int(t * FPS)
        seg = shape[: n_frames - i]
        out[i : i + len(seg)] = np.maximum(out[i : i + len(seg)], seg)
        t += max(1.2, rng.gamma(3.0, mean / 3.0))
    return out


def head_track(n_frames: int, rng: np.random.Generator, loudness: np.ndarray | None = None) -> np.ndarray:
    """(n_frames, 3) roll (radians), dx, dy (inter-ocular units): slow, small, smooth motion, with
    a slight nod that follows the speech's loudness."""
    from scipy.ndimage import gaussian_filter1d

    def smooth(sigma_frames: float, amp: float) -> np.ndarray:
        x = gaussian_filter1d(rng.normal(0, 1, n_frames + 200), sigma_frames, mode="wrap")[100:-100]
        return amp * x / (x.std() + 1e-9)

    roll = smooth(30, np.radians(0.8))
    dx = smooth(40, 0.012)
    dy = smooth(25, 0.008)
    if loudness is not None and len(loudness) == n_frames:
        env = gaussian_filter1d(np.clip(loudness, 0, 1), 3)
        dy = dy + 0.01 * (env - env.mean())
    return np.stack([roll, dx, dy], 1)


def gaze_track(n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """(n_frames, 2) gaze offsets (iris radii): fixations of 0.8-3 s joined by quick saccades."""
    out = np.zeros((n_frames, 2))
    i, cur = 0, np.zeros(2)
    while i < n_frames:
        nxt = rng.normal(0, [0.25, 0.12]) if rng.random() < 0.6 else np.zeros(2)
        steps = min(2, n_frames - i)
        for k in range(steps):
            out[i + k] = cur + (nxt - cur) * (k + 1) / steps
        hold = int(rng.uniform(0.8, 3.0) * FPS)
        out[i + steps : i + steps + hold] = nxt
        i += steps + hold
        cur = nxt
    return np.clip(out, -0.6, 0.6)


#: The motion sampler's temperature: the starting noise is scaled by it (as speech generators
#: sample their priors below 1). At 0.7 the rig's own lip opening follows the speech's loudness
#: 0.01-0.09 better (Pearson) than at 1.0 on recordings the face evaluation does not use (two
#: LibriVox excerpts, two spoken card names, three seeds each); seeds vary less.
NOISE_SCALE = 0.7

#: What sadness does beyond the face's muscles, per unit of its contribution: the eyes look down
#: (AU64, iris radii), the upper lids droop (AU41-43, share of a blink) and the head lowers
#: (AU54, drawn as a small downward shift, IOD); EMFACS lists 1+4+15+54+64 among sadness's forms
#: (Ekman, Friesen & Hager 2002). The lids also follow the lowered gaze (``rig.LID_FOLLOW``), on top
#: of the droop.
SAD_POSTURE = {"gaze_down": 0.45, "lid_droop": 0.3, "head_down": 0.02}


def category_weights(spec: EmotionSpec, frames: int) -> dict[str, np.ndarray]:
    """Each category's contribution (weight x intensity) per frame, (frames,) arrays."""
    if spec.curve is not None:
        c = spec.curve.contributions((np.arange(frames) + 0.5) / FPS)  # (T, K)
    else:
        c = np.repeat(np.asarray(spec.contributions())[None], frames, axis=0)
    return {cat: c[:, i] for i, cat in enumerate(CATEGORIES)}


def apply_posture(blink: np.ndarray, gaze: np.ndarray, head: np.ndarray,
                  weights: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blinks, gaze and head motion with the emotion's posture added (``SAD_POSTURE``)."""
    sad = np.clip(weights.get("sad", np.zeros(len(blink))), 0.0, 1.5)
    if not sad.any():
        return blink, gaze, head
    gaze = gaze.copy()
    gaze[:, 1] = np.clip(gaze[:, 1] * (1 - 0.5 * np.minimum(sad, 1)) + SAD_POSTURE["gaze_down"] * sad, -0.6, 0.8)
    head = head.copy()
    head[:, 2] += SAD_POSTURE["head_down"] * sad
    return np.maximum(blink, SAD_POSTURE["lid_droop"] * np.minimum(sad, 1)), gaze, head


@dataclass
class FaceOutput:
    """A talking head: rig parameters per frame and what turns them into pixels.

    ``frames`` renders every frame into one (N, S, S, 3) uint8 array; ``iter_frames()`` renders
    them one at a time (what ``save`` streams to the encoder, so long clips need little memory).
    """

    params: np.ndarray  # (N, 18) rig parameters, ``rig.MOTION`` order
    blink: np.ndarray  # (N,) lid closure
    head: np.ndarray  # (N, 3) roll, dx, dy
    gaze: np.ndarray  # (N, 2)
    fps: int
    audio: np.ndarray  # float32 mono
    sample_rate: int
    spec: EmotionSpec
    renderer: Renderer = field(repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return len(self.params)

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps

    @property
    def portrait(self) -> Portrait:
        return self.renderer.portrait

    def frame(self, i: int) -> np.ndarray:
        r = self.renderer
        disp = r.rig.displace(self.params[i], blink=float(self.blink[i]), head=tuple(self.head[i]),
                              gaze_down=float(self.gaze[i, 1]))
        shadow = r.brow_shadow_level(r.rig.displace(self.params[i]))
        return r.render(disp, tuple(self.head[i]), tuple(self.gaze[i]), r.rig.fold_level(self.params[i]),
                        float(self.params[i, MOTION.index("AU4")]), shadow)

    def iter_frames(self) -> Iterator[np.ndarray]:
        for i in range(self.n_frames):
            yield self.frame(i)

    @property
    def frames(self) -> np.ndarray:
        return np.stack(list(self.iter_frames()))

    def save(self, path: str | Path, crf: int = 18, preset: str = "veryfast") -> Path:
        from generators.face.video import write_mp4

        return write_mp4(path, self.iter_frames(), self.fps, self.audio, self.sample_rate, crf=crf,
                         preset=preset)

    def summary(self) -> dict:
        return {au: round(float(np.median(self.params[:, i])), 3) for i, au in enumerate(MOTION)}


def motion_condition(feats: np.ndarray, emb: np.ndarray) -> np.ndarray:
    """The motion model's per-frame condition: speech features, emotion AUs, and the channel that
    tells the conditional branch of guidance from the unconditional one."""
    return np.concatenate([feats, emb, np.ones((len(feats), 1), np.float32)], axis=1).astype(np.float32)


class TalkingHeadPipeline(DenoiserCheckpointMixin, DiffusionPipeline):
    """Emotional talking heads. ``pipe(image, audio, sample_rate, emotion="happy@0.8")``."""

    def __init__(self, denoiser: MotionDenoiser, scheduler,
                 direction_model: DirectionVectorModel | None = None) -> None:
        """``direction_model``: the emotion -> action-unit directions, saved and loaded with the
        checkpoint (``emotion/``); None takes the rig's prototypes (``default_direction_model``)."""
        super().__init__()
        self.register_modules(denoiser=denoiser, scheduler=scheduler)
        self.direction_model = direction_model if direction_model is not None else default_direction_model()
        self._mel = None

    # -- loading and saving (generators.pipeline_utils) -----------------------------------------
    _denoiser_class, _medium, _default_dir = MotionDenoiser, "face", DEFAULT_DIR

    def _settings(self) -> dict:
        return {"fps": FPS, "sample_rate": SR, "motion": list(MOTION), "emotion": list(EMOTION_AUS),
                "param_centre": PARAM_CENTRE, "param_scale": PARAM_SCALE}

    # -- conditioning ---------------------------------------------------------------------------
    def emotion_embedding(self, spec: EmotionSpec, frames: int) -> np.ndarray:
        """(frames, 16) action-unit intensities for a spec (per frame for a curve)."""
        z = self.direction_model.steer_frames(spec, (np.arange(frames) + 0.5) / FPS, "face")
        return np.clip(z, 0.0, 1.2).astype(np.float32)

    # -- generation -----------------------------------------------------------------------------
    @torch.inference_mode()
    def __call__(
        self,
        image,
        audio: np.ndarray | str | Path,
        sample_rate: int | None = None,
        emotion: str | EmotionSpec = "neutral",
        intensity: float | None = None,
        num_inference_steps: int = 10,
        guidance_scale: float = 1.5,
        generator: torch.Generator | None = None,
        noise_scale: float = NOISE_SCALE,
        face_resolution: int = 256,
        seed: int = 0,
        portrait: Portrait | None = None,
        return_dict: bool = True,
    ):
        state = self._prepare(image, audio, sample_rate, emotion, intensity, num_inference_steps,
                              guidance_scale, generator, noise_scale, face_resolution, seed, portrait)
        out = self._finish(state, self._sample([state])[0])
        return out if return_dict else (out.frames, FPS, out.audio, SR)

    @torch.inference_mode()
    def batch(self, calls: list[dict]) -> list[FaceOutput | Exception]:
        """Several talking heads, each given as the keyword arguments of one ``__call__``: their
        motion models run as one batch wherever their windows have the same length and the same
        steps and guidance (one line spoken in several emotions; long clips' full windows). Each
        keeps its own generator, so each result matches its call alone up to the rounding of a
        larger batch. A call that fails gives its exception in its place; the others go on."""
        return run_calls(calls, self._prepare, lambda states: sample_by_steps(states, self._sample),
                         lambda state: self._finish(state, state.pop("x")))

    def _prepare(self, image, audio, sample_rate=None, emotion="neutral", intensity=None,
                 num_inference_steps=10, guidance_scale=1.5, generator=None, noise_scale=NOISE_SCALE,
                 face_resolution=256, seed=0, portrait=None) -> dict:
        """Everything before the motion model: checks, the portrait, the audio and the condition."""
        spec = parse_emotion(emotion, intensity)  # a spec passes through; text is parsed here once
        self.check_inputs(num_inference_steps, guidance_scale)
        if not 0.0 < noise_scale <= 1.5:
            raise ValueError(f"noise_scale must be in (0, 1.5], got {noise_scale}")
        src = load_audio(audio, sample_rate, target_sr=SR, max_seconds=MAX_SECONDS)
        portrait = portrait or analyse_portrait(image, face_resolution)
        n = frames_for(len(src.wav) / SR)
        feats = audio_features(src.wav, n, self._mel_fn())
        emb = self.emotion_embedding(spec, n)
        cond = motion_condition(feats, emb)
        return {"spec": spec, "src": src, "portrait": portrait, "feats": feats, "seed": seed,
                "steps": num_inference_steps,
                "request": WindowRequest(cond, generator, guidance_scale, noise_scale)}

    @torch.inference_mode()
    def _sample(self, states: list[dict]) -> list[np.ndarray]:
        """The motion model's reverse diffusion for states of the same number of steps: (T, 18) rig
        parameters each."""
        xs = sample_windows_batch(lambda x, t, c, extra: self.denoiser(x, t, c), self.scheduler,
                                  [s["request"] for s in states], len(MOTION), len(EMOTION_AUS) + 1,
                                  states[0]["steps"], WINDOW_FRAMES, OVERLAP_FRAMES, self.device,
                                  self.denoiser.dtype)
        return [np.clip(x * PARAM_SCALE + PARAM_CENTRE, 0.0, 1.2) for x in xs]

    def _finish(self, state: dict, params: np.ndarray) -> FaceOutput:
        """Everything after the motion model: blinks, head and gaze, posture, the renderer."""
        spec, src, portrait, feats = state["spec"], state["src"], state["portrait"], state["feats"]
        n = len(params)
        rng = np.random.default_rng(state["seed"])
        loud = np.exp(feats).mean(1)
        loud = loud / (loud.max() + 1e-9)
        arousal = float(spec.vad[1])
        blink = blink_track(n, rng, per_minute=20.0 * (1.0 + 0.2 * np.clip(arousal, -1, 1)))
        head = head_track(n, rng, loud)
        gaze = gaze_track(n, rng)
        blink, gaze, head = apply_posture(blink, gaze, head, category_weights(spec, n))
        renderer = Renderer(portrait, Rig(portrait))
        notes = list(portrait.notes) + [f"{n} frames at {FPS} fps for {len(src.wav) / SR:.2f} s of audio"]
        return FaceOutput(params, blink, head, gaze, FPS, src.wav.astype(np.float32), SR, spec, renderer, notes)

    def expression_stills(self, image, emotions, face_resolution: int = 256,
                          portrait: Portrait | None = None) -> list[np.ndarray]:
        """The portrait holding each emotion's expression, without speech: one (S, S, 3) frame per
        spec, the rig set to the spec's steered action units (what the motion model is conditioned
        on), the emotion's posture (sadness lowers eyes, lids and head), eyes open, head still.
        The portrait is analysed once for all of them."""
        specs = [parse_emotion(e) for e in emotions]
        for e, spec in zip(emotions, specs):
            if spec.curve is not None:
                raise ValueError(f"a still holds one expression; {e!r} is a curve (accepted: a "
                                 "category, a mixture or a VAD point, with an intensity)")
        portrait = portrait or analyse_portrait(image, face_resolution)
        renderer = Renderer(portrait, Rig(portrait))
        frames = []
        for spec in specs:
            params = np.zeros((1, len(MOTION)))
            params[0, : len(EMOTION_AUS)] = self.emotion_embedding(spec, 1)[0]
            blink, gaze, head = apply_posture(np.zeros(1), np.zeros((1, 2)), np.zeros((1, 3)),
                                              category_weights(spec, 1))
            still = FaceOutput(params, blink, head, gaze, FPS, np.zeros(0, np.float32), SR, spec, renderer)
            frames.append(still.frame(0))
        return frames

    def _mel_fn(self):
        if self._mel is None:
            from generators.audio_features import MelSpectrogram

            self._mel = MelSpectrogram()
        return self._mel

    @torch.inference_mode()
    def generate_motion(self, feats: np.ndarray, emb: np.ndarray, steps: int = 10, guidance: float = 1.5,
                        generator: torch.Generator | None = None, noise_scale: float = NOISE_SCALE) -> np.ndarray:
        """(T, 18) rig parameters from (T, 80) speech features and (T, 16) emotion AUs."""
        request = WindowRequest(motion_condition(feats, emb), generator, guidance, noise_scale)
        return self._sample([{"request": request, "steps": steps}])[0]
