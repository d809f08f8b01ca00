"""Portrait analysis: one photo -> the working frame and the dense face mesh on it.

- The image is read with Pillow at any size, in any common format; EXIF orientation is applied
  and the result converted to RGB.
- The 478-point face mesh (468 points + 10 iris points) comes from the face-mesh model that ships
  inside the ``mediapipe`` wheel (0.10.21, the last release with bundled models), run on the
  portrait as a still image. Several faces: the largest is used and a note says so. No face: a
  clear error.
- The working frame is a square crop centred on the face, ``2 * face_resolution`` pixels on a
  side, so that the face (the mesh's height, forehead to chin) is ``face_resolution`` pixels
  (default 256 px, frame 512 x 512). Where the crop would leave the photo, it is shrunk to fit;
  where the photo is too small even then, its border is repeated (and a note says so).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from conditioning.io import native_stderr_to_log

logger = logging.getLogger(__name__)

#: Smallest face accepted in the source photo (mesh height, pixels).
MIN_FACE_PX = 48
#: Smallest image side accepted.
MIN_IMAGE_PX = 64
#: Largest image side read (bigger photos are scaled down before the mesh is found).
MAX_IMAGE_PX = 4096
FRAME_OVER_FACE = 2.0  # working-frame side / face height
MESH_POINTS = 478

RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)


@dataclass
class Portrait:
    """A portrait ready to animate: ``image`` (S, S, 3) uint8 RGB working frame and the mesh on it."""

    image: np.ndarray
    landmarks: np.ndarray  # (478, 2) pixel coordinates in the working frame
    depth: np.ndarray  # (478,) mesh z in the same pixel units (smaller = nearer the camera)
    face_resolution: int
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(self.image.shape[0])

    @property
    def eye_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(image-left eye, image-right eye) centres, pixels."""
        return self.landmarks[list(RIGHT_EYE)].mean(0), self.landmarks[list(LEFT_EYE)].mean(0)

    @property
    def interocular(self) -> float:
        a, b = self.eye_centres
        return float(np.linalg.norm(b - a))


def read_image(image) -> tuple[np.ndarray, str]:
    """An RGB uint8 array from a path, a PIL image or an array (grey/RGBA accepted), EXIF-upright."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(image, np.ndarray):
        arr, name = image, "array"
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ValueError(f"an image array must be HxW, HxWx3 or HxWx4; got shape {arr.shape}")
        arr = _to_uint8(arr)[:, :, :3]
    else:
        name = str(image) if not hasattr(image, "size") else "PIL image"
        try:
            if isinstance(image, str | Path):
                path = Path(image)
                if not path.is_file():
                    raise ValueError(f"image {str(path)!r} does not exist")
                if path.stat().st_size == 0:
                    raise ValueError(f"image {str(path)!r} is empty")
                im = Image.open(path)
            else:
                im = image
            im = ImageOps.exif_transpose(im)
            im.load()
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise ValueError(f"could not read {name!r} as an image ({type(e).__name__}); accepted: "
                             "png, jpeg, webp, bmp, tiff") from None
        if im.mode in ("I", "F") or im.mode.startswith("I;16"):  # 16-bit or float grey
            grey = _to_uint8(np.asarray(im).astype(np.uint16 if im.mode.startswith("I;16") else np.float64))
            arr = np.repeat(grey[:, :, None], 3, axis=2)
        else:
            arr = np.asarray(im.convert("RGB"))
    if min(arr.shape[:2]) < MIN_IMAGE_PX:
        raise ValueError(f"image too small: {arr.shape[1]}x{arr.shape[0]} px; at least "
                         f"{MIN_IMAGE_PX} px on each side is accepted")
    return np.ascontiguousarray(arr), name


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """8-bit levels from an image array: 16-bit integers scaled from 0-65535, floats from 0-1
    (or taken as 0-255 when they exceed 1), 32-bit integers as 16-bit ones when they exceed 255."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16 or (np.issubdtype(a.dtype, np.integer) and a.max(initial=0) > 255):
        return np.clip(np.asarray(a, dtype=np.float64) / 257.0, 0, 255).round().astype(np.uint8)
    f = np.asarray(a, dtype=np.float64)
    return np.clip(f * 255 if f.max(initial=0) <= 1.0 else f, 0, 255).round().astype(np.uint8)


_MESH = {}  # mediapipe graphs, built once per process: meshes by (static, faces), the detector


