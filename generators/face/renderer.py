"""The renderer: warps the portrait by the moved mesh, every frame, and paints what a warp cannot.

Warp. The mesh (without the iris points), two rings around the face and the frame's border are
triangulated once on the portrait (Delaunay). Each frame is an exact piecewise-affine warp: the
triangles are rasterised at their moved places and every pixel is mapped back to the portrait by
its barycentric coordinates, kept near its triangle (``SLIVER_REACH``). The rings carry the head's motion out to the hair and fade it to
zero, and the border stays put, so the background never moves.

Eyes. The eyeball does not stretch with the lids: inside each moved eye opening the portrait's
eye is shown moved only with the head (the iris stays round; gaze shifts it inside the opening).
Where an upper lid rises above its place on the portrait, the part of the eyeball it covered is
painted: the white of the eye and the iris in the portrait's own colours, shaded toward the lid,
with the lid's margin of lashes along it.

Mouth interior. Where the inner lips part further than on the portrait, the opening is painted,
its outline curves through the mesh's lip points: a dark cavity in the lips' own hue, the upper
front teeth under the upper lip (and the lower ones when the mouth opens wide), turning away into
the dark toward the corners, the tongue low in the mouth, shaded darker toward the corners, with
soft edges. Teeth are scaled to the
face's brightness so that they never glow. Where the rig closes a portrait's parted lips, the
line where they meet is drawn.

Wrinkle maps. A smiling portrait's fold shading fades as a frame smiles less, and the brow
lowerer darkens furrows between the brows.

Brow shadow. A warp moves skin but not light: a brow drawn down over the eye (AU4) brings the
brow ridge's overhang with it, and the skin of the upper lid under it falls into shadow (the
hooded, shaded eyes of a frown). Where a frame's brow has come down toward the eye's corners
by more than ``BROW_SHADOW_FROM`` of its height on the portrait, the skin between the brow's
lower edge and the upper lid is darkened, fully by ``BROW_SHADOW`` once it has come down by
``BROW_SHADOW_FULL``, in the skin's own hue (blue darkens most, red least: light that has
scattered under the skin comes back reddened). It is measured on the expression alone, the
brow's own move down (``brow_shadow_level``), so blinks, gaze and head motion leave it as it is;
brows that rise (surprise, fear, the inner brows of sadness) cast none.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from generators.face.portrait import LEFT_EYE, RIGHT_EYE, Portrait
from generators.face.rig import (
    BROW_LOWER_EDGE,
    GAZE_TRAVEL,
    INNER_LIP_PAIRS,
    INNER_LIP_RING,
    IRIS,
    UPPER_LID_LINE,
    Rig,
)

UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
#: The smile folds' band (width, and the feathering of its edges) and the scales of shading taken
#: as fold (a band-pass between two Gaussian sigmas: finer detail, the skin's own texture, stays), IOD.
FOLD_WIDTH, FOLD_FEATHER, FOLD_FINE, FOLD_SCALE = 0.16, 0.06, 0.015, 0.10
#: The brow lowerer's furrows: line width (IOD) and how much they darken the skin at AU4 = 1.
FURROW_WIDTH, FURROW_DEPTH = 0.014, 0.22
#: The upper lid's margin and lashes below the mesh's lid line, which a raised lid takes with it, IOD.
LID_MARGIN = 0.03
UPPER_LID_RIGHT = (173, 157, 158, 159, 160, 161, 246)
UPPER_LID_LEFT = (398, 384, 385, 386, 387, 388, 466)
#: The band below the upper lid's margin that its shadow darkens on the portrait, IOD: a raised
#: lid takes its shadow with it, so what is painted of the eyeball covers this band too.
LID_SHADOW = 0.025
#: Teeth in the mouth's opening: their brightness in a closing slit (share of fully lit), and
#: the opening (IOD, about 7 mm) from which they are fully lit.
TEETH_DARK, TEETH_LIT = 0.35, 0.11
#: How far outside its triangle (in barycentric units) a pixel may be mapped by that triangle's
#: affine map: a pixel on a shared edge that the rasteriser gave to the neighbour keeps the
#: neighbour's (continuous) map; one farther out, beside a sliver, is taken back to this reach.
SLIVER_REACH = 0.25
#: The opening's edge is soft over this width (Gaussian sigma, IOD; about 0.3 mm): the lips' wet
#: inner edge rolls into the mouth rather than ending on a cut line.
MOUTH_EDGE = 0.005
#: The teeth follow the dental arch back into the mouth's shadow: lit by 1 - TEETH_TURN x along^2
#: (along: 0 in the middle, 1 at the corners).
TEETH_TURN = 0.6
#: The brow's shadow over the upper lid: how much of the brow-to-eye height it must lose before
#: a shadow shows, the loss at which the shadow is full, the darkening then (share of the light),
#: its feathering (Gaussian sigma, IOD), and per RGB channel the exponent of the darkening.
BROW_SHADOW_FROM, BROW_SHADOW_FULL, BROW_SHADOW, BROW_SHADOW_BLUR = 0.1, 0.5, 0.4, 0.04
SHADOW_TINT = (0.8, 1.0, 1.15)
#: The brows' lower edges and the upper lids corner to corner (the shadow lies between them),
#: and each eye's corners (what the brow's height is measured from).
BROW_LOWER_RIGHT, BROW_LOWER_LEFT = BROW_LOWER_EDGE[:5], BROW_LOWER_EDGE[5:]
LID_LINE_RIGHT, LID_LINE_LEFT = UPPER_LID_LINE[:9], UPPER_LID_LINE[9:]
#: The lower lid's margin (thinner, with shorter lashes), IOD.
LOWER_LID_MARGIN = 0.012
LOWER_LID_RIGHT = (155, 154, 153, 145, 144, 163, 7)
LOWER_LID_LEFT = (382, 381, 380, 374, 373, 390, 249)
#: The width of the line drawn where filled-in lips meet, IOD (about 1 mm).
SEAM_WIDTH = 0.018
LIPS_ALL = (0, 37, 39, 40, 185, 61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267)
RING_FACTORS = ((1.22, 0.75), (1.55, 0.0))  # (radius / face radius, share of the head motion)
RING_FOLLOW = 0.6  # share of the nearest face point's own (expression) motion the inner ring takes


class Renderer:
    """Frames of one portrait: ``render(mesh_displacement, head, gaze)`` -> (S, S, 3) uint8."""

    def __init__(self, portrait: Portrait, rig: Rig | None = None):
        self.portrait = portrait
        self.rig = rig or Rig(portrait)
        img = portrait.image
        self.image = img
        s = img.shape[0]
        self.size = s
        lm = portrait.landmarks
        self.mesh_idx = np.array([i for i in range(len(lm)) if i not in IRIS])
        centre = lm[self.mesh_idx].mean(0)
        radius = float(np.percentile(np.linalg.norm(lm[self.mesh_idx] - centre, axis=1), 98))
        self.centre, self.radius = centre, radius
        rings, shares = [], []
        for k, share in RING_FACTORS:
            n = 40
            a = np.linspace(0, 2 * np.pi, n, endpoint=False)
            rings.append(centre + k * radius * np.c_[np.cos(a), np.sin(a)])
            shares.append(np.full(n, share))
        e = np.linspace(0, s - 1, 12)
        border = np.unique(np.r_[np.c_[e, np.zeros(12)], np.c_[e, np.full(12, s - 1)],
                                 np.c_[np.zeros(12), e], np.c_[np.full(12, s - 1), e]], axis=0)
        self.ring_pts = np.concatenate(rings)
        self.ring_share = np.concatenate(shares)
        # the inner ring follows the face's own motion next to it in part (the skin below a
        # dropping chin stretches instead of folding under it)
        mesh = lm[self.mesh_idx]
        self.ring_near = np.argmin(((self.ring_pts[:, None] - mesh[None]) ** 2).sum(-1), 1)
        self.ring_follow = np.where(np.concatenate(shares) > 0, RING_FOLLOW, 0.0)
        # where the portrait's lips are apart, points halfway across the opening move with the
        # upper lip: what shows there (upper teeth) stays attached to it instead of stretching
        gaps = np.array([np.linalg.norm(lm[lo] - lm[up]) for up, lo in INNER_LIP_PAIRS])
        self.teeth_pairs = [pr for pr, g in zip(INNER_LIP_PAIRS, gaps) if g > 2.0]
        if self.teeth_pairs and self.rig.rest_field.any():
            # the rig closes the portrait's open lips: what showed between them (teeth, the dark
            # of the mouth) is filled from the lips around it, and openings are painted, as for a
            # portrait with a closed mouth
            mask = np.zeros(img.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.round(lm[list(INNER_LIP_RING)]).astype(np.int32)], 255)
            mask = cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=2)
            self.image = img = cv2.inpaint(img, mask, max(3.0, 0.05 * self.rig.iod), cv2.INPAINT_TELEA)
            self.teeth_pairs = []
        # a closed mouth shows the line where the lips meet; a filled-in mouth needs it drawn
        self.seam = not self.teeth_pairs and (gaps.max() > 2.0 if len(gaps) else False)
        self.mid_pts = np.array([(lm[up] + lm[lo]) / 2 for up, lo in self.teeth_pairs]).reshape(-1, 2)
        pts = np.concatenate([lm[self.mesh_idx], self.ring_pts, self.mid_pts, border])
        pts[:, 0] = np.clip(pts[:, 0], -s, 2 * s)
        pts[:, 1] = np.clip(pts[:, 1], -s, 2 * s)
        self.n_mesh, self.n_ring = len(self.mesh_idx), len(self.ring_pts)
        self.points = pts  # (P, 2) triangulation vertices on the portrait
        self.simplices = Delaunay(pts).simplices  # (T, 3)
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
        self.grid = np.stack([xx, yy], -1)  # (S, S, 2)
        self._eyes = self._eye_masks()
        self._eye_colours = self._eye_fill_colours()
        self._mouth_colours()
        self.rest_disp = self.rig.displace({})  # the relaxed portrait (the rig's rest), pixels
        self.rest_gap = self._gap(self.portrait.landmarks + self.rest_disp)
        self.fold_detail = self._fold_detail()
        self.furrows = self._furrows()
        # where the shading maps are not zero (per-frame work is limited to it)
        any_map = np.abs(self.furrows) > 1e-4
        if self.fold_detail is not None:
            any_map |= np.abs(self.fold_detail).max(-1) > 1e-3
        ys, xs = np.nonzero(any_map)
        self.shading_box = (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) if len(ys) else (0, 1, 0, 1)

    def _fold_detail(self) -> np.ndarray | None:
        """The fine shading of a smiling portrait's folds (nasolabial lines and the creases at
        the mouth corners): the image's shading between a fine and a coarse blur (the creases and
        the bulges beside them, not the skin's pores and freckles), inside feathered bands from each
        nose wing down past the mouth corner. Frames that smile less than the portrait fade it (an animated
        wrinkle map): a warp moves the folds but cannot unmake them. None when the portrait does
        not smile."""
        if self.rig.rest_smile <= 0 or not self.rig.rest_field.any():
            return None
        lm, iod = self.portrait.landmarks, self.rig.iod
        down = self.rig.axes[1]
        mask = np.zeros((self.size, self.size), np.float32)
        for wing, corner in ((129, 61), (358, 291)):
            out = lm[corner] - lm[(13 if corner == 61 else 13)]
            out = out / (np.linalg.norm(out) + 1e-9)
            path = np.array([lm[wing], lm[corner] + 0.04 * iod * out,
                             lm[corner] + 0.08 * iod * out + 0.16 * iod * down])
            cv2.polylines(mask, [np.round(path * 4).astype(np.int32)], False, 1.0,
                          max(1, int(FOLD_WIDTH * iod)), cv2.LINE_AA, 2)
        mask = cv2.GaussianBlur(mask, (0, 0), FOLD_FEATHER * iod)
        img = self.image.astype(np.float32)
        detail = (cv2.GaussianBlur(img, (0, 0), max(0.5, FOLD_FINE * iod))
                  - cv2.GaussianBlur(img, (0, 0), FOLD_SCALE * iod))
        return detail * mask[..., None]

    def _eye_masks(self) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Per eye: iris centre, a soft mask of the eye opening, iris radius (pixels)."""
        lm, out = self.portrait.landmarks, []
        for eye, iris in ((RIGHT_EYE, 468), (LEFT_EYE, 473)):
            mask = np.zeros((self.size, self.size), np.uint8)
            cv2.fillPoly(mask, [np.round(lm[list(eye)][_ring_order(lm[list(eye)])]).astype(np.int32)], 255,
                         cv2.LINE_AA)
            r = float(np.linalg.norm(lm[iris + 1 : iris + 5] - lm[iris], axis=1).mean())
            out.append((lm[iris].copy(), cv2.GaussianBlur(mask, (0, 0), 1.0).astype(np.float32) / 255, r))
        return out

    def _eye_fill_colours(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per eye: the iris and the white of the eye as the portrait shows them (mean colours of
        the visible iris, and of the brighter half of the visible white), for what a wider-open
        eye reveals."""
        img, out = self.image.astype(np.float32), []
        for centre, mask, r in self._eyes:
            dist = np.linalg.norm(self.grid - centre, axis=-1)
            inside = mask > 0.7
            iris = img[inside & (dist < 0.8 * r)]
            white = img[inside & (dist > 1.15 * r)]
            iris_c = iris.mean(0) if len(iris) else np.array([90.0, 70, 60])
            if len(white):
                lum = white.mean(1)
                white_c = white[lum >= np.percentile(lum, 85)].mean(0)
            else:
                white_c = np.array([215.0, 205, 200])
            out.append((iris_c, white_c))
        return out

    def _rigid_eyes(self, src: np.ndarray, pts: np.ndarray, disp: np.ndarray,
                    gaze: tuple[float, float] = (0.0, 0.0)) -> list[tuple]:
        """Inside each moved eye opening the eyeball does not stretch with the lids: the
        opening shows the portrait's eye moved only as the head moves it (the iris stays round),
        and each lid's margin (lashes) moves with its lid; where an upper lid opens wider than on
        the portrait, the part of the eyeball that was behind it is revealed, painted from the
        portrait's own eye (the iris mirrored from its visible half, the white as
        ``_white_profile`` reads it), shaded toward the lid. Changes ``src`` in place; returns
        what to paint after the warp."""
        paint = []
        for (centre, _mask, r), (iris_c, white_c), eye, iris in zip(
                self._eyes, self._eye_colours, (RIGHT_EYE, LEFT_EYE), (468, 473)):
            poly = pts[list(eye)]
            x0, y0 = np.floor(poly.min(0)).astype(int) - 2
            x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.size), min(y1, self.size)
            if x1 - x0 < 3 or y1 - y0 < 3:
                continue
            m = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(m, [np.round((poly - [x0, y0]) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
            opening = m.astype(np.float32) / 255  # the moved opening, anti-aliased
            rigid = (self.grid[y0:y1, x0:x1] - disp[iris]).astype(np.float32)  # the eyeball moves with the head
            # each lid takes its margin (lashes) with it: the band just inside the moved lid
            # shows the portrait's margin band, moved as the lid moved; under a raised upper
            # lid's band, as high as the lid rose, is the eyeball the lid covered (painted)
            ex, down = self.rig.axes
            rel = self.grid[y0:y1, x0:x1] - self.rig.origin
            u, v = rel @ ex, rel @ down
            margin = LID_MARGIN * self.rig.iod
            axes = np.stack([ex, down]).T
            lids = {}
            for name, idx in (("upper", UPPER_LID_RIGHT if eye is RIGHT_EYE else UPPER_LID_LEFT),
                              ("lower", LOWER_LID_RIGHT if eye is RIGHT_EYE else LOWER_LID_LEFT)):
                was = (self.portrait.landmarks[list(idx)] + disp[iris] - self.rig.origin) @ axes
                now = (pts[list(idx)] - self.rig.origin) @ axes
                ow, on_ = np.argsort(was[:, 0]), np.argsort(now[:, 0])
                lo_u, hi_u = was[:, 0].min(), was[:, 0].max()
                # (most in the middle of the lid, none at the eye's corners)
                taper = np.clip(np.minimum(u - lo_u, hi_u - u) / (0.25 * (hi_u - lo_u) + 1e-6), 0.0, 1.0)
                v_was = np.interp(u, was[ow, 0], was[ow, 1])
                v_now = np.interp(u, now[on_, 0], now[on_, 1])
                lids[name] = (v_now, (v_now - v_was) * taper)  # the lid line now, its move (+ down)
            # a nearly closed eye has room for little of either margin: the upper lashes first
            height = np.maximum(lids["lower"][0] - lids["upper"][0], 0.0)
            widths = {"upper": np.minimum(margin, 0.6 * height),
                      "lower": np.minimum(LOWER_LID_MARGIN * self.rig.iod, 0.4 * height)}
            # where the lids have met (a blink) there is no opening: the anti-aliased outline of
            # a closed one would show a line of the eyeball along the lids
            opening = opening * np.clip(height - 0.5, 0.0, 1.0)
            w = opening[..., None]
            src[y0:y1, x0:x1] = src[y0:y1, x0:x1] * (1 - w) + rigid * w
            for name, (v_now, moved) in lids.items():
                if name == "upper":
                    band = np.clip(v_now + widths[name] - v + 0.5, 0.0, 1.0)
                else:
                    band = np.clip(v - (v_now - widths[name]) + 0.5, 0.0, 1.0)
                band = band * opening * np.clip(np.abs(moved) / 0.5, 0.0, 1.0)
                src[y0:y1, x0:x1] -= band[..., None] * (moved[..., None] * down).astype(np.float32)
            v_now, moved = lids["upper"]
            lift = np.maximum(-moved, 0.0)
            # the painted eyeball reaches down over the shadow the lid cast where it was (that
            # shadow rose with the lid), fading into the portrait's eye across it
            shadow = LID_SHADOW * self.rig.iod
            bottom = v_now + margin + lift
            revealed = (np.clip(v - (v_now + margin) + 0.5, 0.0, 1.0)
                        * np.clip((bottom + shadow - v) / shadow, 0.0, 1.0)
                        * opening * np.clip((lift - 1.0) / 1.5, 0.0, 1.0))
            if revealed.max() < 0.05:
                continue
            # what the lid uncovers is the same eyeball, in the portrait's own colours: the
            # iris (a disc) mirrored from its visible lower half about its centre line, where
            # that point is inside the portrait's opening; the white of the eye as the top of
            # its visible part shows it, column by column (just below the lid's old margin),
            # interpolated across the columns where the iris is the top; the eye's mean
            # colours where neither is seen. The point moves with the gaze as the eye does.
            ball = rigid - _gaze_shift(self.grid[y0:y1, x0:x1], centre, _mask[y0:y1, x0:x1], r, gaze)
            dv = ((ball - centre) @ down)[..., None]
            dist = np.linalg.norm(ball - centre, axis=-1)
            in_iris = np.clip((r - dist) / 1.0 + 0.5, 0.0, 1.0)[..., None]
            mirror = (ball - 2.0 * np.minimum(dv, 0.0) * down).astype(np.float32)
            seen = cv2.remap(_mask, mirror[..., 0], mirror[..., 1], cv2.INTER_LINEAR)[..., None]
            seen = np.clip((seen - 0.5) / 0.4, 0.0, 1.0)
            iris_tex = cv2.remap(self.image, mirror[..., 0], mirror[..., 1], cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            iris_col = iris_tex * seen + iris_c * (1 - seen)
            white_col = self._white_profile(u, v_now - moved + margin + shadow, centre, _mask, r, white_c,
                                            -disp[iris])
            flat = white_col * (1 - in_iris) + iris_col * in_iris
            # the lid's shadow: darker toward the lid
            depth = np.clip((v - v_now - margin) / np.maximum(lift + shadow, 1.0), 0.0, 1.0)
            shade = (0.8 + 0.2 * depth)[..., None]
            colour = flat * shade
            paint.append(((y0, y1, x0, x1), revealed[..., None], colour))
        return paint

    def _white_profile(self, u, old_margin, centre, mask, r, white_c, shift) -> np.ndarray:
        """(h, w, 3) colour of the white of the eye for each column of a box (``u``: the box's
        face coordinate along the eyes, pixels): the portrait's pixel 1.5 px below the upper
        lid's old margin (``old_margin``, per pixel), where that pixel is white of the eye
        (inside the opening, outside the iris); columns without one take it from their
        neighbours. ``shift``: from the frame's face coordinates to the portrait's pixels (the
        head's move taken back)."""
        ex, down = self.rig.axes
        col_u = u[0]  # u varies along the box's columns (the face is near upright)
        pts = (self.rig.origin + shift + col_u[:, None] * ex
               + (old_margin[0] + 1.5)[:, None] * down).astype(np.float32)  # (w, 2)
        img = self.image.astype(np.float32)
        xy = np.round(pts).astype(int)
        ok = (xy[:, 0] >= 0) & (xy[:, 0] < self.size) & (xy[:, 1] >= 0) & (xy[:, 1] < self.size)
        xy = np.clip(xy, 0, self.size - 1)
        ok &= mask[xy[:, 1], xy[:, 0]] > 0.7
        ok &= np.linalg.norm(pts - centre, axis=1) > 1.15 * r
        if ok.sum() < 2:
            return np.broadcast_to(white_c, u.shape + (3,)).astype(np.float32)
        cols = img[xy[ok, 1], xy[ok, 0]]
        # no darker than the eye's white allows (a lash or a shadow is not the white)
        cols = np.maximum(cols, 0.7 * white_c)
        prof = np.stack([np.interp(col_u, col_u[ok], cols[:, k]) for k in range(3)], axis=1)  # (w, 3)
        # smoothed along the eye (single pixels of the portrait would streak the white)
        sigma = max(1.0, 0.02 * self.rig.iod)
        prof = cv2.GaussianBlur(prof[:, None, :], (1, 0), sigmaX=0.1, sigmaY=sigma,
                                borderType=cv2.BORDER_REPLICATE)[:, 0, :]
        return np.broadcast_to(prof[None], u.shape + (3,)).astype(np.float32)

    def _mouth_colours(self) -> None:
        lm, img = self.portrait.landmarks, self.image.astype(np.float32)
        mask = np.zeros(img.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(lm[list(LIPS_ALL)]).astype(np.int32)], 1)
        lips = img[mask > 0].mean(0) if mask.any() else np.array([150.0, 80, 80])
        face = img[cv2.fillPoly(np.zeros_like(mask), [cv2.convexHull(
            np.round(lm[self.mesh_idx]).astype(np.int32))], 1) > 0]
        lum = float(face.mean()) if len(face) else 150.0
        # a grey (or nearly grey) photo gets grey teeth and a grey mouth: colour only as much as
        # the face itself has (mean distance from its own grey, 25 = a typical colour photo)
        chroma = float(np.abs(face - face.mean(1, keepdims=True)).mean()) if len(face) else 25.0
        tint = float(np.clip(chroma / 25.0, 0.0, 1.0))

        def tinted(c: np.ndarray) -> np.ndarray:
            return c.mean() + (c - c.mean()) * tint

        self.cavity = tinted(lips * 0.32 + np.array([10.0, 0.0, 2.0]))
        self.tongue = tinted(lips * 0.5)
        self.teeth = tinted(np.array([236.0, 230.0, 218.0]) * float(np.clip(lum / 165.0, 0.55, 1.05)))

    def _gap(self, pts: np.ndarray) -> float:
        return float(np.linalg.norm(pts[14] - pts[13]))

    # -- one frame ------------------------------------------------------------------------------
    def _furrows(self) -> np.ndarray:
        """(S, S) shading of the vertical furrows that the brow lowerer (AU4, corrugator) draws
        between the brows, on the portrait at full depth: two slightly converging dark lines
        from the inner brow ends down toward the nose root, each with a faint lit edge beside
        it. Frames darken by this map times their AU4 (drawn on the portrait, so the furrows move
        with the skin)."""
        lm, iod = self.portrait.landmarks, self.rig.iod
        ex, down = self.rig.axes[0], self.rig.axes[1]
        top = (lm[107] + lm[336]) / 2 - 0.03 * iod * down
        dark = np.zeros((self.size, self.size), np.float32)
        lit = np.zeros_like(dark)
        width = max(1, int(round(FURROW_WIDTH * iod)))
        for side in (-1.0, 1.0):
            a = top + side * 0.055 * iod * ex
            b = top + side * 0.035 * iod * ex + 0.16 * iod * down
            for layer, shift in ((dark, 0.0), (lit, 0.02 * iod)):
                p = np.round(np.array([a, b]) + side * shift * ex).astype(np.int32) * 4
                cv2.line(layer, tuple(p[0]), tuple(p[1]), 1.0, width, cv2.LINE_AA, 2)
        sigma = max(0.6, 0.008 * iod)
        dark = cv2.GaussianBlur(dark, (0, 0), sigma)
        lit = cv2.GaussianBlur(lit, (0, 0), 1.5 * sigma)
        return FURROW_DEPTH * (dark - 0.35 * lit)

    def render(self, disp: np.ndarray, head: tuple[float, float, float] = (0.0, 0.0, 0.0),
               gaze: tuple[float, float] = (0.0, 0.0), folds: float = 1.0,
               furrows: float = 0.0, shadow: float | tuple[float, float] = 0.0) -> np.ndarray:
        """One frame: the mesh moved by ``disp`` (478, 2) pixels, the head pose, the gaze, how
        much of a smiling portrait's folds shows (``Rig.fold_level``), how deep the brow
        lowerer's furrows are (its AU4) and the brows' shadow over the lids (per eye or both,
        ``brow_shadow_level``)."""
        moved_all = self.points + self.vertex_motion(disp, head)  # (P, 2)
        src = self.inverse_map(moved_all)
        eye_paint = self._rigid_eyes(src, self.portrait.landmarks + disp, disp, gaze)
        if gaze[0] or gaze[1]:
            for centre, mask, r in self._eyes:
                src -= _gaze_shift(self.grid, centre, mask, r, gaze)
        image = self.image
        fade = self.fold_detail is not None and folds < 1.0
        if fade or furrows > 0.01:
            y0, y1, x0, x1 = self.shading_box
            img = image[y0:y1, x0:x1].astype(np.float32)
            if fade:
                img -= (1.0 - folds) * self.fold_detail[y0:y1, x0:x1]
            if furrows > 0.01:
                img *= (1.0 - float(np.clip(furrows, 0.0, 1.2)) * self.furrows[y0:y1, x0:x1])[..., None]
            image = image.copy()
            image[y0:y1, x0:x1] = np.clip(img, 0, 255).astype(np.uint8)
        frame = cv2.remap(image, src[..., 0], src[..., 1], cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        for (y0, y1, x0, x1), alpha, colour in eye_paint:
            region = frame[y0:y1, x0:x1].astype(np.float32)
            frame[y0:y1, x0:x1] = np.clip(region * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8)
        frame = self._brow_shadow(frame, self.portrait.landmarks + disp, (shadow, shadow) if np.isscalar(shadow)
                                  else tuple(shadow))
        return self._mouth(frame, self.portrait.landmarks + disp, moved_all)

    def brow_shadow_level(self, expression: np.ndarray) -> tuple[float, float]:
        """Per eye (right, left): how deep the brow's shadow is for an expression's mesh
        displacement (pixels, ``Rig.displace(params)`` without blink, gaze or head), 0 .. 1: how
        far the brow's lower edge has come down from the relaxed portrait, over its height above
        the eye's corners, ramped from ``BROW_SHADOW_FROM`` to ``BROW_SHADOW_FULL``."""
        lm, down, out = self.portrait.landmarks, self.rig.axes[1], []
        for brow, lid in ((BROW_LOWER_RIGHT, LID_LINE_RIGHT), (BROW_LOWER_LEFT, LID_LINE_LEFT)):
            height = float((lm[[lid[0], lid[-1]]].mean(0) - lm[list(brow)].mean(0)) @ down)
            drop = float((expression - self.rest_disp)[list(brow)].mean(0) @ down) / max(height, 1e-6)
            out.append(float(np.clip((drop - BROW_SHADOW_FROM) / (BROW_SHADOW_FULL - BROW_SHADOW_FROM), 0, 1)))
        return out[0], out[1]

    def _brow_shadow(self, frame: np.ndarray, pts: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
        """The skin between each lowered brow and its upper lid (moved mesh ``pts``) shaded by
        ``levels`` (right, left eye; ``brow_shadow_level``), in place; returns the frame."""
        if max(levels) <= 0.0:
            return frame
        sigma = max(1.0, BROW_SHADOW_BLUR * self.rig.iod)
        polys = [np.concatenate([pts[list(brow)], pts[list(lid)][::-1]])
                 for brow, lid in ((BROW_LOWER_RIGHT, LID_LINE_RIGHT), (BROW_LOWER_LEFT, LID_LINE_LEFT))]
        pad = int(np.ceil(3 * sigma)) + 1
        every = np.concatenate(polys)
        x0, y0 = np.maximum(np.floor(every.min(0)).astype(int) - pad, 0)
        x1, y1 = np.minimum(np.ceil(every.max(0)).astype(int) + pad, self.size)
        if x1 <= x0 or y1 <= y0:
            return frame
        shade = np.zeros((y1 - y0, x1 - x0), np.float32)
        for level, poly in zip(levels, polys):
            if level <= 0.0:
                continue
            m = np.zeros_like(shade)
            cv2.fillPoly(m, [np.round((poly - (x0, y0)) * 4).astype(np.int32)], 1.0, cv2.LINE_AA, 2)
            shade = np.maximum(shade, level * cv2.GaussianBlur(m, (0, 0), sigma))
        light = (1.0 - BROW_SHADOW * shade)[..., None] ** np.asarray(SHADOW_TINT, np.float32)
        frame[y0:y1, x0:x1] = np.clip(frame[y0:y1, x0:x1] * light, 0, 255).astype(np.uint8)
        return frame

    def inverse_map(self, moved: np.ndarray) -> np.ndarray:
        """Exact piecewise-affine inverse: for every output pixel, the portrait point it shows
        (S, S, 2) float32. Triangles are rasterised at their moved positions (in order, so a
        folded triangle is covered by its neighbours), then each pixel's barycentric coordinates
        in its moved triangle pick the same point of the triangle on the portrait."""
        simp = self.simplices  # (T, 3)
        live = self.live_triangles(moved)
        src = self.grid.copy()
        if not len(live):
            return src
        tri_m = moved[simp[live]]  # (L, 3, 2)
        x0, y0 = np.floor(tri_m.reshape(-1, 2).min(0)).astype(int).clip(0, self.size - 1)
        x1, y1 = (np.ceil(tri_m.reshape(-1, 2).max(0)).astype(int) + 1).clip(1, self.size)
        ids = np.full((y1 - y0, x1 - x0), -1, np.int32)
        off = np.array([x0, y0])
        pts = np.round((tri_m - off) * 16).astype(np.int32)
        for k in range(len(live)):
            cv2.fillConvexPoly(ids, pts[k], int(k), cv2.LINE_8, 4)
        # barycentric coordinates in each live moved triangle: B (L, 3, 3), lambda = B @ (x, y, 1)
        dm = np.concatenate([tri_m.transpose(0, 2, 1), np.ones((len(live), 1, 3))], axis=1)  # (L, 3, 3)
        rest = self.points[simp[live]].transpose(0, 2, 1)  # (L, 2, 3)
        ok = np.abs(np.linalg.det(dm)) > 1e-6
        bary = np.zeros((len(live), 3, 3))
        bary[ok] = np.linalg.inv(dm[ok])
        bary[~ok, :, 2] = 1.0 / 3.0  # a collapsed triangle shows its centre
        # per triangle, one matrix for the map and the first two barycentric coordinates: (L, 4, 3)
        maps = np.concatenate([rest @ bary, bary[:, :2]], axis=1).astype(np.float32)
        yy, xx = np.nonzero(ids >= 0)
        k = ids[yy, xx]
        px, py = (xx + x0).astype(np.float32), (yy + y0).astype(np.float32)
        m = maps[k]  # (N, 4, 3)
        v = m[:, :, 0] * px[:, None] + m[:, :, 1] * py[:, None] + m[:, :, 2]  # (N, 4): sx, sy, l1, l2
        src[yy + y0, xx + x0] = v[:, :2]
        # a pixel that the rasteriser gave to a sliver of a triangle it lies just outside of is
        # kept near the triangle (coordinates clipped at -SLIVER_REACH), not extrapolated along the
        # sliver, which fetched pixels from far away: dotted dark lines beside a frowning mouth
        # and at anger's eye corners, where the mesh folds
        lam = np.stack([v[:, 2], v[:, 3], 1.0 - v[:, 2] - v[:, 3]], 1)
        far = (lam < -SLIVER_REACH).any(1)
        if far.any():
            lf = np.clip(lam[far], -SLIVER_REACH, None)
            lf /= np.maximum(lf.sum(1, keepdims=True), 1e-9)
            src[yy[far] + y0, xx[far] + x0] = np.einsum("nij,nj->ni", rest[k[far]], lf).astype(np.float32)
        return src

    def live_triangles(self, moved: np.ndarray) -> np.ndarray:
        """Triangles with a vertex that moved (the others map pixels onto themselves)."""
        moving = np.abs(moved - self.points).max(1) > 1e-3  # (P,)
        return np.nonzero(moving[self.simplices].any(1))[0]

    def vertex_motion(self, disp: np.ndarray, head: tuple[float, float, float]) -> np.ndarray:
        """Motion of every triangulation vertex (mesh, rings, border), (P, 2) pixels."""
        roll, dx, dy = head
        c, s_ = np.cos(roll), np.sin(roll)
        rel = self.ring_pts - self.rig.origin
        ring = rel @ np.array([[c, s_], [-s_, c]]) - rel + np.array([dx, dy]) @ self.rig.axes * self.rig.iod
        v = np.zeros_like(self.points)
        v[: self.n_mesh] = disp[self.mesh_idx]
        follow = disp[self.mesh_idx][self.ring_near] - ring  # the face's motion beyond the head's
        v[self.n_mesh : self.n_mesh + self.n_ring] = (ring * self.ring_share[:, None]
                                                      + follow * self.ring_follow[:, None])
        k = self.n_mesh + self.n_ring
        lm = self.portrait.landmarks
        for i, (up, lo) in enumerate(self.teeth_pairs):
            # opening: the half-way point rides with the upper lip (the upper teeth stay with it);
            # closing: it is squeezed toward the lips in proportion, so the lips can meet
            g0 = float(np.linalg.norm(lm[lo] - lm[up]))
            g = float(np.linalg.norm(lm[lo] + disp[lo] - lm[up] - disp[up]))
            share = min(1.0, g / max(g0, 1e-6))
            v[k + i] = (lm[up] + disp[up]) + share * (self.mid_pts[i] - lm[up]) - self.mid_pts[i]
        return v

    def _mouth(self, frame: np.ndarray, pts: np.ndarray, moved_all: np.ndarray) -> np.ndarray:
        """Paint the part of the mouth opening that the portrait does not have."""
        gap = self._gap(pts)
        extra = gap - self.rest_gap
        if extra <= 0.5:
            return self._seam(frame, pts, 1.0 - max(extra, 0.0) / 0.5) if self.seam else frame
        iod = self.rig.iod
        # the top of the new opening: the upper lip, or the moved half-way points (teeth edge)
        top = pts[list(UPPER_INNER)].copy()
        k = self.n_mesh + self.n_ring
        for i, (up, _) in enumerate(self.teeth_pairs):
            top[UPPER_INNER.index(up)] = moved_all[k + i]
        lo = pts[list(LOWER_INNER)]
        # the lips' edges are curves through the mesh points, not polygons: each lip's inner edge
        # is interpolated (Catmull-Rom, through every point, so the opening keeps its measured
        # height) and the two meet at the corners
        top_c, lo_c = _through(top), _through(lo)
        ring = np.r_[top_c, lo_c[::-1][1:-1]]
        x0, y0 = np.floor(ring.min(0)).astype(int) - 3
        x1, y1 = np.ceil(ring.max(0)).astype(int) + 4
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, self.size), min(y1, self.size)
        if x1 - x0 < 3 or y1 - y0 < 3:
            return frame
        off = np.array([x0, y0])
        sub = 4  # bits of sub-pixel precision for polygon edges
        shape = (y1 - y0, x1 - x0)

        def poly(p: np.ndarray) -> np.ndarray:
            m = np.zeros(shape, np.uint8)
            cv2.fillPoly(m, [np.round((p - off) * (1 << sub)).astype(np.int32)], 255, cv2.LINE_AA, sub)
            return m.astype(np.float32) / 255

        down, across_axis = self.rig.axes[1], self.rig.axes[0]

        def band(c: np.ndarray, t: np.ndarray) -> np.ndarray:
            """The band between the curve ``c`` and the curve moved down by ``t`` (pixels; up
            where negative), over the stretch where it is at least a quarter pixel thick (a
            band of no thickness still drew a one-pixel line along the whole edge)."""
            keep = np.nonzero(np.abs(t) > 0.25)[0]
            if len(keep) < 2:
                return np.zeros(shape, np.float32)
            c, t = c[keep[0] : keep[-1] + 1], t[keep[0] : keep[-1] + 1]
            return poly(np.r_[c, (c + t[:, None] * down)[::-1]])

        inner = poly(ring)
        mid = (lo[0] + lo[-1]) / 2
        half = max(1.0, float(np.linalg.norm(lo[-1] - lo[0])) / 2)
        opening = float(np.linalg.norm(lo[5] - top[5]))  # its height at the middle

        def along(p: np.ndarray) -> np.ndarray:  # -1 .. 1 from corner to corner
            return np.clip((p - mid) @ across_axis / half, -1.0, 1.0)

        teeth = np.zeros(shape, np.float32)
        if not self.teeth_pairs:  # the portrait shows no teeth: paint the upper ones
            # the front teeth (incisors and canines, about the middle 70 % of the opening) show
            # below the upper lip, at most about 4 mm (Vig & Brundo 1978: 2-3.5 mm at rest); the
            # ones behind them turn away into the dark at the sides
            front = np.clip(1.0 - (np.abs(along(top_c)) / 0.78) ** 4, 0.0, 1.0) ** 0.5
            t_up = min(0.06 * iod, 0.35 * opening) * front
            # the teeth are fixed to the skull: their edge may follow a lip that curves up (a
            # smile) but not one that curves down (a frown hides them toward the corners)
            depth_top = (top_c - mid) @ down
            edge = depth_top[len(top_c) // 2] + t_up.max()
            t_up = np.clip(edge - depth_top, 0.0, t_up)
            teeth = band(top_c, t_up)
        # lower incisors: only when the mouth is wide open, in the middle, mostly behind the lip
        t_lo = max(0.0, min(0.035 * iod, 0.2 * opening - 0.04 * iod)) * np.clip(
            1.0 - (np.abs(along(lo_c)) / 0.5) ** 2, 0.0, 1.0)
        if t_lo.max() > 0.75:
            teeth = np.maximum(teeth, 0.7 * band(lo_c, -t_lo))
        # the tongue lies low, behind the lower teeth, its back along the lower lip (a third of
        # the opening high in the middle, none at the corners), its upper edge soft
        t_tg = 0.3 * opening * np.clip(1.0 - along(lo_c) ** 2, 0.0, 1.0)
        tongue = band(lo_c, -t_tg)
        tongue = cv2.GaussianBlur(tongue, (0, 0), max(0.6, 0.006 * iod))
        tongue = tongue * float(np.clip(extra / (0.15 * iod), 0, 1))
        yy, xx = np.mgrid[y0:y1, x0:x1]
        across = np.abs((xx - mid[0]) * across_axis[0] + (yy - mid[1]) * across_axis[1])
        shade = 1.0 - 0.5 * np.clip(across / half, 0, 1) ** 2
        # deeper = darker: distance below the top edge relative to the opening
        depth = np.clip(((xx - top[5][0]) * down[0] + (yy - top[5][1]) * down[1]) / max(opening, 1.0), 0, 1)
        col = np.broadcast_to(self.cavity, shape + (3,)) * (1.15 - 0.3 * depth)[..., None]
        col = col * (1 - tongue[..., None]) + self.tongue * tongue[..., None]
        # teeth in a narrow opening are in the lips' shadow: lit in proportion to the opening,
        # up to fully lit at TEETH_LIT (a slit showed a bright line, like a rim around the mouth)
        lit = TEETH_DARK + (1.0 - TEETH_DARK) * float(np.clip(opening / (TEETH_LIT * iod), 0.0, 1.0))
        lit = lit * (1.0 - TEETH_TURN * np.clip(across / half, 0, 1) ** 2)[..., None]
        teeth = cv2.GaussianBlur(teeth, (0, 0), MOUTH_EDGE * iod) if teeth.any() else teeth
        col = col * (1 - teeth[..., None]) + self.teeth * lit * teeth[..., None]
        col = col * shade[..., None]
        inner = cv2.GaussianBlur(inner, (0, 0), MOUTH_EDGE * iod)
        alpha = (inner * float(np.clip(extra / 2.0, 0, 1)))[..., None]
        region = frame[y0:y1, x0:x1].astype(np.float32)
        frame = frame.copy()
        frame[y0:y1, x0:x1] = np.clip(region * (1 - alpha) + col * alpha, 0, 255).astype(np.uint8)
        return frame


    def _seam(self, frame: np.ndarray, pts: np.ndarray, alpha: float) -> np.ndarray:
        """The line where closed lips meet (through the inner-lip midpoints, corner to corner),
        in the mouth's cavity colour: a thin dark line, tapered toward the corners."""
        mid = _through((pts[list(UPPER_INNER)] + pts[list(LOWER_INNER)]) / 2)  # along the lips
        x0, y0 = np.floor(mid.min(0)).astype(int) - 4
        x1, y1 = np.ceil(mid.max(0)).astype(int) + 5
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.size), min(y1, self.size)
        if x1 - x0 < 3 or y1 - y0 < 3 or alpha <= 0:
            return frame
        m = np.zeros((y1 - y0, x1 - x0), np.float32)
        width = max(1, int(round(SEAM_WIDTH * self.rig.iod)))
        p = np.round((mid - [x0, y0]) * 16).astype(np.int32)
        for i in range(len(p) - 1):
            taper = np.sin(np.pi * (i + 0.5) / (len(p) - 1)) ** 0.5
            cv2.line(m, tuple(p[i]), tuple(p[i + 1]), float(taper), width, cv2.LINE_AA, 4)
        m = (cv2.GaussianBlur(m, (0, 0), 0.6) * alpha * 0.85)[..., None]  # a lip line, not an ink stroke
        frame = frame.copy()
        region = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(region * (1 - m) + self.cavity * m, 0, 255).astype(np.uint8)
        return frame


def _gaze_shift(grid: np.ndarray, centre: np.ndarray, mask: np.ndarray, r: float,
                gaze: tuple[float, float]) -> np.ndarray:
    """How far (pixels, (..., 2)) a gaze (iris radii) moves what each point of ``grid`` shows of
    the eye: the iris ``GAZE_TRAVEL`` of the gaze, fading with distance from it inside the eye's mask."""
    if not (gaze[0] or gaze[1]):
        return np.zeros(grid.shape, np.float32)
    g = np.array(gaze, dtype=np.float32) * r * GAZE_TRAVEL
    w = np.exp(-((grid - centre) ** 2).sum(-1) / (2 * (1.6 * r) ** 2)) * mask
    return w[..., None] * g


def _through(p: np.ndarray, per: int = 4) -> np.ndarray:
    """A smooth curve through the points ``p`` (N, 2), in order: centripetal Catmull-Rom, ``per``
    samples per segment, the end segments extended by mirrored points; passes through every
    point, so extremes are kept (unlike corner-cutting schemes)."""
    if len(p) < 3:
        return p
    ext = np.r_[2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]]
    out = [p[:1]]
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        t1 = np.linalg.norm(p1 - p0) ** 0.5 + 1e-6
        t2 = t1 + np.linalg.norm(p2 - p1) ** 0.5 + 1e-6
        t3 = t2 + np.linalg.norm(p3 - p2) ** 0.5 + 1e-6
        for t in np.linspace(t1, t2, per + 1)[1:]:
            a1 = (t1 - t) / t1 * p0 + t / t1 * p1
            a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
            a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
            b1 = (t2 - t) / t2 * a1 + t / t2 * a2
            b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
            out.append(((t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2)[None])
    return np.concatenate(out)


def _ring_order(p: np.ndarray) -> np.ndarray:
    """Indices that order points around their centroid (for filling an outline)."""
    c = p.mean(0)
    return np.argsort(np.arctan2(p[:, 1] - c[1], p[:, 0] - c[0]))
