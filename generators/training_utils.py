"""What every medium's trainer shares: optimiser, cosine schedule, EMA and resumable checkpoints
on accelerate (CPU, one GPU or several)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


def checkpoints(output_dir: Path) -> list[Path]:
    """``output_dir/checkpoints/step-*`` folders, oldest first."""
    d = Path(output_dir) / "checkpoints"
    return sorted(d.glob("step-*"), key=lambda p: int(p.name.split("-")[1])) if d.is_dir() else []


@dataclass
class TrainState:
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    lr_scheduler: object
    ema: object
    step: int


def prepare_training(accelerator, model: torch.nn.Module, tcfg: dict, max_steps: int,
                     output_dir: Path, resume: bool) -> TrainState:
    """AdamW + warm-up/cosine schedule + EMA, prepared by accelerate; resumes from the newest
    checkpoint in ``output_dir`` when ``resume`` (the EMA weights are part of the checkpoint)."""
    from diffusers.optimization import get_cosine_schedule_with_warmup
    from diffusers.training_utils import EMAModel

    opt = torch.optim.AdamW(model.parameters(), lr=float(tcfg["learning_rate"]), weight_decay=1e-4)
    lr_sched = get_cosine_schedule_with_warmup(opt, int(tcfg["warmup_steps"]), max_steps)
    ema = EMAModel(model.parameters(), decay=float(tcfg["ema_decay"]))
    model, opt, lr_sched = accelerator.prepare(model, opt, lr_sched)
    ema.to(accelerator.device)
    accelerator.register_for_checkpointing(ema)
    step = 0
    ckpts = checkpoints(output_dir)
    if resume and ckpts:
        accelerator.load_state(str(ckpts[-1]))
        step = int(ckpts[-1].name.split("-")[1])
        logger.info("resumed from %s", ckpts[-1])
    return TrainState(model, opt, lr_sched, ema, step)


def save_checkpoint(accelerator, output_dir: Path, step: int, keep: int) -> Path:
    """Save the full training state as ``checkpoints/step-N``; keep the newest ``keep``."""
    path = Path(output_dir) / "checkpoints" / f"step-{step:07d}"
    accelerator.save_state(str(path))
    for old in checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def diffusion_training_loop(accelerator, state: TrainState, scheduler, draw_batch, forward,
                            n_emotion: int, tcfg: dict, max_steps: int, output_dir: Path) -> list[float]:
    """The shared v-prediction training loop of the frame-sequence denoisers.

    ``draw_batch()`` gives ``(x0 (B, C, T), cond (B, K, T), extra)`` tensors on the device, padded
    frames all-zero in ``cond``, and optionally a fourth, per-frame loss weights (B, 1, T) (the
    loss is then the weighted mean over the frames); ``forward(model, x_t, t, cond, extra)`` runs
    the model. The last ``n_emotion`` condition channels are dropped (zeroed) with probability
    ``tcfg["emotion_dropout"]`` per example, which trains the unconditional branch of
    classifier-free guidance. Checkpoints every ``checkpoint_every`` steps, at the end and when
    ``max_minutes`` runs out. Returns the losses; ``state.step`` is advanced in place.
    """
    import time

    import numpy as np

    model, opt, lr_sched, ema = state.model, state.optimizer, state.lr_scheduler, state.ema
    drop = float(tcfg["emotion_dropout"])
    start, losses = time.time(), []
    max_minutes = tcfg.get("max_minutes")
    while state.step < max_steps:
        x0, cond, extra, *weight = draw_batch()
        b = x0.shape[0]
        mask = (cond.abs().sum(1, keepdim=True) > 0).float()  # padded frames are all zero
        if weight:
            mask = mask * weight[0]
        keep = (torch.rand(b, 1, 1, device=x0.device) >= drop).float()
        cond = torch.cat([cond[:, :-n_emotion], cond[:, -n_emotion:] * keep], dim=1)
        noise = torch.randn_like(x0)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (b,), device=x0.device)
        xt = scheduler.add_noise(x0, noise, t)
        target = scheduler.get_velocity(x0, noise, t)
        pred = forward(model, xt, t, cond, extra)
        loss = (((pred - target) ** 2) * mask).sum() / (mask.sum() * x0.shape[1]).clamp_min(1)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        lr_sched.step()
        opt.zero_grad()
        ema.step(model.parameters())
        state.step += 1
        losses.append(loss.item())
        if state.step % int(tcfg["log_every"]) == 0:
            logger.info("step %d loss %.4f (%.0f s)", state.step, np.mean(losses[-50:]), time.time() - start)
        out_of_time = max_minutes is not None and time.time() - start > 60 * float(max_minutes)
        if state.step % int(tcfg["checkpoint_every"]) == 0 or state.step == max_steps or out_of_time:
            save_checkpoint(accelerator, output_dir, state.step, int(tcfg.get("keep_checkpoints", 2)))
        if out_of_time:
            logger.info("stopping at step %d: max_minutes reached", state.step)
            break
    return losses


def export_target(export: dict, steps_done: int, recipe_steps: int) -> Path | None:
    """Where to export a finished run: ``export["dir"]`` (the package's embedded default) only when
    the run has done the recipe's own ``training.max_steps``. A shorter run (``--max-steps N``, or
    stopped by ``max_minutes`` to be resumed) is kept in its output folder and does not replace
    the default."""
    if not export.get("dir"):
        return None
    if steps_done < recipe_steps:
        logger.warning("not exported to %s: %d of the recipe's %d steps done (resume to finish)",
                       export["dir"], steps_done, recipe_steps)
        return None
    return Path(export["dir"])


def save_final(pipe, meta: dict, output_dir: Path, export: dict, steps_done: int = 0,
               recipe_steps: int = 0) -> Path:
    """Save the trained pipeline (EMA weights) and its ``training.json`` as ``output_dir/final``;
    with ``export["dir"]``, also replace that folder (the package default) by an fp16 copy, when
    ``export_target`` allows it."""
    import json

    final_dir = Path(output_dir) / "final"
    pipe.save_pretrained(final_dir)
    (final_dir / "training.json").write_text(json.dumps(meta, indent=2, default=str))
    if export_target(export, steps_done, recipe_steps):
        target = Path(export["dir"])
        if target.exists():
            shutil.rmtree(target)
        pipe.save_pretrained(target, fp16=bool(export.get("fp16", True)))
        (target / "training.json").write_text(json.dumps(meta, indent=2, default=str))
    return final_dir


def train_denoiser_pipeline(cfg: dict, build_examples, denoiser_class, pipeline_class, make_scheduler,
                            collate, forward, emotion_dims: int, meta: dict, *,
                            max_steps: int | None = None, output_dir: str | None = None,
                            resume: bool = True) -> Path:
    """The whole recipe of a pipeline made of one denoiser (speech, faces): examples from
    ``build_examples(data_cfg, seed) -> (examples, direction_model, data_meta)`` (``examples``
    has ``draw()`` and a seeded ``rng``), ``collate(items, device) -> (x0, cond, extra)``,
    ``forward(model, xt, t, cond, extra)``; trains with ``diffusion_training_loop`` (the last
    ``emotion_dims`` condition channels are dropped for guidance), resumes from the newest
    checkpoint, and saves the EMA pipeline with ``save_final``; returns its folder."""
    import time

    import numpy as np
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    data, mcfg, tcfg, ecfg = cfg["data"], cfg["model"], cfg["training"], cfg.get("export", {})
    seed = int(tcfg.get("seed", 0))
    set_seed(seed)
    examples, direction_model, data_meta = build_examples(data, seed)
    accelerator = Accelerator(mixed_precision=tcfg.get("mixed_precision", "no"), cpu=tcfg.get("cpu", False))
    out = Path(output_dir or tcfg["output_dir"]).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    max_steps = int(max_steps or tcfg["max_steps"])
    state = prepare_training(accelerator, denoiser_class(**mcfg), tcfg, max_steps, out, resume)
    if state.step:
        examples.rng = np.random.default_rng(seed + state.step)
    batch = int(tcfg["batch_size"])
    start, first_step = time.time(), state.step
    losses = diffusion_training_loop(
        accelerator, state, make_scheduler(training=True),
        lambda: collate([examples.draw() for _ in range(batch)], accelerator.device), forward,
        emotion_dims, tcfg, max_steps, out)
    final = accelerator.unwrap_model(state.model)
    state.ema.copy_to(final.parameters())
    pipe = pipeline_class(denoiser=final.to("cpu").float(), scheduler=make_scheduler(),
                          direction_model=direction_model)
    meta = {"recipe": cfg, "steps": state.step,
            "final_loss": float(np.mean(losses[-100:])) if losses else None,
            "minutes": round((time.time() - start) / 60, 2),  # this run's; a resumed one started at:
            "resumed_from_step": first_step, "data": data_meta, **meta}
    return save_final(pipe, meta, out, ecfg, state.step, int(tcfg["max_steps"]))
