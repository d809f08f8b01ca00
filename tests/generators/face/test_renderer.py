"""Renderer details: lip edges as curves, and a smile's folds faded without flattening the skin."""

import cv2
import numpy as np

from generators.face.renderer import FOLD_FINE, Renderer, _through
from generators.face.rig import PROTOTYPES, Rig


def test_lip_curves_pass_through_every_mesh_point():
    p = np.array([[0.0, 0.0], [4.0, 3.0], [8.0, 4.0], [12.0, 3.0], [16.0, 0.0]])
    c = _through(p, per=4)
    assert len(c) == 1 + 4 * (len(p) - 1)
    np.testing.assert_allclose(c[::4], p, atol=1e-6)  # the middle's height is kept
    assert c[:, 1].max() <= 4.0 + 1e-6  # and not overshot on this arch
    steps = np.linalg.norm(np.diff(c, axis=0), axis=1)
    assert steps.max() < 2.0 * steps.mean()  # evenly sampled, no jumps


def test_fading_the_folds_keeps_the_skins_texture(astronaut):
    """Where a smiling portrait's folds are faded, most of the fine texture (pores, freckles)
    stays: only the shading at the folds' scale is taken away (what is lost is the creases' own
    edges), and the band's edges leave no step. (Taking away all detail finer than the folds, as
    before, kept 0.58 of it and left steps of 15 grey levels per pixel.)"""
    from generators.face.portrait import analyse_portrait

    portrait = analyse_portrait(astronaut, face_resolution=256)
    rig = Rig(portrait)
    r = Renderer(portrait, rig)
    assert r.fold_detail is not None
    d = rig.displace({})
    full, faded = (r.render(d, folds=f).astype(np.float32).mean(-1) for f in (1.0, 0.0))
    band = np.abs(r.fold_detail).max(-1) > 0.5 * np.abs(r.fold_detail).max()
    assert band.sum() > 50

    def fine(img):
        return img - cv2.GaussianBlur(img, (0, 0), max(0.5, FOLD_FINE * rig.iod))

    ratio = fine(faded)[band].std() / fine(full)[band].std()
    assert ratio > 0.7  # 0.77
    change = np.abs(full - faded)
    assert change[band].mean() > 0.5  # the folds' shading did change
    # no step at the band's edge: the change is smooth (its own gradient stays small)
    gy, gx = np.gradient(cv2.GaussianBlur(change, (0, 0), 0.7))
    assert np.hypot(gx, gy).max() < 11.0  # 8.8


