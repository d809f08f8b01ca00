"""MusicPipeline: emotion (or a curve) -> a two-part piece as MIDI and rendered audio.

The spec is steered into the music medium's attribute space (``mapping.py``), one attribute vector
per time step (so a curve turns the music bar by bar), attributes the user fixes are pinned there
(element-level control, after MusER), and the UNet denoises a piano-roll under those attributes
with classifier-free guidance. The roll is decoded to notes, transposed to the requested tonic,
and written as MIDI with tempo, dynamics, articulation and instrumentation from the same
attribute vectors; the MIDI is rendered with a General MIDI soundfont.

Example:
    >>> import torch
    >>> from generators.music import MusicPipeline
    >>> pipe = MusicPipeline.from_pretrained()                        # the embedded default
    >>> out = pipe(emotion="sad@0.8", num_bars=4, num_inference_steps=4, output_type="midi",
    ...            generator=torch.Generator().manual_seed(3))
    >>> out.num_bars, out.key.endswith("minor")
    (4, True)
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline, DPMSolverMultistepScheduler, UNet2DModel

from conditioning import EmotionSpec, parse_emotion
from conditioning.directions import DirectionVectorModel
from generators.music.mapping import (
    AttributeSpace,
    default_direction_model,
    load_mapping,
    save_mapping,
    steer_attributes,
)
from generators.music.modeling_music import condition_channels, model_input
from generators.music.render import (
    INSTRUMENTATION,
    KEY_NAMES,
    render_audio,
    write_midi,
    write_wav,
)
from generators.music.representation import (
    ACC_FRAME,
    ACC_ON,
    ATTRIBUTES,
    MEL_FRAME,
    MEL_ON,
    NUM_PITCHES,
    PITCH_LOW,
    ROLL_ATTRIBUTES,
    STEPS_PER_BAR,
    Note,
    compute_attributes,
    notes_to_roll,
    roll_to_notes,
)
from generators.pipeline_utils import run_calls

logger = logging.getLogger(__name__)

MAX_BARS = 64
DEFAULT_DIR = Path(__file__).parent / "default"
TONICS = {name.lower(): i for i, name in enumerate(KEY_NAMES)}
TONICS.update({"c#": 1, "d#": 3, "gb": 6, "g#": 8, "a#": 10, "cb": 11, "e#": 5, "fb": 4, "b#": 0})


@dataclass
class MusicOutput:
    """A generated piece.

    Attributes:
        midi: the MIDI file's bytes (standard MIDI, format 1).
        audio: stereo float32 (samples, 2), or None when ``output_type="midi"``.
        sample_rate: of ``audio``.
        notes: the notes on the sixteenth-note grid, in the final key.
        num_bars: length in 4/4 bars.
        key: e.g. ``"D minor"`` (the tonic asked for and the mode the attributes chose at bar 0).
        attributes: per-bar attribute values that were asked for, name -> list (one per bar).
        emotion: the spec (with its curve, if any).
    """

    midi: bytes
    audio: np.ndarray | None
    sample_rate: int
    notes: list[Note]
    num_bars: int
    key: str
    attributes: dict[str, list[float]]
    emotion: EmotionSpec
    instrumentation: str = ""
    extra: dict = field(default_factory=dict)

    def save_midi(self, path: str | Path) -> None:
        from conditioning.io import atomic_write

        with atomic_write(path, "wb") as tmp:
            Path(tmp).write_bytes(self.midi)

    def save_wav(self, path: str | Path) -> None:
        if self.audio is None:
            raise ValueError("this output has no audio (output_type='midi')")
        write_wav(path, self.audio, self.sample_rate)


def _parse_tonic(tonic: str | int | None, generator: torch.Generator | None) -> int:
    if tonic is None:
        return int(torch.randint(0, 12, (1,), generator=generator).item())
    if isinstance(tonic, int) and not isinstance(tonic, bool):
        if 0 <= tonic < 12:
            return tonic
    elif isinstance(tonic, str) and tonic.strip().lower() in TONICS:
        return TONICS[tonic.strip().lower()]
    raise ValueError(f"tonic must be a note name (C, C#, Db, ..., B) or 0..11, got {tonic!r}")


class MusicPipeline(DiffusionPipeline):
    """Emotion-conditioned symbolic music.

    Components: ``unet`` (``UNet2DModel``), ``scheduler`` (any diffusers scheduler; DPM-Solver++
    by default). The emotion mapping (attribute space + direction model) is loaded from the
    checkpoint's ``emotion/`` folder.
    """

    model_cpu_offload_seq = "unet"

    def __init__(self, unet: UNet2DModel, scheduler, attribute_space: AttributeSpace | None = None,
                 direction_model: DirectionVectorModel | None = None) -> None:
        """``attribute_space`` (the corpus's attribute statistics) and ``direction_model`` (emotion
        -> attribute directions in that space) are the emotion mapping, saved and loaded with the
        checkpoint (``emotion/``); without a direction model the literature profiles are used in
        the given space."""
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)
        if direction_model is None and attribute_space is not None:
            direction_model = default_direction_model(attribute_space)
        self.attribute_space = attribute_space
        self.direction_model = direction_model

    # -- loading and saving -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path | None = None, **kwargs):
        """Load a checkpoint folder or hub id; no argument loads the embedded default."""
        path = Path(pretrained_model_name_or_path or DEFAULT_DIR)
        if not path.is_dir():
            if pretrained_model_name_or_path is None:
                raise FileNotFoundError(f"the embedded music default is missing from {DEFAULT_DIR}")
            path = Path(DiffusionPipeline.download(str(pretrained_model_name_or_path), **kwargs))
        if not (path / "unet").is_dir() or not (path / "emotion").is_dir():
            raise ValueError(f"{str(path)!r} is not a music checkpoint (no unet/ and emotion/ folders)")
        kwargs.setdefault("dtype", torch.float32)
        space, model = load_mapping(path / "emotion")
        return super().from_pretrained(str(path), attribute_space=space, direction_model=model, **kwargs)

    def save_pretrained(self, save_directory: str | Path, **kwargs) -> None:
        super().save_pretrained(save_directory, **kwargs)
        save_mapping(Path(save_directory) / "emotion", self.attribute_space, self.direction_model)

    def set_mapping(self, space: AttributeSpace, model: DirectionVectorModel) -> None:
        """Swap in another emotion -> attribute mapping (e.g. one fitted on labelled MIDI)."""
        self.attribute_space, self.direction_model = space, model

    # -- conditioning -------------------------------------------------------------------------------
    def attribute_plan(
        self, spec: EmotionSpec, num_bars: int, fixed: dict[str, float] | None = None
    ) -> np.ndarray:
        """Raw attribute vectors per time step, shape (T, len(ATTRIBUTES))."""
        steps = num_bars * STEPS_PER_BAR
        if spec.curve is None:
            row = steer_attributes(self.direction_model, self.attribute_space, spec, fixed)
            return np.repeat(row[None], steps, axis=0)
        curve = spec.curve
        step_pos = (np.arange(steps) + 0.5) / STEPS_PER_BAR  # in bars
        if curve.unit == "bars":
            times = step_pos
        elif curve.unit == "beats":
            times = step_pos * 4
        else:  # seconds: convert with the tempo of the curve's first keyframe
            first = steer_attributes(
                self.direction_model, self.attribute_space, curve.keyframes[0].spec, fixed
            )
            bpm = first[ATTRIBUTES.index("tempo")]
            times = step_pos * 4 * 60.0 / bpm
        contrib = curve.contributions(times)
        rows, cache = [], {}
        for c in contrib:
            key = tuple(np.round(c, 6))
            if key not in cache:
                cache[key] = steer_attributes(
                    self.direction_model,
                    self.attribute_space,
                    EmotionSpec.from_contributions(c),
                    fixed,
                )
            rows.append(cache[key])
        return np.stack(rows)

    @staticmethod
    def check_inputs(num_bars: int, num_inference_steps: int, guidance_scale: float, output_type: str) -> None:
        if (
            isinstance(num_bars, bool)
            or not isinstance(num_bars, (int, np.integer))
            or not (1 <= num_bars <= MAX_BARS)
        ):
            raise ValueError(
                f"num_bars must be a whole number in [1, {MAX_BARS}], got {num_bars!r}"
            )
        if not isinstance(num_inference_steps, int) or not 1 <= num_inference_steps <= 1000:
            raise ValueError(
                f"num_inference_steps must be in [1, 1000], got {num_inference_steps!r}"
            )
        if not isinstance(guidance_scale, (int, float)) or not 0 <= guidance_scale <= 20:
            raise ValueError(f"guidance_scale must be in [0, 20], got {guidance_scale!r}")
        if output_type not in ("audio", "midi"):
            raise ValueError(f"output_type must be 'audio' or 'midi', got {output_type!r}")

    # -- generation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        emotion: str | EmotionSpec = "neutral",
        intensity: float | None = None,
        num_bars: int = 16,
        tonic: str | int | None = None,
        fixed_attributes: dict[str, float] | None = None,
        seed_notes: list[Note] | None = None,
        seed_mode: str = "continue",
        cadence: bool = True,
        num_inference_steps: int = 12,
        guidance_scale: float = 2.0,
        generator: torch.Generator | None = None,
        output_type: str = "audio",
        sample_rate: int = 44100,
        return_dict: bool = True,
    ):
        """Generate a piece.

        Args:
            emotion: any form ``parse_emotion`` accepts, a curve included (units bars, beats or s).
            intensity: replaces the spec's intensity (not for curves).
            num_bars: length in 4/4 bars, 1..64.
            tonic: the key's tonic (``"D"``, ``"F#"``, 0..11); default: drawn from ``generator``.
            fixed_attributes: attributes to pin, e.g. ``{"tempo": 90, "major": 1, "density": 6}``;
                the others follow the emotion (names: ``generators.music.ATTRIBUTES``).
            seed_notes: a seed melody (``load_seed_midi``), tonic at C: with ``seed_mode``
                ``"continue"`` its bars are kept and the piece continues them, with
                ``"reharmonize"`` its melody is kept and a new accompaniment is written under it.
            cadence: open and close on the tonic: the first half bar's accompaniment is the
                tonic chord of the opening's mode, and the last bar is the tonic chord of the last
                bar's mode under the tonic in the melody; the model writes everything between
                (inpainting), as tonal pieces of the corpus begin and end.
            num_inference_steps: denoising steps of the scheduler.
            guidance_scale: classifier-free guidance on the emotion condition (1 = none).
            generator: a ``torch.Generator`` for reproducible output.
            output_type: ``"audio"`` (MIDI + rendered audio) or ``"midi"``.
        Returns:
            ``MusicOutput`` (or a tuple ``(midi_bytes, audio)`` when ``return_dict=False``).
        """
        state = self._prepare(emotion, intensity, num_bars, tonic, fixed_attributes, seed_notes, seed_mode,
                              cadence, num_inference_steps, guidance_scale, generator, output_type,
                              sample_rate)
        self._denoise_states([state])
        out = self._finish(state)
        return out if return_dict else (out.midi, out.audio)

    @torch.no_grad()
    def batch(self, calls: list[dict]) -> list[MusicOutput | Exception]:
        """Several pieces, each given as the keyword arguments of one ``__call__``: pieces of the
        same length, steps and guidance go through the UNet together, as one batch (and so do the
        re-writes of silent bars). Each keeps its own generator, so each piece matches its call
        alone up to the rounding of a larger batch. A call that fails gives its exception in its
        place; the others go on."""
        return run_calls(calls, self._prepare, self._denoise_states, self._finish)

    def _prepare(self, emotion="neutral", intensity=None, num_bars=16, tonic=None, fixed_attributes=None,
                 seed_notes=None, seed_mode="continue", cadence=True, num_inference_steps=12,
                 guidance_scale=2.0, generator=None, output_type="audio", sample_rate=44100) -> dict:
        """Everything before the UNet: checks, the attribute plan, the condition, what is known."""
        spec = parse_emotion(emotion, intensity)
        if seed_mode not in ("continue", "reharmonize"):
            raise ValueError(f"seed_mode must be 'continue' or 'reharmonize', got {seed_mode!r}")
        if seed_notes is not None and seed_mode == "reharmonize":
            seed_bars = max(1, -(-max(n.start + n.length for n in seed_notes) // STEPS_PER_BAR))
            num_bars = min(MAX_BARS, seed_bars)
        self.check_inputs(num_bars, num_inference_steps, guidance_scale, output_type)
        tonic_pc = _parse_tonic(tonic, generator)
        device, dtype = self.unet.device, self.unet.dtype
        steps = num_bars * STEPS_PER_BAR
        width = -(-steps // 8) * 8  # the UNet halves the time axis three times

        plan = self.attribute_plan(spec, num_bars, fixed_attributes)  # (T, A) raw
        z = np.stack([self.attribute_space.to_z(r) for r in plan])[:, : len(ROLL_ATTRIBUTES)]
        z = np.concatenate([z, np.repeat(z[-1:], width - steps, axis=0)])  # pad
        z_t = torch.as_tensor(z.T[None], dtype=dtype, device=device)  # (1, A, W)
        major = plan[:, ATTRIBUTES.index("major")]
        major = np.concatenate([major, np.repeat(major[-1:], width - steps)])
        major_t = torch.as_tensor(major[None], dtype=dtype, device=device)  # (1, W)
        cond = condition_channels(z_t, major_t)
        null = condition_channels(z_t, major_t, drop=torch.ones(1, dtype=torch.bool, device=device))

        known, mask = None, None
        if seed_notes is not None:
            known_np = notes_to_roll(seed_notes, width) * 2 - 1
            mask_np = np.zeros_like(known_np)
            if seed_mode == "continue":
                seed_steps = min(width, max(n.start + n.length for n in seed_notes))
                seed_steps = -(-seed_steps // STEPS_PER_BAR) * STEPS_PER_BAR
                mask_np[:, :, :seed_steps] = 1.0
            else:
                mask_np[[MEL_ON, MEL_FRAME]] = 1.0
            known = torch.as_tensor(known_np[None], dtype=dtype, device=device)
            mask = torch.as_tensor(mask_np[None], dtype=dtype, device=device)

        if cadence and (seed_notes is None or seed_mode == "continue") and num_bars >= 2:
            known, mask = self._add_cadence(known, mask, plan, steps, width, dtype, device)

        return {"spec": spec, "tonic_pc": tonic_pc, "plan": plan, "steps": steps, "width": width,
                "num_bars": num_bars, "cond": cond, "null": null, "known": known, "mask": mask,
                "shape": (1, 4, NUM_PITCHES, width), "num_inference_steps": num_inference_steps,
                "guidance": float(guidance_scale), "generator": generator, "output_type": output_type,
                "sample_rate": sample_rate}

    def _denoise_states(self, states: list[dict]) -> None:
        """The reverse diffusion of every state (``state["x"]``), states of the same shape, steps
        and guidance as one batch; then up to two re-writes of the bars the model left silent (the
        rest of each piece kept), again batched."""
        self._denoise_groups(states)
        dtype = self.unet.dtype
        for _ in range(2):
            again = []
            for st in states:
                x = st["x"]
                empty = [b for b in range(st["num_bars"])
                         if not (x[0, :, :, b * STEPS_PER_BAR : (b + 1) * STEPS_PER_BAR] > 0).any()]
                if not empty:
                    continue
                logger.info("re-writing silent bars %s", [b + 1 for b in empty])
                known = torch.where(x > 0, 1.0, -1.0).to(dtype)
                mask = torch.ones_like(known)
                for b in empty:
                    mask[..., b * STEPS_PER_BAR : (b + 1) * STEPS_PER_BAR] = 0.0
                again.append((st, known, mask))
            if not again:
                break
            self._denoise_groups([st for st, _, _ in again], [(k, m) for _, k, m in again])

    def _denoise_groups(self, states: list[dict], known_masks: list[tuple] | None = None) -> None:
        groups: dict[tuple, list[int]] = {}
        for i, st in enumerate(states):
            groups.setdefault((st["shape"], st["num_inference_steps"], st["guidance"]), []).append(i)
        for (shape, n_steps, guidance), members in groups.items():
            kms = [known_masks[i] if known_masks else (states[i]["known"], states[i]["mask"]) for i in members]
            xs = self._denoise(
                [states[i]["cond"] for i in members], [states[i]["null"] for i in members],
                [k for k, _ in kms], [m for _, m in kms], shape, n_steps, guidance,
                [states[i]["generator"] for i in members],
            )
            for i, x in zip(members, xs):
                states[i]["x"] = x

    def _finish(self, state: dict) -> MusicOutput:
        """Everything after the UNet: decoding, the key, the MIDI file and its rendering."""
        x, steps, tonic_pc, plan, spec = state["x"], state["steps"], state["tonic_pc"], state["plan"], state["spec"]
        num_bars, output_type, sample_rate = state["num_bars"], state["output_type"], state["sample_rate"]
        roll = x[0, :, :, :steps].float().cpu().numpy()
        notes = self._decode(roll)
        notes = self._transpose(notes, tonic_pc)

        per_bar = plan[::STEPS_PER_BAR]  # (bars, A)
        col = {name: per_bar[:, i] for i, name in enumerate(ATTRIBUTES)}
        mean_contrib = (
            spec.curve.contributions(np.arange(num_bars) + 0.5).mean(0)
            if spec.curve is not None and spec.curve.unit == "bars"
            else spec.contributions()
        )
        dominant = EmotionSpec.from_contributions(mean_contrib).dominant
        inst = INSTRUMENTATION[dominant]
        major = bool(col["major"][0] >= 0.5)
        key_name = f"{KEY_NAMES[tonic_pc]} {'major' if major else 'minor'}"
        with tempfile.TemporaryDirectory() as tmpdir:
            midi_path = Path(tmpdir) / "piece.mid"
            write_midi(
                midi_path,
                notes,
                tempo_per_bar=col["tempo"].tolist(),
                velocity_per_bar=col["velocity"].tolist(),
                articulation_per_bar=col["articulation"].tolist(),
                instrumentation=inst,
                tonic=tonic_pc,
                major=major,
                num_bars=num_bars,
            )
            midi = midi_path.read_bytes()
            audio = render_audio(midi_path, sample_rate) if output_type == "audio" else None
        return MusicOutput(
            midi=midi,
            audio=audio,
            sample_rate=sample_rate,
            notes=notes,
            num_bars=num_bars,
            key=key_name,
            attributes={k: [float(v) for v in vals] for k, vals in col.items()},
            emotion=spec,
            instrumentation=inst.name,
        )

    def _denoise(self, conds, nulls, knowns, masks, shape, num_inference_steps, guidance_scale, generators):
        """The reverse diffusion of pieces of one ``shape`` as one batch, with classifier-free
        guidance and inpainting of what is known (``knowns`` / ``masks``, None where nothing is).
        Every piece draws its noise from its own generator, in the order it would alone.
        Returns one (1, 4, P, W) tensor per piece."""
        device, dtype = self.unet.device, self.unet.dtype

        def noise():
            return torch.cat([torch.randn(shape, generator=g, dtype=torch.float32) for g in generators]).to(
                device, dtype)

        has_known = [k is not None for k in knowns]
        known = mask = None
        if any(has_known):
            known = torch.cat([k if k is not None else torch.zeros(shape, dtype=dtype, device=device)
                               for k in knowns])
            mask = torch.cat([m if m is not None else torch.zeros(shape, dtype=dtype, device=device)
                              for m in masks])
        cond, null = torch.cat(conds), torch.cat(nulls)
        x = noise()
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        x = x * self.scheduler.init_noise_sigma
        for t in self.progress_bar(self.scheduler.timesteps):
            if known is not None:
                n = torch.cat([torch.randn(shape, generator=g, dtype=torch.float32) if h
                               else torch.zeros(shape) for g, h in zip(generators, has_known)]).to(device, dtype)
                noised = self.scheduler.add_noise(known, n, t.reshape(1))
                x = mask * noised + (1 - mask) * x
            xin = self.scheduler.scale_model_input(x, t)
            if guidance_scale == 1.0:
                eps = self.unet(model_input(xin, cond), t).sample
            else:
                both = torch.cat([model_input(xin, cond), model_input(xin, null)])
                eps_c, eps_u = self.unet(both, t).sample.chunk(2)
                eps = eps_u + guidance_scale * (eps_c - eps_u)
            x = self.scheduler.step(eps, t, x).prev_sample
        if known is not None:
            x = mask * known + (1 - mask) * x
        return list(x.split(1))

    @staticmethod
    def _add_cadence(known, mask, plan, steps, width, dtype, device):
        """Give the last bar as the tonic: the accompaniment's tonic triad (C, the mode's third,
        G) and the melody's tonic nearest the asked-for register, held for the bar."""
        major = plan[-1, ATTRIBUTES.index("major")] >= 0.5
        register = plan[-1, ATTRIBUTES.index("register")]
        tonic = int(min((60, 72, 84), key=lambda p: abs(p - register)))
        start = steps - STEPS_PER_BAR
        chord = [Note(start, STEPS_PER_BAR, p, 1) for p in (48, 55, 64 if major else 63)]
        chord.append(Note(start, STEPS_PER_BAR, tonic, 0))
        half = STEPS_PER_BAR // 2
        opening_major = plan[0, ATTRIBUTES.index("major")] >= 0.5
        if known is None:  # open on the tonic chord too (its first half bar, accompaniment only)
            chord += [Note(0, half, p, 1) for p in (48, 55, 64 if opening_major else 63)]
        cad = torch.as_tensor(notes_to_roll(chord, width)[None] * 2 - 1, dtype=dtype, device=device)
        cad_mask = torch.zeros_like(cad)
        cad_mask[:, :, :, start:steps] = 1.0
        if known is None:
            cad_mask[:, [ACC_ON, ACC_FRAME], :, :half] = 1.0
            return cad, cad_mask
        # A seed to continue: keep its bars, add the cadence where the seed has none.
        return (torch.where(mask > 0, known, cad), torch.maximum(mask, cad_mask))

    @staticmethod
    def _decode(roll: np.ndarray) -> list[Note]:
        """Roll in [-1, 1] -> notes; the melody is made a single line (highest note wins)."""
        notes = roll_to_notes(roll, threshold=0.0)
        mel = sorted((n for n in notes if n.track == 0), key=lambda n: (n.start, -n.pitch))
        line: list[Note] = []
        for n in mel:
            if line and line[-1].start == n.start:
                continue  # a lower note at the same onset
            if line and line[-1].start + line[-1].length > n.start:
                prev = line[-1]
                line[-1] = Note(prev.start, n.start - prev.start, prev.pitch, 0)
            line.append(n)
        acc = [n for n in notes if n.track == 1 and n.length >= 1]
        return sorted(line + acc, key=lambda n: (n.start, n.track, -n.pitch))

    @staticmethod
    def _transpose(notes: list[Note], tonic_pc: int) -> list[Note]:
        shift = tonic_pc if tonic_pc <= 6 else tonic_pc - 12  # stay near the trained register
        return [Note(n.start, n.length, n.pitch + shift, n.track, n.velocity) for n in notes]


