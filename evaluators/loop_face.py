"""The closed loop for faces: animate a real portrait speaking real recordings at emotions x
intensities, read every video back (expression recognizer on the frames, face mesh on the frames,
the audio track), score, and write the report.

The animator is an argument (``animate(image, audio, sample_rate, emotion=..., generator=...)``
returning an object with ``n_frames``, ``fps``, ``frame(i)``, ``audio``, ``sample_rate`` and
``portrait``), so evaluators never import a generator.

What is checked, with the thresholds of the face issue:

- expression: at the top intensity the recognizer's top class is the target on the majority of
  frames (per clip; a clip's reading is its majority class), and the target's mean probability
  rises over the intensities (Spearman of the means >= 0.8), for happy, sad, angry, surprised;
- lip sync: Pearson between the mouth opening the face mesh measures on the output frames and
  the audio's loudness envelope, >= 0.5 (mean over clips; lag 0);
- identity and stability: SSIM of every frame against the portrait outside the face (the union
  of the tracked face hulls, widened by 15 % of the face height) >= 0.95; the background's flicker;
  10-30 blinks per minute (eye aspect ratio on the mesh, pooled over the clips);
- timing: the video's duration matches the audio's within one frame (40 ms).

One portrait says little about faces in general, so the sweep can also read a *portrait panel*
(``evaluate_portrait_panel``): many real photographed faces, each holding every emotion at every
intensity as a still (no speech), read by the same recognizer. The panel that ships with the
stack is ``lfw_portraits``: the 100 face images of scikit-image's ``lfw_subset`` (grey 25x25 crops
of news photographs from Labeled Faces in the Wild, Huang et al. 2007), upscaled; small and blurred,
but a hundred different people, most of them relaxed or smiling a little.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from conditioning import parse_emotion
from conditioning.audio import load_audio
from evaluators.metrics import EmotionAccuracy, spearman
from evaluators.metrics.face import (
    FaceTracker,
    count_blinks,
    eye_aspect_ratio,
    face_mask,
    flicker,
    lipsync_correlation,
    mouth_opening,
    ssim_outside,
)
from evaluators.report import reader_agreement

logger = logging.getLogger(__name__)

FACE_TARGETS = {"majority": 0.5, "spearman": 0.8, "lipsync": 0.5, "ssim": 0.95, "blinks": (10.0, 30.0)}
FACE_EMOTIONS = ["happy", "sad", "angry", "surprised"]


def evaluate_face(
    animate: Callable,
    out_dir: str | Path,
    image,
    recordings: list[Path],
    emotions: list[str],
    intensities: list[float],
    recognizers: list | None = None,
    seed: int = 0,
    every: int = 2,
    keep_video: bool = True,
    panel: dict | None = None,
    top_recordings: list[Path] | None = None,
    top_max_seconds: float | None = None,
) -> dict:
    """Run the sweep and write ``report.json`` / ``report.html``; returns the report.

    ``top_recordings``: more clips animated at the top intensity only: they count in the accuracy,
    the share of frames and the video guards, not in the intensity Spearman figures; with
    ``top_max_seconds``, only their first seconds are spoken (to bound the sweep's time).

    The recognizers read every ``every``-th frame; the mesh measures every frame. ``panel``
    (``{"stills": callable, "portraits": [(name, image), ...]}``) adds the portrait panel's
    reading (``evaluate_portrait_panel``) to the report, with its contact sheet."""
    import torch

    from evaluators.recognizers.face import FaceExpressionRecognizer
    from evaluators.report import write_report

    out = Path(out_dir)
    (out / "video").mkdir(parents=True, exist_ok=True)
    recognizers = recognizers or [FaceExpressionRecognizer.from_pretrained()]
    main = recognizers[0]
    for e in emotions:
        parse_emotion(e)
    top = max(intensities)
    acc = {r.name: EmotionAccuracy() for r in recognizers}
    rows = []
    reference = None
    full = len(recordings)
    for k, clip in enumerate(list(recordings) + list(top_recordings or [])):
        src = load_audio(clip)
        if k >= full and top_max_seconds:
            src.wav = src.wav[: int(top_max_seconds * src.sample_rate)]
        for emotion in emotions:
            for intensity in (intensities if k < full else [top]):
                res = animate(image, src.wav, src.sample_rate, emotion=f"{emotion}@{intensity:g}",
                              generator=torch.Generator().manual_seed(seed))
                # every frame where the mesh measures the video (top and bottom intensity); elsewhere
                # only the frames the readers read are rendered
                measured = intensity == top or intensity == min(intensities)
                step = 1 if measured else every
                frames = [res.frame(i) if i % step == 0 else None for i in range(res.n_frames)]
                if reference is None:
                    reference = res.portrait.image
                row = {"recording": k, "emotion": emotion, "intensity": intensity,
                       "frames": res.n_frames, **({"top_only": True} if k >= full else {}),
                       "duration_error_s": abs(res.n_frames / res.fps - len(res.audio) / res.sample_rate)}
                boxes = None  # the first reader finds the face in each frame; the others read the same box
                for rec in recognizers:
                    readings = rec.read_frames(frames[::every], box=boxes)
                    boxes = [r.box for r in readings]
                    cats = [r.category for r in readings]
                    p = float(np.mean([r.probabilities[emotion] for r in readings]))
                    majority = max(set(cats), key=cats.count)
                    share = cats.count(emotion) / len(cats)
                    if intensity == top:
                        acc[rec.name].update(emotion, majority)
                    tag = "" if rec is main else f":{rec.name}"
                    row.update({f"p_target{tag}": p, f"read{tag}": majority, f"target_share{tag}": share})
                    if rec is main:
                        row.update({"valence": float(np.mean([r.valence for r in readings])),
                                    "arousal": float(np.mean([r.arousal for r in readings]))})
                if intensity == top or intensity == min(intensities):
                    with FaceTracker() as tracker:
                        lm = tracker.track(frames)
                    opening = mouth_opening(lm)
                    ls = lipsync_correlation(opening, res.audio, res.sample_rate, res.fps)
                    blinks = count_blinks(eye_aspect_ratio(lm), res.fps)
                    mask = ~face_mask(lm[~np.isnan(lm).any(axis=(1, 2))], reference.shape[:2])
                    ssim = ssim_outside(frames[::every], reference, mask)
                    row.update({"lipsync_pearson": ls["pearson"], "lipsync_best_lag": ls["best_lag"],
                                "lipsync_best_pearson": ls["best_pearson"],
                                "blinks": blinks.count, "seconds": res.n_frames / res.fps,
                                "blinks_per_minute": blinks.per_minute, "ssim_outside_min": float(ssim.min()),
                                "ssim_outside_mean": float(ssim.mean()), "flicker": flicker(frames, mask),
                                "mesh_found": float(np.mean(~np.isnan(lm).any(axis=(1, 2))))})
                    if keep_video and intensity == top:
                        path = out / "video" / f"{k:02d}_{emotion}_{intensity:g}.mp4"
                        res.save(path)
                        row["file"] = str(path.relative_to(out))
                rows.append(row)
            logger.info("face eval: recording %d %s done", k, emotion)
    report = face_report(rows, [Path(r).name for r in list(recordings) + list(top_recordings or [])],
                         emotions, intensities, recognizers, acc)
    if panel is not None:
        report["portrait_panel"] = evaluate_portrait_panel(panel["stills"], panel["portraits"], emotions,
                                                           intensities, main, sheet=out / "panel.png")
    return write_report(out, report)


def lfw_portraits(n: int | None = None) -> list[tuple[str, np.ndarray]]:
    """Real photographed faces that ship with scikit-image: the 100 faces of ``lfw_subset``
    (25x25 grey), ``n`` of them spread over the set (all when None), each upscaled 10x (bicubic)
    and given a border of repeated edge pixels so that the face mesh sees a whole head."""
    import cv2
    from skimage import data

    faces = data.lfw_subset()[:100]  # the first 100 images are faces, the other 100 are not
    if n is not None and not 1 <= n <= len(faces):
        raise ValueError(f"the LFW panel has {len(faces)} faces; asked for {n}")
    picks = range(len(faces)) if n is None else np.unique(np.linspace(0, len(faces) - 1, n).round().astype(int))
    out = []
    for i in picks:
        grey = np.clip(np.rint(faces[i] * 255), 0, 255).astype(np.uint8)
        up = cv2.resize(grey, (250, 250), interpolation=cv2.INTER_CUBIC)
        framed = cv2.copyMakeBorder(up, 100, 100, 100, 100, cv2.BORDER_REPLICATE)
        out.append((f"lfw_subset[{i}]", np.repeat(framed[:, :, None], 3, axis=2)))
    return out


def evaluate_portrait_panel(stills: Callable, portraits: list[tuple[str, np.ndarray]], emotions: list[str],
                            intensities: list[float], recognizer=None, sheet: Path | None = None,
                            sheet_portraits: int = 8) -> dict:
    """Every portrait holds every emotion at every intensity (``stills(image, specs)`` -> one
    frame per spec) and the recognizer reads each still. Per emotion: the target's mean
    probability per intensity over the portraits and its Spearman, the share of portraits whose
    own curve rises (Spearman >= 0.8), the share read as the target at the top intensity, what
    they were read as, and how the relaxed faces (intensity 0) read. Portraits where no face is
    found are listed and left out. ``sheet``: a contact sheet PNG (relaxed + each emotion at the
    top intensity, one row per portrait)."""
    from collections import Counter

    import cv2

    from evaluators.recognizers.face import FaceExpressionRecognizer

    rec = recognizer or FaceExpressionRecognizer.from_pretrained()
    top, low = max(intensities), min(intensities)

    def key(e: str, x: float) -> str:  # every emotion at intensity 0 is the same relaxed face
        return "neutral" if x == 0 else f"{e}@{x:g}"

    specs = list(dict.fromkeys(key(e, x) for e in emotions for x in intensities))
    probs = {e: [] for e in emotions}  # per portrait: P(target) per intensity
    read_top = {e: [] for e in emotions}
    relaxed, skipped, tiles = [], [], []
    for name, image in portraits:
        try:
            frames = dict(zip(specs, stills(image, specs)))
            by_spec = {k: rec(f) for k, f in frames.items()}
        except ValueError as exc:
            skipped.append({"portrait": name, "error": str(exc).splitlines()[0]})
            continue
        for e in emotions:
            probs[e].append([by_spec[key(e, x)].probabilities[e] for x in intensities])
            read_top[e].append(by_spec[key(e, top)].category)
        relaxed.append(by_spec[key(emotions[0], low)].category)
        if sheet is not None and len(tiles) < sheet_portraits:
            picked = [frames[key(emotions[0], low)]] + [frames[key(e, top)] for e in emotions]
            s = picked[0].shape[0]
            c0, c1 = int(0.2 * s), int(0.8 * s)
            tiles.append(np.concatenate([cv2.resize(f[c0:c1, c0:c1], (128, 128)) for f in picked], axis=1))
    if not relaxed:
        raise ValueError(f"no face found in any of the {len(portraits)} panel portraits")
    out = {"portraits": len(relaxed), "skipped": skipped, "intensities": intensities,
           "relaxed_read_as": dict(Counter(relaxed).most_common()), "emotions": {}}
    for e in emotions:
        p = np.array(probs[e])  # (portraits, intensities)
        means = p.mean(0).tolist()
        own = [spearman(intensities, row) for row in p]
        out["emotions"][e] = {
            "p_target_means": means, "spearman_of_means": spearman(intensities, means),
            "portraits_rising": float(np.mean([r >= FACE_TARGETS["spearman"] for r in own])),
            "target_top_at_top": float(np.mean([c == e for c in read_top[e]])),
            "read_at_top": dict(Counter(read_top[e]).most_common()),
        }
    if sheet is not None and tiles:
        from conditioning.io import atomic_write

        sheet = Path(sheet)
        sheet.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(sheet, "wb") as tmp:
            _, png = cv2.imencode(".png", cv2.cvtColor(np.concatenate(tiles, axis=0), cv2.COLOR_RGB2BGR))
            Path(tmp).write_bytes(png.tobytes())
        out["sheet"] = sheet.name
        out["sheet_columns"] = ["relaxed"] + [f"{e}@{top:g}" for e in emotions]
    return out


def face_report(rows, recordings, emotions, intensities, recognizers, acc) -> dict:
    main = recognizers[0]
    top = max(intensities)

    def per_emotion(tag: str = "") -> dict:
        out = {}
        for e in emotions:
            means = [float(np.mean([r[f"p_target{tag}"] for r in rows if r["emotion"] == e
                                    and r["intensity"] == x and not r.get("top_only")]))
                     for x in intensities]
            shares = [r[f"target_share{tag}"] for r in rows if r["emotion"] == e and r["intensity"] == top]
            rho = spearman(intensities, means)
            out[e] = {"p_target_means": means, "spearman_of_means": rho,
                      "target_share_at_top": float(np.mean(shares)),
                      "clips_majority_at_top": float(np.mean(np.array(shares) > FACE_TARGETS["majority"])),
                      "pass": bool(rho >= FACE_TARGETS["spearman"]
                                   and np.mean(np.array(shares) > FACE_TARGETS["majority"]) > 0.5)}
        return out

    measured = [r for r in rows if "lipsync_pearson" in r]
    lips = np.array([r["lipsync_pearson"] for r in measured])
    blink_rate = 60.0 * sum(r["blinks"] for r in measured) / sum(r["seconds"] for r in measured)
    ssim_min = float(np.min([r["ssim_outside_min"] for r in measured]))
    dur_err = float(max(r["duration_error_s"] for r in rows))
    lo, hi = FACE_TARGETS["blinks"]
    quality = {"lipsync_pearson_mean": float(np.nanmean(lips)), "lipsync_pearson_min": float(np.nanmin(lips)),
               "lipsync_best_lag_median": float(np.median([r["lipsync_best_lag"] for r in measured])),
               "blinks_per_minute": blink_rate, "ssim_outside_min": ssim_min,
               "ssim_outside_mean": float(np.mean([r["ssim_outside_mean"] for r in measured])),
               "flicker_max": float(np.max([r["flicker"] for r in measured])),
               "mesh_found_min": float(np.min([r["mesh_found"] for r in measured])),
               "duration_error_max_s": dur_err}
    emo = per_emotion()
    return {
        "medium": "face",
        "sweep": {"emotions": emotions, "intensities": intensities, "recordings": recordings,
                  "videos": len(rows), "top_only_recordings": len({r["recording"] for r in rows if r.get("top_only")})},
        "recognizer": {"name": main.name, "licence": main.licence},
        "agreement_at_top": reader_agreement(
            [r for r in rows if r["intensity"] == top],
            {r.name: "read" if r is main else f"read:{r.name}" for r in recognizers}),
        "recognizers": [{"name": r.name, "licence": r.licence,
                         "accuracy_at_max_intensity": acc[r.name].compute()["accuracy"],
                         "n": acc[r.name].compute()["n"], "standard_error": acc[r.name].compute()["standard_error"],
                         "intensity_spearman": {e: v["spearman_of_means"] for e, v in
                                                per_emotion("" if r is main else f":{r.name}").items()}}
                        for r in recognizers],
        "accuracy_at_max_intensity": acc[main.name].compute(),
        "expression": emo,
        "spearman_threshold": FACE_TARGETS["spearman"],
        "intensity_spearman": {e: {"value": v["spearman_of_means"],
                                   "pass": bool(v["spearman_of_means"] >= FACE_TARGETS["spearman"])}
                               for e, v in emo.items()},
        "quality": quality,
        "quality_guards": {
            "lipsync_pearson_mean": {"value": quality["lipsync_pearson_mean"], "bounds": [FACE_TARGETS["lipsync"], 1.0],
                                     "pass": bool(quality["lipsync_pearson_mean"] >= FACE_TARGETS["lipsync"])},
            "ssim_outside_min": {"value": ssim_min, "bounds": [FACE_TARGETS["ssim"], 1.0],
                                 "pass": bool(ssim_min >= FACE_TARGETS["ssim"])},
            "blinks_per_minute": {"value": blink_rate, "bounds": [lo, hi], "pass": bool(lo <= blink_rate <= hi)},
            "duration_error_max_s": {"value": dur_err, "bounds": [0.0, 0.04], "pass": bool(dur_err <= 0.04)},
        },
        "rows": rows,
    }