def _solutions():
    try:
        from mediapipe.python import solutions
    except ImportError as e:
        raise RuntimeError("the face mesh needs mediapipe 0.10.21: pip install --no-deps "
                           "mediapipe==0.10.21 absl-py attrs flatbuffers 'protobuf<5' (see the README)"
                           ) from e
    return solutions


def _face_mesh(static: bool = True, faces: int = 5):
    key = (static, faces)
    if key not in _MESH:
        _MESH[key] = _solutions().face_mesh.FaceMesh(static_image_mode=static, max_num_faces=faces,
                                                     refine_landmarks=True, min_detection_confidence=0.5)
    return _MESH[key]


def _detection_score(rgb: np.ndarray) -> float:
    """The best face-detection score (mediapipe's full-range detector) in an RGB image, 0 if none."""
    if "detector" not in _MESH:
        _MESH["detector"] = _solutions().face_detection.FaceDetection(model_selection=1,
                                                                      min_detection_confidence=0.3)
    res = _MESH["detector"].process(np.ascontiguousarray(rgb))
    return max((float(d.score[0]) for d in res.detections or []), default=0.0)


#: How much better a face must be detected in a turned photo to turn it (detection scores, 0-1).
TURN_MARGIN = 0.2


def _upright_turns(rgb: np.ndarray) -> int:
    """Quarter turns (``np.rot90``'s k) that stand a photo's face upright, judged by the face
    detector, which scores an upright face highest (the face mesh fits its upright model to a
    face upside down, so its own landmarks cannot tell); 0 unless a turn is clearly better."""
    from PIL import Image

    k = min(1.0, 512 / max(rgb.shape[:2]))
    size = (max(1, round(rgb.shape[1] * k)), max(1, round(rgb.shape[0] * k)))
    small = rgb if k >= 1 else np.asarray(Image.fromarray(rgb).resize(size))
    scores = [_detection_score(np.rot90(small, t)) for t in range(4)]
    best = int(np.argmax(scores))
    return best if best and scores[best] > scores[0] + TURN_MARGIN else 0


def _turn_note(turns: int) -> str:
    return (f"the face lay turned {90 * (4 - turns)} degrees counter-clockwise in the photo; the "
            "working frame is turned upright")


def _mesh_in(rgb: np.ndarray) -> list[np.ndarray]:
    h, w = rgb.shape[:2]
    res = _face_mesh().process(np.ascontiguousarray(rgb))
    return [np.array([[p.x * w, p.y * h, p.z * w] for p in f.landmark], dtype=np.float64)
            for f in res.multi_face_landmarks or []]


def _haar_boxes(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, 1024 / max(grey.shape))
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else grey
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    boxes = cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    return [tuple(int(round(v / scale)) for v in b) for b in boxes]


def detect_mesh(rgb: np.ndarray) -> list[np.ndarray]:
    """All faces' meshes in an RGB image, each (478, 3) in pixels (x, y, z), largest first.

    The face mesh's own detector is made for faces that fill much of the picture; so the mesh is
    also run on a square crop around every face OpenCV's frontal-face cascade finds, which finds
    small faces in large photos and several faces in one. Duplicates are merged."""
    import cv2

    found = _mesh_in(rgb)
    h, w = rgb.shape[:2]
    for x, y, bw, bh in _haar_boxes(rgb):
        side = int(2.2 * max(bw, bh))
        cx, cy = x + bw / 2, y + bh / 2
        x0, y0 = int(cx - side / 2), int(cy - side / 2)
        crop = np.full((side, side, 3), 127, np.uint8)
        sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)
        crop[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
        k = min(1.0, 512 / side)
        crop_s = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_AREA) if k < 1 else crop
        for pts in _mesh_in(crop_s):
            pts = pts / k
            pts[:, 0] += x0
            pts[:, 1] += y0
            found.append(pts)
    faces: list[np.ndarray] = []
    for pts in sorted(found, key=lambda p: -np.ptp(p[:, 0]) * np.ptp(p[:, 1])):
        c = pts[:, :2].mean(0)
        if all(np.linalg.norm(c - f[:, :2].mean(0)) > 0.3 * np.ptp(f[:, 1]) for f in faces):
            faces.append(pts)
    return faces


def _quarter_turns(pts: np.ndarray) -> int:
    """How many quarter turns (``np.rot90``'s k) bring the face of mesh ``pts`` upright: 0 when
    its eyes lie within 45 degrees of level (the person's right eye on the image's left)."""
    d = pts[list(LEFT_EYE), :2].mean(0) - pts[list(RIGHT_EYE), :2].mean(0)
    return int(np.round(np.degrees(np.arctan2(d[1], d[0])) / 90.0)) % 4


