"""Face: metrics read back from a generated talking-head video.

The face mesh of mediapipe (478 points with the iris refinement, pixel coordinates here) is
tracked through the frames; the numbers below are computed on those points, on the soundtrack,
and on the pixels outside the face.

- ``FaceTracker``: mediapipe FaceMesh in video mode -> (N, 478, 2) landmarks, NaN where no face.
- ``mouth_opening``: inner-lip gap (points 13-14) over the inter-ocular distance, so it does not
  depend on the size of the face in the frame.
- ``eye_aspect_ratio`` and ``count_blinks``: the eye aspect ratio (Soukupova & Cech 2016,
  "Real-Time Eye Blink Detection using Facial Landmarks") and blinks as short dips of it.
- ``loudness_envelope`` and ``lipsync_correlation``: does the mouth open when the voice is loud?
  Pearson correlation between mouth opening and the soundtrack's level per video frame.
- ``face_mask``, ``ssim_outside`` and ``flicker``: is the rest of the picture left alone?
  Structural similarity (Wang et al. 2004, scikit-image) to the source portrait outside the face,
  and the frame-to-frame wobble of the background's brightness.

Shapes: ``N`` frames, ``H x W`` pixels, landmarks ``(x, y)`` in pixels.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

N_LANDMARKS = 478
LIPS_INNER = (13, 14)  # upper and lower inner lip, mid-line
RIGHT_EYE = (33, 160, 158, 133, 153, 144)  # p1..p6 of the EAR: corner, top, top, corner, bottom x2
LEFT_EYE = (362, 385, 387, 263, 373, 380)
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)


class FaceTracker:
    """mediapipe FaceMesh (one face, iris refinement) in video mode: landmarks in pixels.

    Video mode tracks the face from the previous frame, so feed the frames of one clip in order
    and use a new tracker (or ``reset()``) per clip. ``static=True`` detects afresh every frame.
    """

    def __init__(self, static: bool = False, min_detection_confidence: float = 0.5) -> None:
        self.static = static
        self.min_detection_confidence = min_detection_confidence
        self._mesh = None

    def _open(self):
        if self._mesh is None:
            try:
                import mediapipe
            except ImportError as exc:  # pragma: no cover - installed by the face setup
                raise FileNotFoundError(
                    "the face tracker is the PyPI package mediapipe 0.10.21; install it with "
                    "pip install --no-deps mediapipe==0.10.21"
                ) from exc
            self._mesh = mediapipe.solutions.face_mesh.FaceMesh(
                static_image_mode=self.static, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=self.min_detection_confidence,
            )
        return self._mesh

    def landmarks(self, frame: np.ndarray) -> np.ndarray | None:
        """(478, 2) pixel coordinates (x, y) of the face in an (H, W, 3) uint8 RGB frame, or None
        when no face is found."""
        f = np.ascontiguousarray(frame)
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 uint8 RGB frame, got {f.dtype} {f.shape}")
        result = self._open().process(f)
        if not result.multi_face_landmarks:
            return None
        h, w = f.shape[:2]
        pts = result.multi_face_landmarks[0].landmark
        return np.array([(p.x * w, p.y * h) for p in pts], dtype=np.float64)

    def track(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        """(N, 478, 2) landmarks for N frames; rows of NaN where no face was found."""
        out = []
        for frame in frames:
            lm = self.landmarks(frame)
            out.append(lm if lm is not None else np.full((N_LANDMARKS, 2), np.nan))
        return np.stack(out) if out else np.zeros((0, N_LANDMARKS, 2))

    def reset(self) -> None:
        """Forget the tracked face (start of a new clip)."""
        self.close()

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _as_frames(landmarks: np.ndarray) -> tuple[np.ndarray, bool]:
    """(478, 2) or (N, 478, 2) -> (N, 478, 2) float and whether the input was a single frame."""
    lm = np.asarray(landmarks, dtype=np.float64)
    single = lm.ndim == 2
    lm = lm[None] if single else lm
    if lm.ndim != 3 or lm.shape[2] != 2 or lm.shape[1] <= max(LEFT_EYE):
        raise ValueError(f"landmarks must be (478, 2) or (N, 478, 2), got {np.shape(landmarks)}")
    return lm, single


def _dist(lm: np.ndarray, a, b) -> np.ndarray:
    """Euclidean distance between points (or point sets averaged) a and b, per frame: (N,)."""
    pa = lm[:, list(a)].mean(axis=1) if isinstance(a, tuple) else lm[:, a]
    pb = lm[:, list(b)].mean(axis=1) if isinstance(b, tuple) else lm[:, b]
    return np.linalg.norm(pa - pb, axis=-1)


def inter_ocular(landmarks: np.ndarray) -> np.ndarray | float:
    """Distance between the two eye centres (mean of each eye's corners), (N,) or a float."""
    lm, single = _as_frames(landmarks)
    d = _dist(lm, RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS)  # (N,)
    return float(d[0]) if single else d


def mouth_opening(landmarks: np.ndarray) -> np.ndarray | float:
    """Inner-lip gap |p13 - p14| over the inter-ocular distance: (N,) for (N, 478, 2) input,
    a float for one (478, 2) frame. NaN where the landmarks are NaN. Closed lips read ~0;
    a smile showing the teeth ~0.15; a wide-open vowel 0.4 and more."""
    lm, single = _as_frames(landmarks)
    gap = _dist(lm, *LIPS_INNER)  # (N,)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = gap / _dist(lm, RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS)
    return float(r[0]) if single else r


def _ear(lm: np.ndarray, eye: tuple[int, ...]) -> np.ndarray:
    p1, p2, p3, p4, p5, p6 = eye
    with np.errstate(invalid="ignore", divide="ignore"):
        return (_dist(lm, p2, p6) + _dist(lm, p3, p5)) / (2.0 * _dist(lm, p1, p4))


def eye_aspect_ratio(landmarks: np.ndarray) -> np.ndarray | float:
    """EAR = (|p2-p6| + |p3-p5|) / (2 |p1-p4|) per eye (Soukupova & Cech 2016), averaged over
    both eyes: (N,) for (N, 478, 2) input, a float for one frame. Open eyes read about 0.25-0.35
    on the mesh points, closed ones below 0.1."""
    lm, single = _as_frames(landmarks)
    r = 0.5 * (_ear(lm, RIGHT_EYE) + _ear(lm, LEFT_EYE))  # (N,)
    return float(r[0]) if single else r


class Blinks(NamedTuple):
    """Blinks found in an EAR trace: how many, per minute of clip, and the frame of each."""

    count: int
    per_minute: float
    frames: np.ndarray  # (count,) int: frame of the lowest EAR in each blink


def count_blinks(
    ear: np.ndarray,
    fps: float,
    close_ratio: float = 0.7,
    release_ratio: float = 0.85,
    max_seconds: float = 0.5,
) -> Blinks:
    """Blinks as short dips of the eye aspect ratio below an adaptive threshold.

    Rule: the baseline is the median EAR of the clip (open eyes dominate any natural clip, so the
    median is the open-eye level whatever the face's shape). A dip is a maximal run of frames
    with EAR below ``release_ratio x baseline`` that reaches below ``close_ratio x baseline``;
    it is one blink when its frames below ``close_ratio x baseline`` span 1 to
    ``round(max_seconds x fps)`` frames (longer is eyes closed, not a blink). The two levels
    (hysteresis) make an EAR that jitters around the threshold count once. NaN frames (no face)
    end a dip. ``ear``: (N,). Returns ``Blinks(count, per_minute, frames)``.
    """
    e = np.asarray(ear, dtype=np.float64).reshape(-1)  # (N,)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    n = e.size
    minutes = n / fps / 60.0
    if n == 0 or not np.any(np.isfinite(e)):
        return Blinks(0, 0.0, np.zeros(0, dtype=int))
    base = float(np.nanmedian(e))
    close, release = close_ratio * base, release_ratio * base
    max_frames = max(1, int(round(max_seconds * fps)))
    with np.errstate(invalid="ignore"):
        low = e < release  # NaN compares False: it ends a dip
    found = []
    i = 0
    while i < n:
        if not low[i]:
            i += 1
            continue
        j = i
        while j < n and low[j]:
            j += 1
        run = e[i:j]  # one dip: frames i..j-1
        shut = np.flatnonzero(run < close)
        if shut.size and shut[-1] - shut[0] + 1 <= max_frames:
            found.append(i + int(np.argmin(run)))
        i = j
    frames = np.array(found, dtype=int)
    return Blinks(len(found), len(found) / minutes if minutes > 0 else 0.0, frames)


def loudness_envelope(
    audio: np.ndarray,
    sr: int,
    fps: float,
    n_frames: int | None = None,
    window_seconds: float | None = None,
    floor_db: float = -100.0,
) -> np.ndarray:
    """Level (RMS in dB re full scale) of the audio around each video frame: (n_frames,).

    Frame i sits at time i / fps; its window (default one frame period, 1 / fps) is centred
    there and clipped to the clip, so the first and last frames use the half window that exists.
    ``n_frames`` defaults to ``round(seconds x fps)``. A sine of amplitude A reads
    20 log10(A / sqrt 2) (-9.03 dB for 0.5); digital silence reads ``floor_db``.
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)  # (samples,)
    if not (sr > 0 and fps > 0):
        raise ValueError(f"sr and fps must be positive, got {sr!r}, {fps!r}")
    if n_frames is None:
        n_frames = int(round(x.size / sr * fps))
    win = (1.0 / fps) if window_seconds is None else window_seconds
    csum = np.concatenate([[0.0], np.cumsum(x * x)])  # (samples + 1,)
    centre = np.arange(n_frames) / fps * sr  # (n_frames,) in samples
    lo = np.clip(np.round(centre - win * sr / 2).astype(int), 0, x.size)
    hi = np.clip(np.round(centre + win * sr / 2).astype(int), 0, x.size)
    count = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        ms = np.where(count > 0, (csum[hi] - csum[lo]) / np.maximum(count, 1), 0.0)
        db = 10.0 * np.log10(ms)
    return np.maximum(np.nan_to_num(db, nan=floor_db, neginf=floor_db), floor_db)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def lipsync_correlation(
    opening: np.ndarray,
    audio: np.ndarray,
    sr: int,
    fps: float,
    max_lag_frames: int = 2,
    range_db: float = 50.0,
) -> dict[str, float]:
    """Pearson correlation between mouth opening (N,) and the loudness envelope (N,).

    ``pearson`` is at lag 0 (the headline number). ``best_lag`` / ``best_pearson``: the lag in
    ``[-max_lag_frames, max_lag_frames]`` with the highest correlation, where lag k pairs
    ``opening[i + k]`` with ``loudness[i]`` (k > 0: the mouth moves k frames after the sound).
    Frames where the opening is NaN (no face) are left out. The envelope is limited to
    ``range_db`` below its loudest frame, so the depth of digital silence does not dominate.
    """
    o = np.asarray(opening, dtype=np.float64).reshape(-1)  # (N,)
    env = loudness_envelope(audio, sr, fps, n_frames=o.size)  # (N,)
    env = np.maximum(env, env.max() - range_db) if env.size else env
    results = {}
    for k in range(-int(max_lag_frames), int(max_lag_frames) + 1):
        if k >= 0:
            results[k] = _pearson(o[k:], env[: o.size - k])
        else:
            results[k] = _pearson(o[: o.size + k], env[-k:])
    finite = {k: v for k, v in results.items() if np.isfinite(v)}
    best = max(finite, key=lambda k: (finite[k], -abs(k))) if finite else 0
    return {"pearson": results[0], "best_lag": int(best),
            "best_pearson": finite.get(best, float("nan"))}


def _grey(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB or (H, W) grey -> (H, W) float64 grey in 0..255 (ITU-R BT.601 weights)."""
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3:
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114])
    if a.ndim != 2:
        raise ValueError(f"expected an (H, W, 3) or (H, W) image, got shape {np.shape(img)}")
    return a


