"""face-facex-v1: a second, independent facial expression reader, a MobileNetV2 read from a
TensorFlow Lite file by this project's own code and run in torch.

**What it is.** A MobileNetV2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR) with a dense layer over its flattened last feature map, seven expression
classes, 200x200 input. The trained network ships (MIT) inside the ``facex`` PyPI package as
``facex/assets/model_optimized.tflite``; its training data are not documented. The package
imports tensorflow at the top, so it is installed with ``--no-deps`` and never imported.

**How it is loaded.** ``read_tflite`` walks the .tflite flatbuffer with the ``flatbuffers``
runtime alone (the handful of tables and fields of the TensorFlow Lite schema this needs are
named below) and returns its tensors, dequantised to float32, and its operators;
``load_tflite`` copies the weights into ``FacexMobileNetV2`` layer by layer, checking every kind,
shape, stride, padding and activation against the graph and that no stored weight is left over.
The file is a converter's "dynamic range" model: batch norm is folded into biases, the 1x1 and
dense kernels are 8-bit (signed values in bytes typed uint8, one scale per tensor), the depthwise
kernels 8-bit with a zero point and explicit DEQUANTIZE ops. This port computes in float32 with
the dequantised kernels and, like TensorFlow Lite's hybrid kernels, rounds the input of each
8-bit layer to 8 bits per sample (``FacexMobileNetV2.set_tflite_rounding``, on by default), so
that its readings are those facex gives. Each layer then equals the interpreter's to ~2e-5 given
the same input; over the whole network the rounding turns float32 summation-order differences
into whole quantisation steps, so no two implementations agree exactly (the interpreter's own
kernel sets differ from each other by up to 0.14 in a probability). ``set_tflite_rounding(False)``
gives the plain float32 network, which varies smoothly with its input.

**Face and input.** The face is found as for face-fer-v1 (``face.find_face``: the largest frontal
Haar face), so both readers see the same box; the crop is facex's own: the box exactly, grey
(ITU-R BT.601 luma), resized to 200x200 with scikit-image (bilinear, anti-aliased when
shrinking), the grey value repeated in all three channels, pixels in [0, 1]. The stride-2
layers pad one row and column after (bottom/right) only, as the file's PAD ops do.

Labels, in the network's output order (facex's own list): anger, disgust, fear, happy,
neutral, sadness, surprised; they map onto the shared categories like FER2013's do (calm and
contempt get 0), and VAD is derived from the probability-weighted category anchors.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evaluators.recognizers.face import Box, _FaceRecognizer, _grey, as_rgb, find_face

#: facex's classes in the order of the network's outputs.
FACEX_LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "neutral", "sadness",
                                 "surprised")
FACEX_TO_CATEGORY: dict[str, str] = {"anger": "angry", "disgust": "disgusted", "fear": "fearful",
                                     "happy": "happy", "neutral": "neutral", "sadness": "sad",
                                     "surprised": "surprised"}
#: the network's input side (px)
SIZE = 200
INSTALL_HINT = "pip install --no-deps facex==1.1.0"


# -- reading a .tflite flatbuffer ----------------------------------------------------------------
# Field numbers of the TensorFlow Lite schema (tensorflow/lite/schema/schema.fbs), only those read:
#   Model: operator_codes 1, subgraphs 2, buffers 4          Buffer: data 0, offset 1, size 2
#   OperatorCode: deprecated_builtin_code 0, builtin_code 3  SubGraph: tensors 0, inputs 1,
#   Tensor: shape 0, type 1, buffer 2, name 3, quantization 4          outputs 2, operators 3
#   QuantizationParameters: scale 2, zero_point 3, quantized_dimension 6
#   Operator: opcode_index 0, inputs 1, outputs 2, builtin_options 4
_OPS = {0: "ADD", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE", 9: "FULLY_CONNECTED",
        22: "RESHAPE", 25: "SOFTMAX", 34: "PAD"}
# options tables: field name per field number (Conv2DOptions, DepthwiseConv2DOptions, ...)
_OPTIONS = {
    "CONV_2D": ("padding", "stride_w", "stride_h", "activation", "dilation_w", "dilation_h"),
    "DEPTHWISE_CONV_2D": ("padding", "stride_w", "stride_h", "depth_multiplier", "activation",
                          "dilation_w", "dilation_h"),
    "FULLY_CONNECTED": ("activation", "weights_format", "keep_num_dims"),
    "ADD": ("activation",),
    "SOFTMAX": ("beta",),
}
_OPTION_DEFAULTS = {"dilation_w": 1, "dilation_h": 1, "depth_multiplier": 1, "beta": 0.0}
#: TensorType -> numpy dtype
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
PADDING = {0: "SAME", 1: "VALID"}
ACTIVATION = {0: None, 1: "RELU", 3: "RELU6"}


@dataclass
class TFLiteTensor:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    data: np.ndarray | None  # stored values as typed in the file, None for activations
    scale: np.ndarray | None = None  # (1,) or per channel along ``axis``
    zero_point: np.ndarray | None = None
    axis: int = 0


@dataclass
class TFLiteOp:
    kind: str  # "CONV_2D", ... (or "BUILTIN_<code>" for an operator this reader does not know)
    inputs: list[int]
    outputs: list[int]
    options: dict[str, float | int] = field(default_factory=dict)


@dataclass
class TFLiteGraph:
    tensors: list[TFLiteTensor]
    ops: list[TFLiteOp]
    inputs: list[int]
    outputs: list[int]

    def constant(self, index: int, signed_bytes: bool = False) -> np.ndarray:
        """Tensor ``index``'s stored values as float32. 8-bit values become (q - zero_point) *
        scale; ``signed_bytes`` reads uint8-typed bytes as int8 first, as TensorFlow Lite's
        hybrid kernels (float input, 8-bit weights) do."""
        t = self.tensors[index]
        if t.data is None:
            raise ValueError(f"tensor {t.name!r} holds no stored values")
        q = t.data.view(np.int8) if signed_bytes and t.dtype == np.uint8 else t.data
        if t.scale is None or q.dtype.kind == "f":
            return q.astype(np.float32)
        shape = [1] * q.ndim
        if t.scale.size > 1:
            shape[t.axis] = t.scale.size
        zero = 0.0 if signed_bytes or t.zero_point is None or not t.zero_point.size \
            else t.zero_point.reshape(shape)
        return ((q.astype(np.float64) - zero) * t.scale.reshape(shape)).astype(np.float32)


class _Table:
    """One flatbuffer table: fields looked up by number through its vtable."""

    def __init__(self, buf: bytes, pos: int):
        from flatbuffers import table

        self.t = table.Table(buf, pos)

    def _at(self, n: int) -> int:
        return self.t.Offset(4 + 2 * n)  # 0 when the field is absent

    def scalar(self, n: int, flags, default=0):
        o = self._at(n)
        return self.t.Get(flags, self.t.Pos + o) if o else default

    def vector(self, n: int, flags) -> np.ndarray:
        o = self._at(n)
        return self.t.GetVectorAsNumpy(flags, o) if o else np.zeros(0)

    def string(self, n: int) -> str:
        o = self._at(n)
        return self.t.String(self.t.Pos + o).decode("utf-8", "replace") if o else ""

    def table(self, n: int) -> _Table | None:
        o = self._at(n)
        return _Table(self.t.Bytes, self.t.Indirect(self.t.Pos + o)) if o else None

    def tables(self, n: int) -> list[_Table]:
        o = self._at(n)
        if not o:
            return []
        start = self.t.Vector(o)
        return [_Table(self.t.Bytes, self.t.Indirect(start + 4 * i)) for i in range(self.t.VectorLen(o))]


def read_tflite(path: str | Path) -> TFLiteGraph:
    """The first subgraph of a TensorFlow Lite file: its tensors (stored values kept as typed,
    with their quantisation) and operators (kind, inputs, outputs, builtin options)."""
    from flatbuffers import encode, packer
    from flatbuffers import number_types as nt

    buf = Path(path).read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ValueError(f"{path}: not a TensorFlow Lite file (no TFL3 identifier)")
    model = _Table(buf, encode.Get(packer.uoffset, buf, 0))
    buffers = []
    for b in model.tables(4):
        data = b.vector(0, nt.Uint8Flags)
        offset, size = b.scalar(1, nt.Uint64Flags), b.scalar(2, nt.Uint64Flags)
        if offset > 1:  # large models keep buffers after the flatbuffer
            data = np.frombuffer(buf, np.uint8, size, offset)
        buffers.append(data)
    codes = [max(c.scalar(0, nt.Int8Flags), c.scalar(3, nt.Int32Flags)) for c in model.tables(1)]
    subgraphs = model.tables(2)
    if not subgraphs:
        raise ValueError(f"{path}: no subgraph")
    g = subgraphs[0]
    tensors = []
    for t in g.tables(0):
        shape = tuple(int(v) for v in t.vector(0, nt.Int32Flags))
        code = t.scalar(1, nt.Int8Flags)
        if code not in _DTYPES:
            raise ValueError(f"{path}: tensor {t.string(3)!r} has TensorType {code}, not read here")
        dtype = np.dtype(_DTYPES[code])
        raw = buffers[t.scalar(2, nt.Uint32Flags)]
        data = np.frombuffer(raw.tobytes(), dtype).reshape(shape) if raw.size else None
        tensor = TFLiteTensor(t.string(3), shape, dtype, data)
        q = t.table(4)
        if q is not None and q.vector(2, nt.Float32Flags).size:
            tensor.scale = q.vector(2, nt.Float32Flags).astype(np.float64)
            tensor.zero_point = q.vector(3, nt.Int64Flags).astype(np.float64)
            tensor.axis = q.scalar(6, nt.Int32Flags)
        tensors.append(tensor)
    ops = []
    for op in g.tables(3):
        kind = _OPS.get(codes[op.scalar(0, nt.Uint32Flags)], f"BUILTIN_{codes[op.scalar(0, nt.Uint32Flags)]}")
        options = {}
        opt = op.table(4)
        if opt is not None and kind in _OPTIONS:
            for n, name in enumerate(_OPTIONS[kind]):
                if name == "beta":
                    options[name] = opt.scalar(n, nt.Float32Flags, 0.0)
                elif name in ("padding", "activation", "weights_format", "keep_num_dims"):
                    options[name] = opt.scalar(n, nt.Int8Flags, 0)
                else:
                    options[name] = opt.scalar(n, nt.Int32Flags, _OPTION_DEFAULTS.get(name, 0))
        ops.append(TFLiteOp(kind, [int(i) for i in op.vector(1, nt.Int32Flags)],
                            [int(i) for i in op.vector(2, nt.Int32Flags)], options))
    return TFLiteGraph(tensors, ops, [int(i) for i in g.vector(1, nt.Int32Flags)],
                       [int(i) for i in g.vector(2, nt.Int32Flags)])


# -- the network ---------------------------------------------------------------------------------
def _relu6(x: torch.Tensor) -> torch.Tensor:
    return F.hardtanh(x, 0.0, 6.0)


def _int8_per_sample(x: torch.Tensor) -> torch.Tensor:
    """x rounded to 255 symmetric levels per sample, scale max|x| / 127 (round half away from
    zero): what TensorFlow Lite's hybrid kernels do to a float input before an 8-bit-weight
    layer, so that the products can be summed in integers."""
    scale = x.abs().flatten(1).amax(1).clamp_min(1e-30) / 127.0  # (B,)
    scale = scale.view(-1, *[1] * (x.dim() - 1))
    q = torch.sign(x) * torch.floor(x.abs() / scale + 0.5)
    return q.clamp(-127, 127) * scale


class _HybridConv2d(nn.Conv2d):
    """A conv that, when ``round_input`` is set, rounds its input per sample to 8 bits first.
    ``eight_bit`` says whether the file stores this layer's weights in 8 bits (set on loading)."""

    eight_bit: bool = False
    round_input: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_int8_per_sample(x) if self.round_input else x)


