"""Loading and saving shared by the pipelines built from one denoiser, a scheduler and the medium's
direction model (speech and faces).

A checkpoint folder holds ``denoiser/`` (diffusers model config + safetensors), ``scheduler/``,
``emotion/`` (the ``DirectionVectorModel``) and ``pipeline.json`` (the pipeline's class and
settings). The embedded default is such a folder inside the package; a hub id is downloaded to
one first, so hub checkpoints load through the same code.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
from pathlib import Path

import torch
from diffusers import DPMSolverMultistepScheduler

from conditioning import DirectionVectorModel

logger = logging.getLogger(__name__)


def set_attention_backend(pipe, prefer_xformers: bool | None = None) -> str:
    """Give the pipeline's attention layers their fastest backend and say which: "xformers"
    (memory-efficient attention) on CUDA where the package loads and accepts the layers, else
    "sdpa" (PyTorch's scaled_dot_product_attention, which picks flash or memory-efficient kernels
    itself on a GPU); "none" when its models hold no attention layer (the speech and face
    denoisers are convolutional; the music UNet has one, in its middle block).
    ``prefer_xformers`` defaults to whether the pipeline is on CUDA."""
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    layers = [m for c in pipe.components.values() if isinstance(c, torch.nn.Module)
              for m in c.modules() if isinstance(m, Attention)]
    if not layers:
        return "none"
    if prefer_xformers is None:
        prefer_xformers = pipe.device.type == "cuda"
    if prefer_xformers and importlib.util.find_spec("xformers") is not None:
        try:
            pipe.enable_xformers_memory_efficient_attention()
            return "xformers"
        except Exception as exc:  # a build for another CUDA or torch: SDPA instead, said once
            logger.warning("xformers did not load (%s); attention runs on PyTorch SDPA",
                           " ".join(str(exc).split())[:200])
    for layer in layers:
        layer.set_processor(AttnProcessor2_0())
    return "sdpa"


def run_calls(calls: list[dict], prepare, denoise, finish) -> list:
    """What every pipeline's ``batch`` does: ``prepare(**kwargs)`` for each call (a call that
    raises gives its exception in its place), ``denoise(states)`` for the prepared ones together
    (it stores each state's result in the state), then ``finish(state)`` for each."""
    states: list = []
    for kwargs in calls:
        try:
            states.append(prepare(**{k: v for k, v in kwargs.items() if k != "return_dict"}))
        except Exception as exc:  # this call's alone
            states.append(exc)
    denoise([s for s in states if not isinstance(s, Exception)])
    out: list = []
    for s in states:
        try:
            out.append(s if isinstance(s, Exception) else finish(s))
        except Exception as exc:
            out.append(exc)
    return out


def sample_by_steps(states: list[dict], sample) -> None:
    """``state["x"]`` for each state, the states of one number of steps sampled together by
    ``sample(group)`` (the windowed denoisers of speech and faces)."""
    groups: dict[int, list[dict]] = {}
    for s in states:
        groups.setdefault(s["steps"], []).append(s)
    for group in groups.values():
        for s, x in zip(group, sample(group)):
            s["x"] = x


class DenoiserCheckpointMixin:
    """``from_pretrained`` / ``save_pretrained`` (and the sampler's input checks) for a ``DiffusionPipeline`` subclass that sets
    ``_denoiser_class``, ``_medium`` and ``_default_dir``, and may extend ``_settings`` (what
    ``pipeline.json`` records) and ``_apply_settings`` (what loading reads back from it)."""

    _denoiser_class: type
    _medium: str
    _default_dir: Path

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path | None = None, **kwargs):
        """A checkpoint folder (or hub id); no argument loads the embedded default."""
        path = Path(pretrained_model_name_or_path or cls._default_dir)
        if not path.is_dir():
            if pretrained_model_name_or_path is None:
                raise FileNotFoundError(f"the embedded {cls._medium} default is missing from {cls._default_dir}")
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(str(pretrained_model_name_or_path), **kwargs))
        if not (path / "denoiser").is_dir():
            raise ValueError(f"{str(path)!r} is not a {cls._medium} checkpoint (no denoiser/ folder)")
        denoiser = cls._denoiser_class.from_pretrained(str(path / "denoiser"), torch_dtype=torch.float32)
        scheduler = DPMSolverMultistepScheduler.from_pretrained(str(path / "scheduler"))
        pipe = cls(denoiser=denoiser.eval(), scheduler=scheduler,
                   direction_model=DirectionVectorModel.load(path / "emotion", prefix="emotion_"))
        cfg = path / "pipeline.json"
        pipe._apply_settings(json.loads(cfg.read_text()) if cfg.is_file() else {})
        return pipe

    def save_pretrained(self, save_directory: str | Path, fp16: bool = False, **kwargs) -> None:
        """Write the checkpoint folder; ``fp16`` stores the denoiser's weights in half precision
        (they load back as float32)."""
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        den = copy.deepcopy(self.denoiser).to(torch.float16) if fp16 else self.denoiser
        den.save_pretrained(str(out / "denoiser"))
        self.scheduler.save_pretrained(str(out / "scheduler"))
        self.direction_model.save(out / "emotion", prefix="emotion_")
        (out / "pipeline.json").write_text(json.dumps({"class": type(self).__name__, **self._settings()},
                                                      indent=2))

    @staticmethod
    def check_inputs(num_inference_steps: int, guidance_scale: float) -> None:
        """The sampler's settings: 1-200 steps, guidance 0-10."""
        if not 1 <= num_inference_steps <= 200:
            raise ValueError(f"num_inference_steps must be in [1, 200], got {num_inference_steps}")
        if not 0 <= guidance_scale <= 10:
            raise ValueError(f"guidance_scale must be in [0, 10], got {guidance_scale}")

    def _settings(self) -> dict:
        return {}

    def _apply_settings(self, settings: dict) -> None:
        pass