def analyse_portrait(image, face_resolution: int = 256) -> Portrait:
    """Read ``image``, find the largest face and cut the working frame around it."""
    # mediapipe's TFLite runtime logs its start-up to the process's stderr: to the debug log
    with native_stderr_to_log(logger, "face mesh"):
        return _analyse_portrait(image, face_resolution)


def _analyse_portrait(image, face_resolution: int) -> Portrait:
    if not 64 <= face_resolution <= 1024:
        raise ValueError(f"face_resolution must be in [64, 1024] px, got {face_resolution}")
    rgb, name = read_image(image)
    notes: list[str] = []
    scale0 = 1.0
    if max(rgb.shape[:2]) > MAX_IMAGE_PX:
        from PIL import Image

        scale0 = MAX_IMAGE_PX / max(rgb.shape[:2])
        size = (round(rgb.shape[1] * scale0), round(rgb.shape[0] * scale0))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.LANCZOS))
        notes.append(f"image scaled by {scale0:.3f} to {size[0]}x{size[1]} before analysis")
    turned = _upright_turns(rgb)
    if turned:  # a photo on its side or upside down (no EXIF orientation): stand it upright
        rgb = np.ascontiguousarray(np.rot90(rgb, turned))
        notes.append(_turn_note(turned))
    faces = detect_mesh(rgb)
    if not faces:
        raise ValueError(f"no face found in {name!r}; a portrait with one clearly visible, "
                         "roughly frontal face is accepted")
    if len(faces) > 1:
        notes.append(f"{len(faces)} faces found; using the largest")
    pts = faces[0]
    turns = _quarter_turns(pts)
    if turns:  # a photo on its side or upside down (no EXIF orientation): turn it upright
        rgb = np.ascontiguousarray(np.rot90(rgb, turns))
        upright = detect_mesh(rgb)
        if upright and not _quarter_turns(upright[0]):
            pts = upright[0]
            notes.append(_turn_note(turns))
        else:
            raise ValueError(f"the face in {name!r} is on its side or upside down and was not found "
                             "turned upright; an upright portrait is accepted")
    face_h = float(np.ptp(pts[:, 1]))
    if face_h < MIN_FACE_PX:
        raise ValueError(f"face too small: {face_h:.0f} px high; at least {MIN_FACE_PX} px is accepted")
    # square crop centred on the face box, FRAME_OVER_FACE x its height on a side
    cx, cy = (pts[:, 0].min() + pts[:, 0].max()) / 2, (pts[:, 1].min() + pts[:, 1].max()) / 2
    side = FRAME_OVER_FACE * face_h
    h, w = rgb.shape[:2]
    fit = min(side, float(w), float(h))
    if fit < side * 0.75:
        notes.append("the photo is tight around the face; its border is repeated to fill the frame")
        fit = side
    side = fit
    x0 = float(np.clip(cx - side / 2, 0, max(0.0, w - side))) if side <= w else cx - side / 2
    y0 = float(np.clip(cy - side / 2, 0, max(0.0, h - side))) if side <= h else cy - side / 2
    out = 2 * face_resolution * side / (FRAME_OVER_FACE * face_h)
    out_px = int(round(out / 2) * 2)  # even: H.264 needs even sides
    s = out_px / side
    import cv2

    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], dtype=np.float64)
    frame = cv2.warpAffine(rgb, m, (out_px, out_px), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REPLICATE)
    lm = np.c_[pts[:, 0] * s - x0 * s, pts[:, 1] * s - y0 * s]
    # re-find the mesh on the working frame itself: the renderer warps these exact pixels
    again = detect_mesh(frame)
    if again:
        near = min(again, key=lambda p: np.abs(p[:, :2] - lm).mean())
        if np.abs(near[:, :2] - lm).mean() < 0.05 * out_px:
            lm, depth = near[:, :2], near[:, 2]
        else:
            depth = pts[:, 2] * s
    else:
        depth = pts[:, 2] * s
    notes.append(f"working frame {out_px}x{out_px} px, face {face_resolution} px high "
                 f"(source face {face_h / scale0:.0f} px)")
    logger.info("portrait %s: %s", name, "; ".join(notes))
    return Portrait(frame, lm.astype(np.float64), np.asarray(depth, dtype=np.float64),
                    face_resolution, name, notes)
