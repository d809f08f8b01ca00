"""Training the music denoiser (``affect train music --config configs/train/music.yaml``).

The corpus (``corpus.py``) gives 4-bar segments with their attributes; the UNet learns to
predict the noise added to a segment given the segment's standardised attributes as condition
channels (dropped for a share of examples, for classifier-free guidance). Some examples join the
first half of one segment to the second half of another, each half with its own condition, so
that conditions changing over time (emotion curves) are in the training distribution.
Runs on accelerate (CPU, one GPU or several); saves a resumable checkpoint every
``checkpoint_every`` steps and resumes from the newest one; ends by saving the pipeline with the
EMA weights, and exports it where ``export.dir`` says (the package's embedded default is written
this way).

Labelled MIDI (an EMOPIA-style folder, or any folder + ``labels.csv``) refits the
emotion -> attribute mapping: ``fit_mapping_from_folder``.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from generators.music.corpus import Corpus, build_corpus
from generators.music.mapping import AttributeSpace, default_direction_model, fit_direction_model
from generators.music.modeling_music import build_unet, condition_channels, model_input
from generators.music.representation import ATTRIBUTES, ROLL_ATTRIBUTES, SEGMENT_STEPS
from generators.training_utils import export_target, prepare_training, save_checkpoint

logger = logging.getLogger(__name__)

#: EMOPIA's quadrants (Hung et al. 2021) -> the vocabulary's category for that quadrant.
EMOPIA_QUADRANTS = {"Q1": "happy", "Q2": "angry", "Q3": "sad", "Q4": "calm"}


def _sampling_weights(sources: np.ndarray, balance: float) -> np.ndarray:
    names, inverse, counts = np.unique(sources, return_inverse=True, return_counts=True)
    w = counts[inverse].astype(np.float64) ** (-balance)
    return w / w.sum()


def train_music(
    cfg: dict,
    *,
    max_steps: int | None = None,
    output_dir: str | None = None,
    resume: bool = True,
    prepare_only: bool = False,
) -> Path | None:
    """Run the recipe ``cfg`` (a loaded YAML). Returns the folder of the final pipeline."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers import DDPMScheduler

    from generators.music.pipeline_music import MusicPipeline, make_scheduler

    data, mcfg, tcfg, ecfg = cfg["data"], cfg["model"], cfg["training"], cfg.get("export", {})
    corpus: Corpus = build_corpus(
        data.get("cache"),
        data["collections"],
        data["max_segments_per_work"],
        data.get("max_files"),
        data.get("workers"),
        progress=True,
    )
    logger.info("corpus: %d segments", len(corpus))
    if prepare_only:
        return None
    out = Path(output_dir or tcfg["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    max_steps = int(max_steps or tcfg["max_steps"])
    accelerator = Accelerator(
        mixed_precision=tcfg.get("mixed_precision", "no"), project_dir=str(out)
    )
    set_seed(int(tcfg["seed"]))
    device = accelerator.device

    space = AttributeSpace.from_corpus(corpus.attributes)
    z_all = np.stack(
        [
            space.to_z(np.concatenate([a, [space.centre["tempo"], space.centre["velocity"]]]))
            for a in corpus.attributes
        ]
    )[:, : len(ROLL_ATTRIBUTES)].astype(np.float32)
    rolls = torch.from_numpy(corpus.rolls)  # (N, 4, P, T) bool, kept on the device when it fits
    if device.type == "cuda":
        rolls = rolls.to(device)
    z_t = torch.from_numpy(z_all).to(device)
    major_t = torch.from_numpy(
        corpus.attributes[:, ROLL_ATTRIBUTES.index("major")].astype(np.float32)
    ).to(device)
    weights = _sampling_weights(corpus.sources, float(data["source_balance"]))

    unet = build_unet(
        tuple(mcfg["block_out_channels"]),
        int(mcfg["layers_per_block"]),
        int(mcfg["norm_num_groups"]),
    )
    logger.info("UNet: %.2fM parameters", sum(p.numel() for p in unet.parameters()) / 1e6)
    prediction_type = tcfg.get("prediction_type", "v_prediction")
    noise_sched = DDPMScheduler(
        num_train_timesteps=int(tcfg["num_train_timesteps"]),
        beta_schedule=tcfg["beta_schedule"],
        prediction_type=prediction_type,
    )
    state = prepare_training(accelerator, unet, tcfg, max_steps, out, resume)
    unet, opt, lr_sched, ema, step = (state.model, state.optimizer, state.lr_scheduler,
                                      state.ema, state.step)
    rng = np.random.default_rng(int(tcfg["seed"]) + step)
    batch = int(tcfg["batch_size"])
    half = SEGMENT_STEPS // 2
    start_time, losses = time.time(), []
    max_minutes = tcfg.get("max_minutes")
    unet.train()
    while step < max_steps:
        idx = torch.from_numpy(rng.choice(len(weights), batch, p=weights)).to(device)
        x = rolls[idx].to(device=device, dtype=torch.float32) * 2 - 1  # (B, 4, P, T)
        z = z_t[idx][:, :, None].expand(-1, -1, SEGMENT_STEPS).clone()  # (B, A, T)
        major = major_t[idx][:, None].expand(-1, SEGMENT_STEPS).clone()  # (B, T)
        splice = torch.from_numpy(rng.random(batch) < float(data["splice_prob"])).to(device)
        if splice.any():
            partner = torch.from_numpy(rng.choice(len(weights), batch, p=weights)).to(device)
            xp = rolls[partner].to(device=device, dtype=torch.float32) * 2 - 1
            zp = z_t[partner][:, :, None].expand(-1, -1, SEGMENT_STEPS)
            x[splice, :, :, half:] = xp[splice, :, :, half:]
            z[splice, :, half:] = zp[splice, :, half:]
            major[splice, half:] = major_t[partner][splice, None]
        drop = torch.from_numpy(rng.random(batch) < float(tcfg["cond_drop_prob"])).to(device)
        noise = torch.randn_like(x)
        t = torch.randint(0, noise_sched.config.num_train_timesteps, (batch,), device=device)
        noisy = noise_sched.add_noise(x, noise, t)
        with accelerator.accumulate(unet):
            pred = unet(model_input(noisy, condition_channels(z, major, drop)), t).sample
            if prediction_type == "v_prediction":
                target = noise_sched.get_velocity(x, noise, t)
            elif prediction_type == "sample":
                target = x
            else:
                target = noise
            loss = torch.nn.functional.mse_loss(pred.float(), target)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(unet.parameters(), 1.0)
            opt.step()
            lr_sched.step()
            opt.zero_grad(set_to_none=True)
        ema.step(unet.parameters())
        step += 1
        losses.append(float(loss.detach()))
        if step % int(tcfg["log_every"]) == 0:
            logger.info(
                "step %d loss %.4f lr %.2e (%.1f steps/s)",
                step,
                float(np.mean(losses)),
                lr_sched.get_last_lr()[0],
                step / max(1e-9, time.time() - start_time),
            )
            losses = []
        out_of_time = max_minutes is not None and (time.time() - start_time) / 60 > float(
            max_minutes
        )
        if step % int(tcfg["checkpoint_every"]) == 0 or step == max_steps or out_of_time:
            save_checkpoint(accelerator, out, step, int(tcfg["keep_checkpoints"]))
        if out_of_time:
            logger.info("stopping at step %d: max_minutes reached (resume to go on)", step)
            break

    # The pipeline with the EMA weights.
    final_unet = accelerator.unwrap_model(unet)
    ema.copy_to(final_unet.parameters())
    final_unet = final_unet.to("cpu", torch.float32).eval()
    pipe = MusicPipeline(
        unet=final_unet,
        scheduler=make_scheduler(
            int(tcfg["num_train_timesteps"]), tcfg["beta_schedule"], prediction_type
        ),
        attribute_space=space,
        direction_model=default_direction_model(space),
    )
    final = out / "final"
    _save(
        pipe,
        final,
        fp16=bool(ecfg.get("fp16", False)),
        meta={
            "steps": step,
            "corpus_segments": len(corpus),
            "collections": list(data["collections"]),
            "minutes": round((time.time() - start_time) / 60, 2),
            "max_steps": max_steps,
        },
    )
    target = export_target(ecfg, step, int(tcfg["max_steps"]))
    if target:
        _save(
            pipe,
            target,
            fp16=bool(ecfg.get("fp16", False)),
            meta=json.loads((final / "training.json").read_text()),
        )
    return final


def _save(pipe, directory: Path, fp16: bool, meta: dict) -> None:
    tmp = directory.with_name(directory.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    if fp16:
        pipe.unet.to(torch.float16)
    pipe.save_pretrained(tmp)
    pipe.unet.to(torch.float32)
    (tmp / "training.json").write_text(json.dumps(meta, indent=2), "utf-8")
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


# -- labelled MIDI -> mapping -----------------------------------------------------------------------
def read_labels(folder: str | Path) -> list[tuple[Path, str]]:
    """(file, category) pairs from ``labels.csv`` (columns ``file,emotion``) or, without one, from
    EMOPIA file names (``Q1_xxx.mid`` ... ``Q4_xxx.mid``)."""
    from conditioning import parse_emotion

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder of MIDI files")
    pairs = []
    labels = folder / "labels.csv"
    if labels.exists():
        with labels.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if "file" not in row or "emotion" not in row:
                    raise ValueError("labels.csv needs the columns file,emotion")
                pairs.append((folder / row["file"], parse_emotion(row["emotion"]).dominant))
    else:
        for path in sorted(folder.glob("*.mid*")):
            q = path.name.split("_")[0].upper()
            if q in EMOPIA_QUADRANTS:
                pairs.append((path, EMOPIA_QUADRANTS[q]))
    if not pairs:
        raise ValueError(
            f"no labelled MIDI in {str(folder)!r}: add labels.csv (file,emotion) or "
            "EMOPIA-style names (Q1_..., Q4_...)"
        )
    return pairs


def midi_attributes(path: str | Path) -> np.ndarray:
    """The full attribute vector (roll attributes + tempo + velocity) of any MIDI file."""
    import pretty_midi

    from generators.music.pipeline_music import load_seed_midi
    from generators.music.representation import STEPS_PER_BAR, compute_attributes

    notes, _ = load_seed_midi(path)
    bars = max(1.0, max(n.start + n.length for n in notes) / STEPS_PER_BAR)
    attrs = compute_attributes(notes, bars)
    pm = pretty_midi.PrettyMIDI(str(path))
    _, tempi = pm.get_tempo_changes()
    vel = [n.velocity for i in pm.instruments for n in i.notes]
    attrs["tempo"] = float(tempi[0]) if len(tempi) else 120.0
    attrs["velocity"] = float(np.mean(vel)) if vel else 64.0
    return np.array([attrs[a] for a in ATTRIBUTES])


def fit_mapping_from_folder(folder: str | Path, space: AttributeSpace):
    """Fit the emotion -> attribute direction model on a folder of labelled MIDI."""
    pairs = read_labels(folder)
    attrs, labels = [], []
    for path, label in pairs:
        try:
            attrs.append(midi_attributes(path))
            labels.append(label)
        except ValueError as exc:
            logger.warning("skipping %s: %s", path, exc)
    if len({lab for lab in labels}) < 1 or not attrs:
        raise ValueError("no readable labelled MIDI files")
    return fit_direction_model(np.stack(attrs), labels, space)
