"""DirectionVectorModel on synthetic clustered embeddings with planted directions."""

import numpy as np
import pytest
import torch

from conditioning import CATEGORIES, DirectionVectorModel, EmotionSpec

NON_NEUTRAL = [c for c in CATEGORIES if c != "neutral"]


def planted(dim=32, per_class=60, noise=0.3, seed=0):
    """Embeddings around a neutral centre, each category at centre + L_k * d_k."""
    rng = np.random.default_rng(seed)
    neutral = rng.normal(0, 1, dim)
    dirs = {k: v / np.linalg.norm(v) for k, v in zip(NON_NEUTRAL, rng.normal(0, 1, (8, dim)))}
    lengths = {k: float(rng.uniform(2.0, 5.0)) for k in NON_NEUTRAL}
    xs, ys = [neutral + rng.normal(0, noise, (per_class, dim))], ["neutral"] * per_class
    for k in NON_NEUTRAL:
        xs.append(neutral + lengths[k] * dirs[k] + rng.normal(0, noise, (per_class, dim)))
        ys += [k] * per_class
    return np.concatenate(xs), ys, neutral, dirs, lengths


def test_fit_recovers_planted_directions_and_lengths():
    x, y, neutral, dirs, lengths = planted()
    model = DirectionVectorModel.fit(x, y)
    assert model.categories == NON_NEUTRAL
    for k in NON_NEUTRAL:
        cos = float(model.directions[k] @ dirs[k])
        assert cos > 0.95, (k, cos)
        assert model.lengths[k] == pytest.approx(lengths[k], rel=0.1)
    # standard error of a 60-sample mean in 32-D at noise 0.3: sqrt(32) * 0.3 / sqrt(60) = 0.22
    assert np.linalg.norm(model.neutral - neutral) < 0.5


def test_steer_moves_monotonically_with_intensity():
    x, y, neutral, dirs, _ = planted()
    model = DirectionVectorModel.fit(x, y)
    for k in NON_NEUTRAL:
        proj, dist = [], []
        for i in (0.0, 0.25, 0.5, 0.75, 1.0, 1.25):
            e = model.steer(model.neutral, EmotionSpec({k: 1.0}, i))
            proj.append(float((e - model.neutral) @ dirs[k]))
            dist.append(float(np.linalg.norm(e - model.centres[k])))
        assert np.all(np.diff(proj) > 0), k
        assert np.argmin(dist) == 4  # intensity 1 lands nearest the category's centre


def test_steer_at_full_intensity_lands_on_the_category_cluster():
    x, y, _, _, _ = planted()
    model = DirectionVectorModel.fit(x, y)
    e = model.steer(model.neutral, EmotionSpec({"sad": 1.0}, 1.0))
    assert np.linalg.norm(e - model.centres["sad"]) < 0.5


def test_steer_accepts_batched_torch_tensors():
    x, y, _, _, _ = planted(dim=8)
    model = DirectionVectorModel.fit(x, y)
    base = torch.zeros(3, 8, dtype=torch.float32)
    out = model.steer(base, EmotionSpec({"angry": 1.0}, 0.5))
    assert out.shape == (3, 8) and out.dtype == torch.float32
    expected = 0.5 * model.lengths["angry"] * model.directions["angry"]
    assert np.allclose(out[0].numpy(), expected, atol=1e-6)


def test_read_inverts_steer():
    x, y, _, _, _ = planted()
    model = DirectionVectorModel.fit(x, y)
    spec = EmotionSpec({"happy": 0.7, "surprised": 0.3}, 0.8)
    back = model.read(model.steer(model.neutral, spec))
    assert back.isclose(spec, tol=1e-6)


