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
