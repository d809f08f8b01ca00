"""Portrait analysis: mesh on a real photo, EXIF orientation, several faces, bad images."""

import numpy as np
import pytest
from PIL import Image

from generators.face.portrait import analyse_portrait, read_image


def test_real_portrait_gives_a_square_frame_and_478_points(portrait):
    s = portrait.size
    assert portrait.image.shape == (s, s, 3) and s % 2 == 0
    assert portrait.landmarks.shape == (478, 2)
    face_h = np.ptp(portrait.landmarks[:, 1])
    assert abs(face_h - 128) < 0.12 * 128  # the asked face resolution, re-measured on the frame
    assert 0.25 * face_h < portrait.interocular < 0.6 * face_h


def test_exif_orientation_is_applied(astronaut, tmp_path):
    rotated = np.ascontiguousarray(np.rot90(astronaut, 1))  # stored sideways
    im = Image.fromarray(rotated)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    path = tmp_path / "sideways.jpg"
    im.save(path, exif=exif)
    upright, _ = read_image(path)
    assert upright.shape == astronaut.shape
    assert np.abs(upright.astype(float) - astronaut).mean() < 8  # the same picture (jpeg loss)
    p = analyse_portrait(path, face_resolution=128)
    eyes = p.eye_centres
    assert abs(eyes[0][1] - eyes[1][1]) < 0.2 * p.interocular  # eyes level: upright


def test_two_faces_use_the_largest(astronaut):
    small = np.asarray(Image.fromarray(astronaut).resize((256, 256)))
    canvas = np.full((512, 900, 3), 200, np.uint8)
    canvas[:, :512] = astronaut
    canvas[100:356, 600:856] = small
    p = analyse_portrait(canvas, face_resolution=128)
    assert any("largest" in n for n in p.notes)


def test_an_upright_photo_is_not_turned(portrait, astronaut):
    assert not any("turned" in n for n in portrait.notes)
    tilted = np.asarray(Image.fromarray(astronaut).rotate(25, fillcolor=(180, 180, 180)))
    assert not any("turned" in n for n in analyse_portrait(tilted, face_resolution=128).notes)


def test_bad_images(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        analyse_portrait(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        analyse_portrait(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match="could not read"):
        analyse_portrait(tmp_path / "text.png")


def test_no_face_and_too_small():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="no face"):
        analyse_portrait(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="too small"):
        analyse_portrait(np.zeros((40, 40, 3), np.uint8))


def test_sixteen_bit_and_float_images_keep_their_levels(astronaut, tmp_path):
    """A 16-bit grey PNG (scanned or raw-developed photos) and float arrays are scaled to 8 bits,
    not clipped to white; palette and CMYK files are converted."""
    grey = np.asarray(Image.fromarray(astronaut).convert("L"))
    path = tmp_path / "grey16.png"
    Image.fromarray(grey.astype(np.uint16) * 257).save(path)
    assert Image.open(path).mode.startswith("I")
    arr, _ = read_image(path)
    assert np.abs(arr[..., 0].astype(int) - grey).max() <= 1
    arr16, _ = read_image(grey.astype(np.uint16) * 257)
    assert np.abs(arr16[..., 0].astype(int) - grey).max() <= 1
    arrf, _ = read_image(astronaut / 255.0)
    assert np.abs(arrf.astype(int) - astronaut).max() <= 1
    for mode, name in (("P", "palette.gif"), ("CMYK", "cmyk.jpg")):
        Image.fromarray(astronaut).convert(mode).save(tmp_path / name)
        arr, _ = read_image(tmp_path / name)
        assert arr.shape == astronaut.shape and arr.dtype == np.uint8
        assert np.abs(arr.astype(float) - astronaut).mean() < 20
    analyse_portrait(path, face_resolution=128)  # the 16-bit photo's face is found


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_photo_on_its_side_or_upside_down_is_turned_upright(astronaut, k):
    """A photo stored sideways or upside down with no orientation tag: the face detector scores
    the face highest upright, and the working frame is turned so that it stands upright (the rig
    and the renderer expect eyes above the mouth; the mesh alone fits an upside-down face as if
    it were upright)."""
    p = analyse_portrait(np.ascontiguousarray(np.rot90(astronaut, k)), face_resolution=128)
    right, left = p.eye_centres
    assert left[0] - right[0] > 3 * abs(left[1] - right[1])  # eyes level, the right eye image-left
    assert p.landmarks[13, 1] > max(right[1], left[1])  # the mouth below the eyes
    assert any("turned upright" in n for n in p.notes)