def load_seed_midi(path: str | Path, max_bars: int = MAX_BARS) -> tuple[list[Note], int]:
    """Read a seed melody from a MIDI file: notes on the grid with the tonic moved to C.

    The highest-sounding instrument is the melody, the rest accompaniment. Returns the notes and
    the detected tonic (0..11) so a continuation can be written in the seed's own key.
    """
    import pretty_midi

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"seed MIDI {str(path)!r} does not exist; give a standard MIDI file")
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:
        raise ValueError(
            f"seed MIDI {str(path)!r} is not a readable standard MIDI file ({type(exc).__name__})"
        ) from None
    insts = [i for i in pm.instruments if not i.is_drum and i.notes]
    if not insts:
        raise ValueError(f"seed MIDI {str(path)!r} has no notes")
    beats = pm.get_beats()
    if len(beats) < 2:
        raise ValueError(f"seed MIDI {str(path)!r} is too short to read a beat from")

    def to_step(t: float) -> int:
        i = int(np.clip(np.searchsorted(beats, t, side="right") - 1, 0, len(beats) - 2))
        frac = (t - beats[i]) / (beats[i + 1] - beats[i])
        return int(round((i + frac) * 4))

    melody_idx = int(np.argmax([np.mean([n.pitch for n in i.notes]) for i in insts]))
    notes = []
    for k, inst in enumerate(insts):
        for n in inst.notes:
            s, e = to_step(n.start), to_step(n.end)
            if s < max_bars * STEPS_PER_BAR:
                notes.append(Note(s, max(1, e - s), n.pitch, 0 if k == melody_idx else 1))
    from generators.music.representation import key_correlations, pitch_class_profile

    corr = key_correlations(pitch_class_profile(notes))
    mode, tonic = np.unravel_index(int(np.argmax(corr)), corr.shape)
    shift = -int(tonic) if tonic <= 6 else 12 - int(tonic)
    out = []
    for n in notes:
        p = n.pitch + shift
        while p < PITCH_LOW:
            p += 12
        while p >= PITCH_LOW + NUM_PITCHES:
            p -= 12
        out.append(Note(n.start, n.length, p, n.track))
    return out, int(tonic)


def piece_attributes(notes: list[Note], tonic_pc: int, num_bars: int) -> dict[str, float]:
    """Roll attributes of generated notes (transposed back to a C tonic first)."""
    shift = -tonic_pc if tonic_pc <= 6 else 12 - tonic_pc
    return compute_attributes(
        [Note(n.start, n.length, n.pitch + shift, n.track) for n in notes], num_bars
    )


def make_scheduler(
    num_train_timesteps: int = 1000,
    beta_schedule: str = "squaredcos_cap_v2",
    prediction_type: str = "v_prediction",
):
    """DPM-Solver++ (2nd order) with dynamic thresholding: rolls live in [-1, 1], and clipping the
    predicted clean roll keeps few-step sampling from saturating."""
    return DPMSolverMultistepScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule=beta_schedule,
        algorithm_type="dpmsolver++",
        solver_order=2,
        prediction_type=prediction_type,
        thresholding=True,
        sample_max_value=1.0,
    )