class _HybridLinear(nn.Linear):
    """``_HybridConv2d``'s dense counterpart."""

    eight_bit: bool = False
    round_input: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_int8_per_sample(x) if self.round_input else x)


class _InvertedResidual(nn.Module):
    """A MobileNetV2 bottleneck: 1x1 expansion (ReLU6; none in the first block), 3x3 depthwise
    (ReLU6; stride 2 after explicit padding, else 'same'), 1x1 linear projection, and the input
    added back when the stride is 1 and the widths match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int,
                 pad: tuple[int, int, int, int]):
        super().__init__()
        hidden = c_in * expansion
        self.expand = _HybridConv2d(c_in, hidden, 1) if expansion != 1 else None
        self.depthwise = nn.Conv2d(hidden, hidden, 3, stride, 1 if stride == 1 else 0, groups=hidden)
        self.project = _HybridConv2d(hidden, c_out, 1)
        self.stride, self.pad = stride, pad
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _relu6(self.expand(x)) if self.expand is not None else x  # (B, hidden, H, W)
        if self.stride != 1:
            y = F.pad(y, self.pad)
        y = self.project(_relu6(self.depthwise(y)))  # (B, c_out, H / stride, W / stride)
        return x + y if self.residual else y


class FacexMobileNetV2(nn.Module):
    """The MobileNetV2 (width 1.0) of facex's ``model_optimized.tflite``.

    (B, 3, 200, 200) faces in [0, 1] -> (B, 7) logits over ``FACEX_LABELS``. A 3x3/2 stem to 32
    channels, 17 bottlenecks (expansion t, width c, repeats n, first stride s as in Sandler et al.
    2018, Table 2), a 1x1 conv to 1280 (200 -> 100 -> 50 -> 25 -> 12 -> 6 px), and one dense
    layer over the (6, 6, 1280) map flattened channels last, as TensorFlow Lite lays it out.

    Args:
        n_classes: outputs of the dense layer.
        image_size: input side in px; fixes the dense layer's width.
        pad: (left, right, top, bottom) zero padding before each stride-2 conv; the file's is one
            column/row after, whatever the map's size (the network was built for 224 px input).
    """

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))  # (t, c, n, s)

    def __init__(self, n_classes: int = len(FACEX_LABELS), image_size: int = SIZE,
                 pad: tuple[int, int, int, int] = (0, 1, 0, 1)):
        super().__init__()
        self.pad = tuple(pad)
        self.stem = nn.Conv2d(3, 32, 3, 2)
        side = (image_size + pad[2] + pad[3] - 3) // 2 + 1
        blocks, c_in = [], 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                stride = s if i == 0 else 1
                blocks.append(_InvertedResidual(c_in, c, stride, t, self.pad))
                side = side if stride == 1 else (side + pad[2] + pad[3] - 3) // 2 + 1
                c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.head = _HybridConv2d(c_in, 1280, 1)
        self.feature_side = side
        self.classifier = _HybridLinear(side * side * 1280, n_classes)

    def set_tflite_rounding(self, on: bool = True) -> FacexMobileNetV2:
        """Round (``on``) or not the input of every layer the file stores with 8-bit weights to
        8 bits per sample, as TensorFlow Lite's hybrid kernels do; ``load_tflite`` turns it on.
        Off, the network computes in plain float32."""
        for m in self.modules():
            if isinstance(m, (_HybridConv2d, _HybridLinear)):
                m.round_input = bool(on and m.eight_bit)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _relu6(self.stem(F.pad(x, self.pad)))  # (B, 32, 100, 100)
        for block in self.blocks:
            x = block(x)  # (B, 320, 6, 6) after the last
        x = _relu6(self.head(x))  # (B, 1280, 6, 6)
        return self.classifier(x.permute(0, 2, 3, 1).flatten(1))  # (B, 7)


def _tflite_names(model: FacexMobileNetV2) -> dict[str, str]:
    """torch module path -> the layer name that prefixes its weights in the .tflite."""
    names = {"stem": "Conv1", "head": "Conv_1", "classifier": "predictis",
             "blocks.0.depthwise": "expanded_conv_depthwise",
             "blocks.0.project": "expanded_conv_project"}
    for i in range(1, len(model.blocks)):
        for part in ("expand", "depthwise", "project"):
            names[f"blocks.{i}.{part}"] = f"block_{i}_{part}"
    return names


def load_tflite(path: str | Path) -> FacexMobileNetV2:
    """A ``FacexMobileNetV2`` with the weights of facex's .tflite, every layer's kind, shape,
    stride, padding and activation checked against the file and every stored weight used once;
    8-bit layers round their input as the interpreter does (``set_tflite_rounding``)."""
    graph = read_tflite(path)
    model = FacexMobileNetV2().eval()
    modules = dict(model.named_modules())
    dequantised = {op.outputs[0]: op.inputs[0] for op in graph.ops if op.kind == "DEQUANTIZE"}
    layers: dict[str, tuple[TFLiteOp, int]] = {}  # layer name -> (op, weight tensor)
    for op in graph.ops:
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            w = dequantised.get(op.inputs[1], op.inputs[1])
            layers[graph.tensors[w].name.split("/")[0]] = (op, w)
    known = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "DEQUANTIZE", "PAD", "ADD", "SOFTMAX"}
    if unknown := sorted({op.kind for op in graph.ops} - known):
        raise ValueError(f"{path}: operators {unknown} are not part of FacexMobileNetV2")
    used = set()

    def fail(what: str) -> ValueError:
        return ValueError(f"{path}: {what}; this is not facex's MobileNetV2")

    def put(param: torch.Tensor, array: np.ndarray, name: str) -> None:
        if tuple(param.shape) != array.shape:
            raise fail(f"{name} has shape {array.shape} where {tuple(param.shape)} was expected")
        param.data.copy_(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))

    with torch.no_grad():
        for module_name, layer in _tflite_names(model).items():
            if layer not in layers:
                raise fail(f"no layer {layer!r}")
            op, w = layers[layer]
            m, o = modules[module_name], op.options
            hybrid = op.inputs[1] == w and graph.tensors[w].dtype.kind in "iu"  # 8-bit, no DEQUANTIZE
            kernel = graph.constant(w, signed_bytes=hybrid)
            if hybrid and not isinstance(m, (_HybridConv2d, _HybridLinear)):
                raise fail(f"{layer} has 8-bit weights read by a float kernel here")
            if isinstance(m, (_HybridConv2d, _HybridLinear)):
                m.eight_bit = hybrid
            used.update({w, op.inputs[2]})
            put(m.bias, graph.constant(op.inputs[2]), f"{layer} bias")
            if isinstance(m, nn.Linear):
                if o.get("activation") or o.get("weights_format"):
                    raise fail(f"{layer}: options {o}, expected a plain dense layer")
                put(m.weight, kernel, layer)  # (out, in), in = flattened (H, W, C)
                continue
            act, pad, stride = ACTIVATION.get(o["activation"]), PADDING[o["padding"]], o["stride_h"]
            want_act = None if module_name.endswith("project") else "RELU6"
            want_pad = "VALID" if m.stride[0] == 2 else "SAME"  # stride 2: after a PAD op
            if (act, stride, o["stride_w"], o.get("dilation_h", 1), o.get("dilation_w", 1)) != \
                    (want_act, m.stride[0], m.stride[0], 1, 1) or (m.kernel_size[0] > 1 and pad != want_pad):
                raise fail(f"{layer}: activation {act}, padding {pad}, stride {stride}, expected "
                           f"{want_act}, {want_pad}, {m.stride[0]}")
            if op.kind == "DEPTHWISE_CONV_2D":  # (1, kh, kw, C * multiplier) -> (C, 1, kh, kw)
                if m.groups != m.in_channels or o["depth_multiplier"] != 1:
                    raise fail(f"{layer} is depthwise where a full conv was expected")
                put(m.weight, kernel[0].transpose(2, 0, 1)[:, None], layer)
            else:  # (out, kh, kw, in) -> (out, in, kh, kw)
                put(m.weight, kernel.transpose(0, 3, 1, 2), layer)
    pads = [graph.constant(op.inputs[1]) for op in graph.ops if op.kind == "PAD"]
    want_pad = [[0, 0], [model.pad[2], model.pad[3]], [model.pad[0], model.pad[1]], [0, 0]]
    if len(pads) != 5 or any(p.tolist() != want_pad for p in pads):
        raise fail(f"PAD ops {[p.tolist() for p in pads]}, expected 5 of {want_pad}")
    used.update(op.inputs[1] for op in graph.ops if op.kind == "PAD")
    adds = sum(op.kind == "ADD" for op in graph.ops)
    if adds != sum(b.residual for b in model.blocks):
        raise fail(f"{adds} residual additions, expected {sum(b.residual for b in model.blocks)}")
    stored = {i for i, t in enumerate(graph.tensors) if t.data is not None}
    if stored - used:
        raise fail(f"stored tensors not used: {sorted(graph.tensors[i].name for i in stored - used)}")
    x_shape = graph.tensors[graph.inputs[0]].shape
    if tuple(x_shape[1:]) != (SIZE, SIZE, 3):
        raise fail(f"input shape {x_shape}, expected (1, {SIZE}, {SIZE}, 3)")
    return model.set_tflite_rounding(True)


def facex_weights_path() -> Path:
    """``model_optimized.tflite`` inside the installed facex package, found without importing
    facex (it imports tensorflow)."""
    spec = importlib.util.find_spec("facex")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"face-facex-v1 needs the network shipped in the facex package: "
                                  f"{INSTALL_HINT}", name="facex")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "model_optimized.tflite"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}; reinstall it with {INSTALL_HINT}")
    return path


# -- the recognizer ------------------------------------------------------------------------------
_NETWORKS: dict[str, FacexMobileNetV2] = {}


def facex_crop(grey: np.ndarray, box: Box) -> np.ndarray:
    """facex's crop: the face box exactly (clipped to the frame), no widening or padding."""
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = grey.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"face box {box} holds no pixel of the {w}x{h} frame")
    return grey[y0:y1, x0:x1]