def test_a_raised_lid_reveals_the_eyeball_instead_of_stretching_the_iris(portrait):
    """With the upper lids raised (AU5 with the brows, as in surprise), the upper half of each
    opening shows the white of the eye under the lid's margin, where a plain warp stretched the
    iris and lashes down into it; at rest the upper half of each eye is the portrait's own
    pixels."""
    rig = Rig(portrait)
    r = Renderer(portrait, rig)
    lm = portrait.landmarks
    d0, d1 = rig.displace({}), rig.displace({"AU5": 1.0, "AU1": 1.0, "AU2": 1.0})
    rest, raised = (r.render(d).astype(np.float32) for d in (d0, d1))
    for iris, (up, lo) in ((468, (159, 145)), (473, (386, 374))):
        x = int(round(lm[iris, 0]))
        top, bottom = int(round((lm[up] + d1[up])[1])), int(round((lm[lo] + d1[lo])[1]))
        column = raised[top : bottom + 1, x - 1 : x + 2].mean((1, 2))
        upper_half = column[: max(2, (bottom - top) // 2)]
        assert upper_half.max() > column.min() + 120  # white above the iris (155; a warp: 33-73)
        # (the lower lids move a little as the smile's cheeks are let down; the upper half stays)
        y0, y1 = int(lm[up, 1]) - 3, int(lm[iris, 1])
        box = (slice(y0, y1), slice(x - 8, x + 9))
        assert np.abs(rest[box] - portrait.image[box].astype(np.float32)).max() < 8


def test_a_raised_lid_takes_its_shadow_along(astronaut):
    """Surprise raises the upper lids: the white of the eye beside the iris grows lighter from
    the new lid down, with no dark line left where the lid's margin and shadow were on the
    portrait (a painted band that ended above that line left one, 33-60 grey levels deep)."""
    from generators.face.portrait import analyse_portrait

    portrait = analyse_portrait(astronaut, face_resolution=256)
    rig = Rig(portrait)
    lm = portrait.landmarks
    d = rig.displace(PROTOTYPES["surprised"])
    frame = Renderer(portrait, rig).render(d).astype(np.float32).mean(-1)
    drops = []
    for iris, up in ((468, 159), (473, 386)):
        radius = float(np.linalg.norm(lm[iris + 1 : iris + 5] - lm[iris], axis=1).mean())
        top = int(np.ceil((lm[up] + d[up])[1])) + 1
        for offset in (-1.5, -1.3, 1.3, 1.5):  # columns through the white, beside the iris
            x = int(round(lm[iris, 0] + offset * radius))
            column = frame[top : int(round(lm[iris, 1])), x]
            assert len(column) >= 6
            drops.append(float((np.maximum.accumulate(column) - column).max()))  # darkening below a lighter row
    assert max(drops) < 30 and np.mean(drops) < 18, drops


def test_teeth_in_a_narrow_opening_are_in_the_lips_shadow(portrait):
    """The painted teeth are lit in proportion to the opening: in a slit (about 4 mm) the
    brightest of the opening stays well below a wide-open mouth's (both were the same white,
    a bright line along every slightly parted mouth)."""
    from generators.face.rig import INNER_LIP_RING

    rig = Rig(portrait)
    r = Renderer(portrait, rig)
    lm = portrait.landmarks
    bright = []
    for params in ({"AU25": 0.3, "AU26": 0.15}, {"AU25": 0.6, "AU26": 0.8}):
        d = rig.displace(params)
        frame = r.render(d).astype(np.float32).mean(-1)
        inside = np.zeros(frame.shape, np.uint8)
        cv2.fillPoly(inside, [np.round((lm + d)[list(INNER_LIP_RING)]).astype(np.int32)], 1)
        bright.append(float(np.percentile(frame[inside > 0], 95)))
    slit, wide = bright
    assert wide > 190 and slit < wide - 30, bright  # 156 and 220 (the same white: 221, 220)


def test_no_pixel_is_fetched_from_farther_than_the_mesh_moved(portrait):
    """A piecewise-affine warp takes each pixel from inside its triangle's place on the portrait,
    so no pixel comes from farther away than the farthest moving mesh point. Where the mesh folds
    (sadness's creases beside a frowning mouth, anger's lowered brows over the eye corners), the
    rasteriser hands pixels just outside a thin triangle to it; extrapolating that triangle's
    map fetched them from far off (dotted dark lines on the cheek and the eye's corners: 34.6 px
    beyond the reach here). A pixel on an edge may keep its neighbour's map: up to 2 px (1.3)."""
    rig = Rig(portrait)
    r = Renderer(portrait, rig)
    worst = 0.0
    for params in (PROTOTYPES["sad"] | {"AU26": 0.5, "AU25": 0.4}, PROTOTYPES["angry"] | {"AU26": 0.6},
                   {"AU1": 1.2, "AU4": 1.2, "AU15": 1.2, "AU17": 1.2, "AU26": 1.0}):
        moved = r.points + r.vertex_motion(rig.displace(params), (0.0, 0.0, 0.0))
        reach = np.abs(moved - r.points).max()
        fetched = np.abs(r.inverse_map(moved) - r.grid).max()
        worst = max(worst, fetched - reach)
    assert worst <= 2.0, worst


def test_the_opening_is_dark_toward_its_corners(astronaut):
    """Teeth show in the middle of an open mouth and turn away into the dark toward the corners;
    the teeth and tongue bands end where they thin out (a band of no thickness drew a light
    one-pixel line along the whole edge of the opening: 128-154 grey levels at the sides here,
    against a cavity of about 58)."""
    from generators.face.portrait import analyse_portrait

    portrait = analyse_portrait(astronaut, face_resolution=256)
    from generators.face.rig import INNER_LIP_RING

    rig = Rig(portrait)
    r = Renderer(portrait, rig)
    ring = list(INNER_LIP_RING)
    for params in (PROTOTYPES["surprised"] | {"AU26": 1.0}, PROTOTYPES["sad"] | {"AU26": 0.5, "AU25": 0.5}):
        d = rig.displace(params)
        grey = r.render(d).astype(np.float32).mean(-1)
        pts = portrait.landmarks + d
        inside = np.zeros(grey.shape, np.uint8)
        cv2.fillPoly(inside, [np.round(pts[ring]).astype(np.int32)], 1)
        inside = cv2.erode(inside, np.ones((3, 3), np.uint8)) > 0  # clear of the lips' edge
        c0, c1 = pts[78], pts[308]
        axis, mid, half = (c1 - c0) / np.linalg.norm(c1 - c0), (c0 + c1) / 2, np.linalg.norm(c1 - c0) / 2
        yy, xx = np.mgrid[: grey.shape[0], : grey.shape[1]]
        along = np.abs((xx - mid[0]) * axis[0] + (yy - mid[1]) * axis[1]) / half
        sides, middle = inside & (along > 0.75), inside & (along < 0.3)
        assert sides.sum() > 20 and middle.any()
        assert grey[middle].max() > 150  # the front teeth are there
        assert grey[sides].max() < 1.5 * float(np.mean(r.cavity)), grey[sides].max()


def test_a_closed_blink_shows_no_eyeball_along_the_lids(astronaut):
    """Where the lids have met, the eye's opening is gone: its anti-aliased outline used to let a
    line of the eyeball (white) show along the closed lids (14 light pixels along them here)."""
    from generators.face.portrait import analyse_portrait

    portrait = analyse_portrait(astronaut, face_resolution=256)
    rig = Rig(portrait)
    r = Renderer(portrait, rig)
    light = 0
    for params in ({}, PROTOTYPES["surprised"], PROTOTYPES["sad"]):
        d = rig.displace(params, blink=1.0)
        grey = r.render(d).astype(np.float32).mean(-1)
        pts = portrait.landmarks + d
        skin = np.median(grey[int(pts[1, 1]) - 3 : int(pts[1, 1]) + 3, int(pts[1, 0]) - 3 : int(pts[1, 0]) + 3])
        for lid in ((33, 246, 161, 160, 159, 158, 157, 173, 133), (263, 466, 388, 387, 386, 385, 384, 398, 362)):
            p = pts[list(lid)]
            p = p[np.argsort(p[:, 0])]
            for x in range(int(p[0, 0]) + 2, int(p[-1, 0]) - 1):  # the corners' own pixels aside
                y = int(round(np.interp(x, p[:, 0], p[:, 1])))
                light += int((grey[y - 2 : y + 4, x] > max(skin, 150) + 25).sum())
    assert light <= 2, light
