"""face-facex-v1: the .tflite reader, the torch MobileNetV2 against a numpy walk of the file's own
graph, facex's crop and input, the readings, batching, the registry."""

import importlib.util

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from conditioning.vocabulary import ANCHORS, CATEGORIES
from evaluators.recognizers import RECOGNIZERS, load_recognizer, recognizers_for
from evaluators.recognizers.base import Recognizer
from evaluators.recognizers.face import FaceReading
from evaluators.recognizers.face_facex import (
    FACEX_LABELS,
    FACEX_TO_CATEGORY,
    INSTALL_HINT,
    SIZE,
    FacexExpressionRecognizer,
    TFLiteGraph,
    TFLiteTensor,
    _int8_per_sample,
    facex_crop,
    facex_weights_path,
    read_tflite,
)

needs_facex = pytest.mark.skipif(importlib.util.find_spec("facex") is None,
                                 reason=f"facex's network is not installed ({INSTALL_HINT})")


@pytest.fixture(scope="module")
def astronaut():
    skimage_data = pytest.importorskip("skimage.data")
    return skimage_data.astronaut()  # (512, 512, 3) uint8, a smiling face


@pytest.fixture(scope="module")
def facex():
    if importlib.util.find_spec("facex") is None:
        pytest.skip(f"facex's network is not installed ({INSTALL_HINT})")
    torch.set_num_threads(1)
    return FacexExpressionRecognizer.from_pretrained()