def _check_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    m = np.asarray(mask, dtype=bool)
    if m.shape != tuple(shape[:2]):
        raise ValueError(f"mask has shape {m.shape}, frames are {tuple(shape[:2])}")
    if not m.any():
        raise ValueError("mask selects no pixels")
    return m


def ssim_outside(
    frames: Iterable[np.ndarray], reference: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Per-frame SSIM against ``reference`` averaged over the pixels where ``mask`` is True.

    ``frames``: (H, W, 3) uint8 RGB each (any iterable); ``reference``: (H, W, 3) or (H, W);
    ``mask``: (H, W) bool, typically ``~face_mask(...)`` (outside the face). Greyscale,
    scikit-image's structural_similarity with its default 7x7 window, data range 255.
    Returns (N,): 1.0 for an untouched background.
    """
    from skimage.metrics import structural_similarity

    ref = _grey(reference)  # (H, W)
    m = _check_mask(mask, ref.shape)
    out = []
    for frame in frames:
        g = _grey(frame)  # (H, W)
        if g.shape != ref.shape:
            raise ValueError(f"frame shape {g.shape} differs from the reference {ref.shape}")
        _, smap = structural_similarity(ref, g, data_range=255.0, full=True)  # smap: (H, W)
        out.append(float(smap[m].mean()))
    return np.array(out)


def flicker(frames: Iterable[np.ndarray], mask: np.ndarray) -> float:
    """Standard deviation over time of the mean grey level (0..255) inside ``mask`` (H, W).

    A steady background gives ~0; brightness pumping from frame to frame raises it.
    """
    means = []
    m = None
    for frame in frames:
        g = _grey(frame)  # (H, W)
        if m is None:
            m = _check_mask(mask, g.shape)
        means.append(g[m].mean())
    return float(np.std(means)) if means else float("nan")


def face_mask(
    landmarks: np.ndarray, shape: tuple[int, ...], margin: float = 0.15
) -> np.ndarray:
    """(H, W) bool mask of the face: the convex hull of the mesh points, grown by
    ``margin x face height`` (the points' vertical extent) in every direction.

    ``landmarks``: (478, 2) pixels, or (N, 478, 2) for a clip: the union over its frames (frames
    without a face are skipped), so ``~face_mask(track, shape)`` is background in every frame.
    ``shape``: the frame's shape, (H, W) or (H, W, 3).
    """
    import cv2

    lm, _ = _as_frames(landmarks)
    h, w = int(shape[0]), int(shape[1])
    union = np.zeros((h, w), dtype=bool)
    seen = False
    for pts in lm:  # (478, 2)
        if not np.all(np.isfinite(pts)):
            continue
        seen = True
        hull = np.zeros((h, w), dtype=np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
        radius = margin * (pts[:, 1].max() - pts[:, 1].min())
        if radius > 0:
            # distance of each pixel to the nearest hull pixel (the zeros of the input)
            dist = cv2.distanceTransform((hull == 0).astype(np.uint8), cv2.DIST_L2, 5)
            union |= dist <= radius
        else:
            union |= hull.astype(bool)
    if not seen:
        raise ValueError("no frame has a face (all landmarks are NaN)")
    return union