class FacexExpressionRecognizer(_FaceRecognizer):
    """face-facex-v1: Haar face, facex's crop and input, its MobileNetV2 in torch.

    Example:
        >>> from skimage import data
        >>> rec = FacexExpressionRecognizer.from_pretrained()  # doctest: +SKIP
        >>> rec(data.astronaut()).category  # doctest: +SKIP
        'happy'
    """

    name = "face-facex-v1"
    medium = "face"
    source = ("MobileNetV2 (Sandler et al. 2018) facial expression classifier shipped in the facex "
              "PyPI package 1.1.0 as a .tflite (MIT), read and run in torch by this project's code")
    licence = "MIT (network from the facex package)"
    mapping = FACEX_TO_CATEGORY
    grey_crop = True

    def __init__(self, model: FacexMobileNetV2, min_face_size: int = 50):
        self.model = model.eval()
        self.min_face_size = min_face_size

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, **kwargs) -> FacexExpressionRecognizer:
        """From facex's .tflite (the installed package's when ``path`` is None); the network is
        read once per process."""
        path = Path(path) if path is not None else facex_weights_path()
        if not path.is_file():
            raise FileNotFoundError(f"no TensorFlow Lite file at {str(path)!r} ({INSTALL_HINT})")
        key = str(path.resolve())
        if key not in _NETWORKS:
            _NETWORKS[key] = load_tflite(path)
        return cls(_NETWORKS[key], **kwargs)

    def _face(self, image, box: Box | None) -> tuple[np.ndarray, Box]:
        grey = _grey(as_rgb(image))
        b = tuple(int(v) for v in box) if box is not None else find_face(grey, self.min_face_size)
        return facex_crop(grey, b), b

    @staticmethod
    def preprocess(crops: Sequence[np.ndarray]) -> torch.Tensor:
        """Grey uint8 crops of any size -> (B, 3, 200, 200) float in [0, 1]: scikit-image's
        resize (bilinear, reflect edges, Gaussian anti-aliasing when shrinking), the grey value
        in all three channels, as facex feeds its network."""
        from skimage.transform import resize

        x = np.stack([resize(np.asarray(c, np.uint8), (SIZE, SIZE), order=1, mode="reflect",
                             anti_aliasing=True) for c in crops]).astype(np.float32)  # (B, S, S)
        return torch.from_numpy(x)[:, None].expand(-1, 3, -1, -1).contiguous()

    def _classify(self, crops: list[np.ndarray]) -> list[dict[str, float]]:
        if not crops:
            return []
        with torch.inference_mode():
            p = torch.softmax(self.model(self.preprocess(crops)), -1).numpy()  # (B, 7)
        return [{k: float(v) for k, v in zip(FACEX_LABELS, row)} for row in p]