def test_save_load_round_trip_is_exact(tmp_path):
    x, y, _, _, _ = planted()
    model = DirectionVectorModel.fit(x, y, meta={"medium": "synthetic"})
    model.save(tmp_path)
    loaded = DirectionVectorModel.load(tmp_path)
    assert np.array_equal(loaded.neutral, model.neutral)
    for k in NON_NEUTRAL:
        assert np.array_equal(loaded.directions[k], model.directions[k])
        assert loaded.lengths[k] == model.lengths[k]
        assert np.array_equal(loaded.centres[k], model.centres[k])
    assert np.array_equal(loaded.axes, model.axes)
    assert loaded.meta == {"medium": "synthetic"}
    spec = EmotionSpec({"calm": 1.0}, 0.6)
    assert np.array_equal(loaded.steer(loaded.neutral, spec), model.steer(model.neutral, spec))


def test_missing_category_steers_through_the_vad_axes():
    x, y, _, _, _ = planted()
    keep = [i for i, lab in enumerate(y) if lab != "contempt"]
    model = DirectionVectorModel.fit(x[keep], [y[i] for i in keep])
    assert "contempt" not in model.categories and model.axes is not None
    e = model.steer(model.neutral, EmotionSpec({"contempt": 1.0}, 1.0))
    assert np.all(np.isfinite(e)) and np.linalg.norm(e - model.neutral) > 0


def test_missing_category_without_axes_is_a_clear_error():
    x, y, _, _, _ = planted()
    keep = [i for i, lab in enumerate(y) if lab in ("neutral", "happy", "sad")]
    model = DirectionVectorModel.fit(x[keep], [y[i] for i in keep])
    assert model.axes is None
    with pytest.raises(ValueError, match="no direction for angry"):
        model.steer(model.neutral, EmotionSpec({"angry": 1.0}, 1.0))


def test_unsupervised_fit_with_a_few_labels_recovers_directions():
    x, y, _, dirs, _ = planted(seed=3)
    rng = np.random.default_rng(1)
    few = rng.choice(len(y), 45, replace=False)  # ~5 labelled examples per class
    model = DirectionVectorModel.fit_unsupervised(
        x, n_clusters=9, labelled=(x[few], [y[i] for i in few]), seed=0
    )
    assert sorted(model.categories) == sorted(NON_NEUTRAL)
    for k in NON_NEUTRAL:
        assert float(model.directions[k] @ dirs[k]) > 0.95, k


def test_fit_errors():
    with pytest.raises(ValueError, match="labels"):
        DirectionVectorModel.fit(np.zeros((3, 2)), ["happy"])
    with pytest.raises(ValueError, match="unknown labels"):
        DirectionVectorModel.fit(np.zeros((2, 2)), ["happy", "joyous"])
    with pytest.raises(ValueError, match="NaN"):
        DirectionVectorModel.fit(np.full((2, 2), np.nan), ["happy", "neutral"])


def test_steer_needs_an_explicit_neutral():
    model = DirectionVectorModel.fit(*planted()[:2])
    with pytest.raises(ValueError, match="pass the model's neutral centre"):
        model.steer(None, EmotionSpec({"sad": 1.0}, 1.0))
    other = model.neutral + 0.5
    moved = model.steer(other, EmotionSpec({"sad": 1.0}, 1.0))
    assert np.allclose(moved - other, model.steer(model.neutral, EmotionSpec({"sad": 1.0}, 1.0)) - model.neutral)


def test_steer_frames_samples_a_curve_in_seconds_and_repeats_a_spec():
    from conditioning import parse_emotion

    model = DirectionVectorModel.fit(*planted()[:2])
    times = np.array([0.0, 1.0, 2.0, 3.0])
    flat = model.steer_frames(parse_emotion("sad@0.5"), times, "speech")
    assert flat.shape == (4, model.dim) and np.allclose(flat, flat[0])
    curve = model.steer_frames(parse_emotion("sad@1 -> happy@1 over 3 s"), times, "speech")
    assert np.allclose(curve[0], model.steer(model.neutral, parse_emotion("sad@1")))
    assert np.allclose(curve[-1], model.steer(model.neutral, parse_emotion("happy@1")))
    with pytest.raises(ValueError, match="a face curve is timed in seconds"):
        model.steer_frames(parse_emotion("sad -> happy over 4 bars"), times, "face")