def _numpy_graph(graph: TFLiteGraph, x: np.ndarray) -> np.ndarray:
    """The file's operators run in float64 numpy, channels last, in file order, each from its
    own options: PAD, CONV_2D and DEPTHWISE_CONV_2D ('SAME' = ceil(n/s) outputs, the odd pixel of
    padding after), FULLY_CONNECTED over the row-major flattening, ADD, SOFTMAX. 8-bit kernels read
    by a layer directly are signed bytes (TensorFlow Lite's hybrid kernels), those behind a
    DEQUANTIZE op (q - zero point) * scale."""
    dequantised = {op.outputs[0]: op.inputs[0] for op in graph.ops if op.kind == "DEQUANTIZE"}
    values = {graph.inputs[0]: x.astype(np.float64)}

    def const(i):
        return graph.constant(dequantised.get(i, i), signed_bytes=i not in dequantised).astype(np.float64)

    def windows(a, k, s, padding):  # (H, W, C) -> (Ho, Wo, C, k, k)
        if padding == 0:  # SAME
            pads = [((t := max((-(-n // s) - 1) * s + k - n, 0)) // 2, t - t // 2) for n in a.shape[:2]]
            a = np.pad(a, (*pads, (0, 0)))
        return sliding_window_view(a, (k, k), axis=(0, 1))[::s, ::s]

    for op in graph.ops:
        o = op.options
        if op.kind == "DEQUANTIZE":
            continue
        a = values[op.inputs[0]][0]  # (H, W, C), or (features,)
        if op.kind == "PAD":
            y = np.pad(values[op.inputs[0]], graph.constant(op.inputs[1]).astype(int))
        elif op.kind == "CONV_2D":
            w = const(op.inputs[1])  # (out, kh, kw, in)
            y = np.einsum("hwcij,oijc->hwo", windows(a, w.shape[1], o["stride_h"], o["padding"]), w,
                          optimize=True)
            y = (y + const(op.inputs[2]))[None]
        elif op.kind == "DEPTHWISE_CONV_2D":
            w = const(op.inputs[1])[0]  # (kh, kw, C)
            y = np.einsum("hwcij,ijc->hwc", windows(a, w.shape[0], o["stride_h"], o["padding"]), w,
                          optimize=True)
            y = (y + const(op.inputs[2]))[None]
        elif op.kind == "FULLY_CONNECTED":
            y = (a.reshape(-1) @ const(op.inputs[1]).T + const(op.inputs[2]))[None]
        elif op.kind == "ADD":
            y = values[op.inputs[0]] + values[op.inputs[1]]
        elif op.kind == "SOFTMAX":
            e = np.exp(a - a.max())
            y = (e / e.sum())[None]
        else:
            raise AssertionError(f"unexpected operator {op.kind}")
        if o.get("activation") == 3:  # RELU6
            y = np.clip(y, 0.0, 6.0)
        values[op.outputs[0]] = y
    return values[graph.outputs[0]]


@needs_facex
def test_reader_sees_facex_mobilenetv2():
    g = read_tflite(facex_weights_path())
    kinds = [op.kind for op in g.ops]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "CONV_2D": 35, "DEPTHWISE_CONV_2D": 17, "DEQUANTIZE": 15, "PAD": 5, "ADD": 10,
        "FULLY_CONNECTED": 1, "SOFTMAX": 1}
    assert g.tensors[g.inputs[0]].shape == (1, SIZE, SIZE, 3)
    assert g.tensors[g.outputs[0]].shape == (1, len(FACEX_LABELS))
    stem = g.ops[1]
    assert stem.kind == "CONV_2D" and stem.options["stride_h"] == 2 and stem.options["padding"] == 1


def test_reader_refuses_what_is_not_tflite(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a TensorFlow Lite file"):
        read_tflite(bad)
    with pytest.raises(ValueError, match="not a TensorFlow Lite file"):
        FacexExpressionRecognizer.from_pretrained(bad)


def test_dequantisation_of_8_bit_tensors():
    u8 = TFLiteTensor("k", (3,), np.dtype(np.uint8), np.array([0, 51, 255], np.uint8),
                      np.array([0.5]), np.array([51.0]))
    per_channel = TFLiteTensor("c", (2, 2), np.dtype(np.int8), np.array([[1, -2], [3, -4]], np.int8),
                               np.array([1.0, 10.0]), np.array([0.0, 1.0]), axis=0)
    hybrid = TFLiteTensor("h", (3,), np.dtype(np.uint8), np.array([1, 255, 128], np.uint8),
                          np.array([2.0]), np.array([0.0]))
    g = TFLiteGraph([u8, per_channel, hybrid], [], [], [])
    assert g.constant(0).tolist() == [-25.5, 0.0, 102.0]
    assert g.constant(1).tolist() == [[1.0, -2.0], [20.0, -50.0]]
    assert g.constant(2, signed_bytes=True).tolist() == [2.0, -2.0, -256.0]
    assert g.constant(2).tolist() == [2.0, 510.0, 256.0]


def test_int8_rounding_of_inputs_is_per_sample_and_half_away_from_zero():
    x = torch.tensor([[127.0, 0.5, -0.5, 1.49, -63.5], [2.54, 0.0, 0.0, 0.0, 0.0]])
    y = _int8_per_sample(x)
    assert y[0].tolist() == [127.0, 1.0, -1.0, 1.0, -64.0]  # scale 1
    assert y[1].tolist() == pytest.approx([2.54, 0, 0, 0, 0])  # its own scale, 0.02
    assert _int8_per_sample(torch.zeros(1, 3)).tolist() == [[0.0, 0.0, 0.0]]


@needs_facex
def test_torch_port_matches_a_numpy_walk_of_the_file_graph(facex):
    g = read_tflite(facex_weights_path())
    x = np.random.default_rng(0).uniform(0, 1, (1, SIZE, SIZE, 3))
    ref = _numpy_graph(g, x)[0]  # (7,), the file's own softmax
    try:
        with torch.inference_mode():
            float32 = facex.model.set_tflite_rounding(False)
            p = torch.softmax(float32(torch.from_numpy(x).float().permute(0, 3, 1, 2)), -1)[0]
    finally:
        facex.model.set_tflite_rounding(True)
    # measured: up to 1e-6 (float32 against float64) on three random inputs
    assert ref.sum() == pytest.approx(1.0) and np.abs(p.numpy() - ref).max() < 1e-4
    eight_bit = [m for m in facex.model.modules() if getattr(m, "eight_bit", False)]
    for m in eight_bit:  # read as unsigned, these kernels would hold no negative weight
        w = m.weight.detach().numpy()
        assert (w > 0).any() and (w < 0).any()
        if m is not facex.model.classifier:  # measured: |mean| / std at most 0.04
            assert abs(w.mean()) < 0.2 * w.std()


@needs_facex
def test_tflite_rounding_is_on_and_only_in_the_8_bit_layers(facex, astronaut):
    model = facex.model
    rounding = [n for n, m in model.named_modules() if getattr(m, "round_input", False)]
    assert len(rounding) == sum(getattr(m, "eight_bit", False) for m in model.modules()) == 34
    assert "classifier" in rounding and "head" in rounding
    assert "stem" not in rounding and "blocks.0.project" not in rounding  # float32 in the file
    x = facex.preprocess([facex._face(astronaut, None)[0]])
    try:
        with torch.inference_mode():
            rounded = torch.softmax(model(x), -1)
            plain = torch.softmax(model.set_tflite_rounding(False)(x), -1)
        # measured: 0.0040 (happy 0.9869 rounded, 0.9908 float; the interpreter: 0.9857-0.9886)
        assert 0 < (plain - rounded).abs().max() < 0.05
        assert not any(getattr(m, "round_input", False) for m in model.modules())
    finally:
        model.set_tflite_rounding(True)


@needs_facex
def test_preprocess_is_facex_resize(facex):
    from skimage.transform import resize

    rng = np.random.default_rng(1)
    for shape in ((260, 240), (90, 95)):  # shrunk (anti-aliased) and enlarged
        crop = rng.integers(0, 256, shape, dtype=np.uint8)
        x = facex.preprocess([crop])  # (1, 3, 200, 200)
        ref = resize(crop, (SIZE, SIZE, 3))  # facex's call on its grey crop: float in [0, 1]
        assert x.shape == (1, 3, SIZE, SIZE)
        assert np.abs(x[0].permute(1, 2, 0).numpy() - ref).max() < 1e-6


def test_facex_crop_is_the_box_clipped():
    frame = np.arange(100 * 120, dtype=np.uint16).reshape(100, 120).astype(np.uint8)
    assert np.array_equal(facex_crop(frame, (50, 20, 70, 60)), frame[20:60, 50:70])
    assert facex_crop(frame, (-10, 90, 30, 130)).shape == (10, 30)
    with pytest.raises(ValueError, match="holds no pixel"):
        facex_crop(frame, (130, 0, 150, 20))


@needs_facex
def test_the_astronaut_smiles(facex, astronaut):
    for img in (astronaut, np.ascontiguousarray(astronaut[:, ::-1])):
        r = facex(img)
        assert isinstance(r, FaceReading) and r.recognizer == "face-facex-v1"
        # measured: happy 0.987 (mirrored: 0.996) of the seven classes
        assert r.category == "happy" and r.raw["happy"] > 0.9
        assert list(r.raw) == list(FACEX_LABELS)
        assert list(r.probabilities) == list(CATEGORIES)
        assert sum(r.probabilities.values()) == pytest.approx(1.0)
        assert r.probabilities["calm"] == r.probabilities["contempt"] == 0.0
        assert r.probabilities["sad"] == pytest.approx(r.raw["sadness"])
        vad = sum(np.multiply(r.probabilities[k], ANCHORS[k].vad) for k in CATEGORIES)
        assert (r.valence, r.arousal, r.dominance) == pytest.approx(tuple(vad))
        x0, y0, x1, y1 = r.box
        assert 150 < x0 < x1 < 370 and 40 < y0 < y1 < 200
    assert set(FACEX_TO_CATEGORY.values()) <= set(CATEGORIES)


@needs_facex
def test_no_face_is_an_error(facex, astronaut):
    blank = np.full((240, 320, 3), 128, np.uint8)
    with pytest.raises(ValueError, match="no face"):
        facex(blank)
    with pytest.raises(ValueError, match="frame 1: no face"):
        facex.read_frames([astronaut, blank])


@needs_facex
def test_read_frames_batches_like_single_calls(facex, astronaut):
    single = facex(astronaut)
    batch = facex.read_frames(np.stack([astronaut, astronaut[:, ::-1], astronaut]))
    assert len(batch) == 3 and batch[1].box != single.box
    for r in (batch[0], batch[2]):
        assert r.box == single.box and r.category == single.category
        assert [r.probabilities[k] for k in CATEGORIES] == pytest.approx(
            [single.probabilities[k] for k in CATEGORIES], abs=1e-5)
    boxed = facex.read_frames([astronaut] * 3, every=2, box=single.box)  # no detection
    assert [r.box for r in boxed] == [single.box] * 2
    assert boxed[1].raw == pytest.approx(single.raw, abs=1e-5)


def test_registry_lists_the_second_face_reader(monkeypatch, tmp_path):
    assert {"face-fer-v1", "face-facex-v1"} <= set(recognizers_for("face"))
    info = RECOGNIZERS["face-facex-v1"]
    assert info.reads == "frames" and info.medium == "face" and info.licence.startswith("MIT")
    import evaluators.recognizers.face_facex as face_facex

    monkeypatch.setattr(face_facex.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="--no-deps facex==1.1.0"):
        FacexExpressionRecognizer.from_pretrained()
    with pytest.raises(FileNotFoundError, match="no TensorFlow Lite file"):
        FacexExpressionRecognizer.from_pretrained(tmp_path / "missing.tflite")


@needs_facex
def test_registered_reader_loads_once():
    a, b = load_recognizer("face-facex-v1"), load_recognizer("face-facex-v1")
    assert isinstance(a, Recognizer) and a.name == "face-facex-v1"
    assert a.model is b.model
