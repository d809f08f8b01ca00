"""The expression rig: facial action units and speech shapes as displacement fields on the mesh.

Each action unit (FACS, Ekman, Friesen & Hager 2002) is a set of *handles*: mesh landmarks with a
displacement in face coordinates (x outward from the face's midline, y up; unit = the
inter-ocular distance, IOD, about 63 mm on an adult) and a radius. The displacement of every mesh
point is the handles' displacements blended by Gaussian weights (a partition of unity near the
handles, fading to zero away from them), limited to a region where the anatomy needs it (the
upper lid moves, the lower does not; the lower lip and jaw, not the upper lip). The jaw (AU26) is
a rotation of the lower face about a pivot between the ears. The lip corner depressor (AU15)
bends the lips as a band (``FROWN``), and the skin below them takes a downward move over its
whole height to the jaw line (``Rig._spread_down``), so that it is squeezed, not folded over;
likewise the skin between each upper lid and its brow comes down by their moves in proportion to
its place between them (``Rig._even_lid_skin``), so a lowered brow squeezes it instead of
folding it over the lid.
Blinks close each upper lid onto its lower lid, measured on the portrait. Parameters are in [0, 1] (FACS intensity E = 1; a slight
negative value is allowed by the motion model and clipped here).

The portrait's own expression is taken back first (``Rig.rest_field``, always added): a smile's
corner lift is measured, its bend and width undone and open lips closed, so that every frame's
expression starts from a relaxed face; a portrait with a relaxed, closed mouth gets (nearly) no
change. ``Rig(portrait, neutralize=False)`` keeps the portrait as it is (what fitting a filmed
clip to its own first frame needs).

The magnitudes at 1.0 are this project's choice, sized from the ranges of facial movement in
mm reported for posed expressions (e.g. brow raise ~ 8-10 mm, lip-corner pull ~ 8 mm up and
out, jaw opening in speech ~ 5-15 mm); they are stated here, not fitted.

Emotion prototypes (``PROTOTYPES``) follow the EMFACS predictions as tabled by Ekman, Friesen &
Hager (2002, Investigator's Guide) and Matsumoto & Ekman (2008): happiness 6+12; sadness 1+4+15
(+17), the inner brows raised and drawn together at the same intensity (with the brow lowerer
at 0.6, the talking face's raised inner brows over open eyes read as surprise or fear); surprise
1+2+5B+26 (FACS intensities A-E mapped to 0.2-1.0, so 5B = 0.4); fear 1+2+4+5+7+20+26; anger
4+5+7+23; disgust 9+15+16 (AU10 stands in for AU16, which this rig lacks); contempt unilateral
12+14 (made symmetric here: the rig has no left/right split).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conditioning import DirectionVectorModel
from generators.face.portrait import LEFT_EYE, RIGHT_EYE, Portrait

#: Action units that carry emotion (the face medium's emotion embedding has these dimensions).
EMOTION_AUS = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15",
               "AU17", "AU20", "AU23", "AU25", "AU26")
#: Speech-only shapes: lip pucker/rounding (AU18) and lip pressing for bilabials (AU24).
SPEECH_AUS = ("AU18", "AU24")
#: The motion model's channels: emotion AUs + speech shapes.
MOTION = EMOTION_AUS + SPEECH_AUS

AU_NAMES = {
    "AU1": "inner brow raiser", "AU2": "outer brow raiser", "AU4": "brow lowerer",
    "AU5": "upper lid raiser", "AU6": "cheek raiser", "AU7": "lid tightener",
    "AU9": "nose wrinkler", "AU10": "upper lip raiser", "AU12": "lip corner puller",
    "AU14": "dimpler", "AU15": "lip corner depressor", "AU17": "chin raiser",
    "AU18": "lip pucker", "AU20": "lip stretcher", "AU23": "lip tightener", "AU24": "lip presser",
    "AU25": "lips part", "AU26": "jaw drop",
}

#: Emotion prototypes at intensity 1 (AU intensities in [0, 1]); see the module docstring.
PROTOTYPES: dict[str, dict[str, float]] = {
    "happy": {"AU6": 0.9, "AU12": 1.0, "AU25": 0.3},
    "sad": {"AU1": 1.0, "AU4": 1.0, "AU15": 1.0, "AU17": 0.6},
    "surprised": {"AU1": 1.0, "AU2": 1.0, "AU5": 0.4, "AU25": 0.6, "AU26": 0.6},  # 5B: slight
    "fearful": {"AU1": 0.9, "AU2": 0.6, "AU4": 0.5, "AU5": 1.0, "AU7": 0.3, "AU20": 1.0,
                "AU25": 0.5, "AU26": 0.3},
    "angry": {"AU4": 1.0, "AU5": 0.5, "AU7": 0.9, "AU23": 1.0, "AU17": 0.3},
    "disgusted": {"AU9": 1.0, "AU10": 0.7, "AU15": 0.5, "AU17": 0.4, "AU4": 0.3},
    "contempt": {"AU14": 0.9, "AU12": 0.3},
    "calm": {"AU12": 0.15, "AU7": 0.1},
}

# landmark groups of the 478-point mesh
INNER_BROW = (107, 55, 66, 65, 336, 285, 296, 295)
MID_BROW = (105, 52, 334, 282)
OUTER_BROW = (70, 46, 63, 53, 300, 276, 293, 283)
UPPER_LID = (159, 158, 160, 161, 157, 173, 246, 386, 385, 387, 388, 384, 398, 466)
LOWER_LID = (145, 153, 144, 163, 154, 155, 7, 374, 380, 373, 390, 381, 382, 249)
LID_PAIRS = ((159, 145), (158, 153), (160, 144), (161, 163), (157, 154), (173, 155), (246, 7),
             (386, 374), (385, 380), (387, 373), (388, 390), (384, 381), (398, 382), (466, 249))
CHEEK = (205, 50, 187, 123, 117, 118, 425, 280, 411, 352, 346, 347)
NOSE_WING = (98, 64, 129, 327, 294, 358, 48, 278)
CORNERS = (61, 291, 78, 308)
NEAR_CORNERS = (185, 409, 146, 375, 191, 415, 95, 324)
UPPER_LIP_OUT = (0, 37, 267, 39, 269, 40, 270)
UPPER_LIP_IN = (13, 82, 312, 81, 311, 80, 310)
LOWER_LIP_IN = (14, 87, 317, 178, 402, 88, 318)
LOWER_LIP_OUT = (17, 84, 314, 181, 405, 91, 321)
#: Lip points near the corners, which a smile can lift above the line between the corners.
UPPER_LIP_ENDS = (191, 415, 185, 409)
LOWER_LIP_ENDS = (95, 324, 146, 375)
INNER_LIP_PAIRS = ((13, 14), (82, 87), (312, 317), (81, 178), (311, 402), (80, 88), (310, 318))
#: The same pairs out to the corners (what closing a smile's open lips has to bring together).
INNER_LIP_PAIRS_ALL = INNER_LIP_PAIRS + ((191, 95), (415, 324))
#: Skin just outside the mouth corners (the commissures and the creases beside them).
COMMISSURES = (57, 287, 186, 410, 43, 273, 92, 322, 216, 436, 212, 432, 202, 422)
#: Every lip landmark, outer and inner outlines.
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267,
        269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
CHIN = (152, 175, 199, 200, 18, 148, 377, 176, 400)
IRIS = tuple(range(468, 478))
#: The inner-lip outline, in order around the mouth opening.
INNER_LIP_RING = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178,
                  88, 95)


@dataclass(frozen=True)
class Handle:
    points: tuple[int, ...]
    out: float  # displacement away from the face's midline, IOD
    up: float  # displacement up, IOD
    radius: float  # Gaussian radius, IOD
    region: str = ""  # "", "lower_mouth", "upper_mouth", "above_eye", "below_eye", "brow"
    inward: float = 0.0  # displacement toward the face's midline along the eye line (AU4), IOD


#: Each AU at intensity 1 as handles. AU26 (jaw) is a rotation handled apart.
AU_HANDLES: dict[str, tuple[Handle, ...]] = {
    "AU1": (Handle(INNER_BROW, 0.0, 0.12, 0.16, "brow"), Handle(MID_BROW, 0.0, 0.05, 0.12, "brow"),
            Handle(UPPER_LID, 0.0, 0.012, 0.06, "above_eye")),
    "AU2": (Handle(OUTER_BROW, 0.0, 0.11, 0.16, "brow"), Handle(MID_BROW, 0.0, 0.06, 0.12, "brow"),
            Handle(UPPER_LID, 0.0, 0.01, 0.06, "above_eye")),
    # AU4 and AU7 hold the upper lid where it is (a handle with no move, so the lowered brow
    # and the tightened lids do not drag it down): in anger's 4+5+7 the upper lid is raised by
    # AU5 against the lowered brow, the glare of FACS's 4+5 (with the lid lowered by both, the
    # eye had narrowed to a squint whatever AU5 did)
    "AU4": (Handle(INNER_BROW, 0.0, -0.12, 0.15, "brow", inward=0.08),
            Handle(MID_BROW, 0.0, -0.07, 0.13, "brow", inward=0.03),
            Handle(UPPER_LID, 0.0, 0.0, 0.06, "above_eye")),
    "AU5": (Handle(UPPER_LID, 0.0, 0.045, 0.07, "above_eye"),),
    "AU6": (Handle(CHEEK, 0.01, 0.07, 0.16), Handle(LOWER_LID, 0.0, 0.035, 0.06, "below_eye"),
            Handle(OUTER_BROW, 0.0, -0.02, 0.10, "brow")),
    "AU7": (Handle(LOWER_LID, 0.0, 0.045, 0.06, "below_eye"), Handle(UPPER_LID, 0.0, 0.0, 0.05, "above_eye")),
    "AU9": (Handle(NOSE_WING, 0.0, 0.06, 0.09), Handle(UPPER_LIP_OUT, 0.0, 0.03, 0.08, "upper_mouth"),
            Handle(INNER_BROW, 0.0, -0.04, 0.12, "brow", inward=0.02)),
    "AU10": (Handle(UPPER_LIP_OUT + UPPER_LIP_IN, 0.0, 0.06, 0.09, "upper_mouth"),
             Handle(NOSE_WING, 0.0, 0.015, 0.07)),
    "AU12": (Handle(CORNERS, 0.09, 0.10, 0.13), Handle(NEAR_CORNERS, 0.05, 0.05, 0.10),
             Handle(CHEEK, 0.01, 0.03, 0.14)),
    "AU14": (Handle(CORNERS, -0.02, 0.025, 0.07),),
    # AU15 is a bend of the lips (``Rig._bend_field``), not handles: see FROWN below
    "AU17": (Handle(CHIN, 0.0, 0.06, 0.15, "lower_mouth"),
             Handle(LOWER_LIP_OUT + LOWER_LIP_IN, 0.0, 0.04, 0.08, "lower_mouth")),
    "AU18": (Handle(CORNERS, -0.10, 0.0, 0.10), Handle(NEAR_CORNERS, -0.05, 0.0, 0.08)),
    "AU20": (Handle(CORNERS, 0.11, -0.02, 0.12), Handle(NEAR_CORNERS, 0.06, -0.01, 0.09)),
    "AU23": (Handle(UPPER_LIP_OUT, 0.0, -0.025, 0.06, "upper_mouth"),
             Handle(LOWER_LIP_OUT, 0.0, 0.025, 0.06, "lower_mouth"), Handle(CORNERS, -0.03, 0.0, 0.06)),
    "AU24": (Handle(UPPER_LIP_IN, 0.0, -0.015, 0.05, "upper_mouth"),
             Handle(LOWER_LIP_IN + LOWER_LIP_OUT, 0.0, 0.04, 0.07, "lower_mouth")),
    "AU25": (Handle(LOWER_LIP_IN, 0.0, -0.09, 0.07, "lower_mouth"),
             Handle(LOWER_LIP_OUT, 0.0, -0.07, 0.07, "lower_mouth"),
             Handle(UPPER_LIP_IN, 0.0, 0.025, 0.05, "upper_mouth")),
}
JAW_DROP_IOD = 0.30  # chin displacement at AU26 = 1
#: What the jaw does to the mouth's corners as it drops: the lips stretch over the opening, so the
#: corners come down a little and in toward the midline (an open jaw narrows the mouth, as
#: the open vowels' lip widths do against the spread ones); the opening becomes an oval, not a
#: grin's flat-topped crescent.
JAW_CORNERS = (Handle(CORNERS, -0.05, -0.04, 0.09), Handle(NEAR_CORNERS, -0.03, -0.025, 0.08))
#: AU15 at 1: the mouth corners drawn down this far (IOD) and out this far; the lips between
#: follow as an elastic band does, each point lowered by the square of its distance from the
#: middle (a frown's arc; handles at the corners alone bent the lip line into a "W").
FROWN = (0.11, 0.02)
#: The lower edge of the face (the jaw line, left to right): skin between the lips and it takes up
#: a downward move of the lips over its whole height instead of just under the corners.
JAW_LINE = (172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397)
#: The outer lower lip, corner to corner.
LOWER_LIP_LINE = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
#: Parted lips up to this gap (IOD; 0.08 ~ 5 mm) close without the jaw; twice that, half by the jaw.
LIPS_ONLY_GAP = 0.08
#: How far (Gaussian radius, IOD) the relaxing of a portrait's open smile is spread over the face.
JAW_SMOOTH = 0.06
#: How far the iris moves for a gaze of 1 (iris radii): 0.55 of its radius (the renderer's gaze).
GAZE_TRAVEL = 0.55
#: The upper lid follows the eye's vertical gaze: in vertical saccades lid and eye move together,
#: about one to one (Becker & Fuchs 1988, lid-eye coordination in man), so a look down lowers the
#: lid as far as the top of the iris goes (a lid that stayed put bared the white above the iris:
#: a stare). This share of the iris's move; the lower lid is left where it is.
LID_FOLLOW = 1.0
#: The largest AU intensity the rig takes (FACS's E is 1; guidance may ask a little beyond it).
AU_CEILING = 1.25
#: The brow raisers stop at E: the frontalis lifts the brows only as far as the forehead's skin
#: gives, and past E the rig's lift had run out of forehead (the skin was pushed up under the hair,
#: its edge a straight cut across a fringe at 4x, and the lids' skin stretched thin), so what
#: guidance asks beyond it is not shown. The other AUs take up to ``AU_CEILING``.
AU_LIMITS = {"AU1": 1.0, "AU2": 1.0}
#: Brows drawn together (AU4, AU9) move a point toward the midline by at most this share of its
#: distance from it at intensity 1 (0.75 at ``AU_CEILING``): the skin is bunched, not pushed
#: across the midline.
BROW_SQUEEZE = 0.6
#: The brows' lower edges, right then left, outer to inner; the upper lids' outlines corner to
#: corner, right then left.
BROW_LOWER_EDGE = (46, 53, 52, 65, 55, 276, 283, 282, 295, 285)
UPPER_LID_LINE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 263, 466, 388, 387, 386, 385, 384, 398, 362)
#: Corner lift (IOD) that a relaxed mouth may have before it counts as a smile: relaxed mouth
#: corners sit about level with the lips' midline; AU12 at 1 lifts them 0.10 IOD (above).
RELAXED_LIFT = 0.02


class Rig:
    """The rig fitted to one portrait: ``displace(params, blink, gaze, head)`` -> (478, 2) pixels."""

    def __init__(self, portrait: Portrait, neutralize: bool = True):
        self.portrait = portrait
        p = portrait.landmarks.astype(np.float64)  # (478, 2)
        er, el = portrait.eye_centres
        self.iod = float(np.linalg.norm(el - er))
        ex = (el - er) / self.iod  # image-left eye -> image-right eye
        ey = np.array([-ex[1], ex[0]])  # down in the image
        self.origin = (er + el) / 2
        self.axes = np.stack([ex, ey])  # (2, 2): rows are x and y-down unit vectors
        q = (p - self.origin) @ self.axes.T / self.iod  # (478, 2) face coords, y down
        self.q = q
        self.side = np.sign(q[:, 0] + 1e-9)  # -1 image-left half, +1 image-right half
        self.regions = self._regions(q)
        self.basis = {au: self._au_field(au) for au in AU_HANDLES}  # (478, 2) face coords each
        # brows drawn together bunch the skin between them instead of pushing it across
        for au in ("AU4", "AU9"):
            self.basis[au][:, 0] = _toward_midline_at_most(self.basis[au][:, 0], q[:, 0], BROW_SQUEEZE)
        self.basis["AU15"] = self._spread_down(self._bend_field(-FROWN[0], FROWN[1]))
        self.basis["AU26"] = self._jaw_field()
        # the mouth opens as a lens: the corners, held by the muscles that meet there, barely part
        taper = self._corner_taper()
        for au in ("AU25", "AU26"):
            self.basis[au] = self.basis[au] * taper[:, None]
        self.basis["AU26"] = self.basis["AU26"] + self._handles_field(JAW_CORNERS)
        if not neutralize:  # lips that are apart on the portrait: pressing closes them first
            closure = self._closure_field()
            for au, share in (("AU24", 1.0), ("AU23", 0.8), ("AU17", 0.5)):
                self.basis[au] = self.basis[au] + share * closure
        self._blink_w = self._blink_weights()
        self._lid_skin = self._lid_skin_weights()
        # iris radius (IOD), from the mesh's iris rings
        self.iris_radius = float(np.mean([np.linalg.norm(q[c + 1 : c + 5] - q[c], axis=1).mean()
                                          for c in (468, 473)]))
        # the portrait's own expression, taken back to a relaxed face before any motion
        self.rest_smile = self._rest_smile()
        self.rest_field = self._rest_field() if neutralize else np.zeros_like(q)

    # -- regions ------------------------------------------------------------------------------
    def _regions(self, q: np.ndarray) -> dict[str, np.ndarray]:
        def soft(x, width):
            return 1.0 / (1.0 + np.exp(-x / width))

        # mouth line: through the inner corners, at the height of the inner lips' midpoint
        c1, c2 = q[78], q[308]
        mid_y = (q[13, 1] + q[14, 1]) / 2
        line_y = np.interp(q[:, 0], [c1[0], c2[0]], [c1[1], c2[1]]) + (mid_y - (c1[1] + c2[1]) / 2)
        lower = soft(q[:, 1] - line_y, 0.012)
        lower[list(LOWER_LIP_IN + LOWER_LIP_OUT + LOWER_LIP_ENDS + CHIN)] = 1.0
        lower[list(UPPER_LIP_IN + UPPER_LIP_OUT + UPPER_LIP_ENDS)] = 0.0
        # the same, with the boundary softening out beyond the mouth's corners (the cheeks beside
        # the mouth shear over a band, not along a line): for moves that close the jaw
        half = abs(c2[0] - c1[0]) / 2
        beyond = np.clip((np.abs(q[:, 0] - (c1[0] + c2[0]) / 2) - half) / 0.15, 0.0, 1.0)
        jaw = soft(q[:, 1] - line_y, 0.012 + 0.06 * beyond)
        jaw[list(LOWER_LIP_IN + LOWER_LIP_OUT + LOWER_LIP_ENDS + CHIN)] = 1.0
        jaw[list(UPPER_LIP_IN + UPPER_LIP_OUT + UPPER_LIP_ENDS)] = 0.0
        # eye line: each eye's corners; above/below it
        eye_y = np.empty(len(q))
        for eye, corners in ((RIGHT_EYE, (33, 133)), (LEFT_EYE, (362, 263))):
            a, b = q[corners[0]], q[corners[1]]
            on_side = np.sign(q[:, 0]) == np.sign(q[list(eye)].mean(0)[0])
            eye_y[on_side] = np.interp(q[on_side, 0], sorted([a[0], b[0]]),
                                       [a[1], b[1]] if a[0] < b[0] else [b[1], a[1]])
        below = soft(q[:, 1] - eye_y, 0.008)
        below[list(LOWER_LID)] = 1.0
        below[list(UPPER_LID)] = 0.0
        # brows: well above the eye line, so that raising a brow moves the lid only a little
        brow = soft((eye_y - q[:, 1]) - 0.11, 0.02) * (1 - below)
        return {"lower_mouth": lower, "upper_mouth": 1 - lower, "jaw": jaw, "below_eye": below, "above_eye": 1 - below,
                "brow": brow, "": np.ones(len(q))}

    # -- fields -------------------------------------------------------------------------------
    def _au_field(self, au: str) -> np.ndarray:
        return self._handles_field(AU_HANDLES[au])

    def _handles_field(self, handles: tuple[Handle, ...]) -> np.ndarray:
        """Handles blended as one partition of unity (overlapping handles average, they do not
        add up)."""
        q = self.q
        ws, ds = [], []
        for h in handles:
            idx = np.array(h.points)
            d = np.zeros((len(idx), 2))
            d[:, 0] = (h.out - h.inward) * self.side[idx]
            d[:, 1] = -h.up  # face coordinates are y-down
            dist2 = ((q[:, None, :] - q[None, idx, :]) ** 2).sum(-1)  # (478, H)
            w = np.exp(-dist2 / (2 * h.radius**2))
            # handles act on their own side of the face only (no pulling across the midline)
            w *= (self.side[:, None] == self.side[None, idx]) | (np.abs(q[idx, 0]) < 0.05)[None]
            ws.append(w * self.regions[h.region][:, None])
            ds.append(d)
        w, d = np.concatenate(ws, 1), np.concatenate(ds)
        total = (w @ d) / np.maximum(1.0, w.sum(1, keepdims=True))
        total[list(IRIS)] = 0.0
        return total

    def _bend_field(self, lift: float, out: float, radius: float = 0.07) -> np.ndarray:
        """The lips bent as a band: each lip point (and the skin at the corners) raised by ``lift``
        (IOD; negative lowers) times the square of its distance from the middle over half the
        mouth's width, and moved out by ``out`` times that distance; spread to the skin around by
        Gaussian weights of ``radius``, each side of the mouth on its own."""
        q = self.q
        mid_x = (q[13, 0] + q[14, 0]) / 2
        half = max(abs(q[291, 0] - q[61, 0]) / 2, 1e-3)
        idx = np.array(LIPS + NEAR_CORNERS + COMMISSURES)
        u = np.clip(np.abs(q[idx, 0] - mid_x) / half, 0.0, 1.0)  # 0 middle .. 1 corners
        d = np.zeros((len(idx), 2))
        d[:, 1] = -lift * u**2  # face coordinates are y-down
        d[:, 0] = out * u * np.sign(q[idx, 0] - mid_x)
        dist2 = ((q[:, None, :] - q[None, idx, :]) ** 2).sum(-1)  # (478, L)
        w = np.exp(-dist2 / (2 * radius**2))
        w *= (np.sign(q[:, 0] - mid_x)[:, None] == np.sign(q[idx, 0] - mid_x)[None]) | (u < 0.15)[None]
        field = (w @ d) / np.maximum(1.0, w.sum(1, keepdims=True))
        field[list(IRIS)] = 0.0
        return field

    def _lid_skin_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The skin between each upper lid and its brow: the points there (above the lid's
        outline at their x, flat beyond the corners; below the brow's lower edge), and for each
        the weights (the row sums to 1) of the lid's points at its x times its distance from the
        brow's and of the brow's points at its x times its place between them (0 at the lid, 1
        at the brow): an even share of their moves."""
        q, idx, rows = self.q, [], []
        n = len(q)
        for lid, brow in ((UPPER_LID_LINE[:9], BROW_LOWER_EDGE[:5]), (UPPER_LID_LINE[9:], BROW_LOWER_EDGE[5:])):
            lid, brow = np.array(lid), np.array(brow)
            lid, brow = lid[np.argsort(q[lid, 0])], brow[np.argsort(q[brow, 0])]
            on_side = np.sign(q[:, 0]) == np.sign(q[lid, 0].mean())

            def interp_weights(points: np.ndarray) -> np.ndarray:  # (n, n) linear interpolation in x
                w = np.zeros((n, n))
                x = np.clip(q[:, 0], q[points[0], 0], q[points[-1], 0])
                k = np.clip(np.searchsorted(q[points, 0], x) - 1, 0, len(points) - 2)
                a, b = points[k], points[k + 1]
                t = (x - q[a, 0]) / np.maximum(q[b, 0] - q[a, 0], 1e-9)
                w[np.arange(n), a] += 1 - t
                w[np.arange(n), b] += t
                return w

            wl, wb = interp_weights(lid), interp_weights(brow)
            lid_y, brow_y = wl @ q[:, 1], wb @ q[:, 1]
            wl = interp_weights(lid[1:-1])  # the lid's move: its margin's, not the corners' (a
            # tightened lower lid lifts the corners, and with them the skin above, into the brow)
            height, span = lid_y - q[:, 1], lid_y - brow_y  # y down: > 0 above the lid
            between = on_side & (height > 0) & (height < span) & (self.regions["above_eye"] > 0.5)
            between[list(IRIS) + list(lid) + list(brow)] = False
            t = np.where(between, height / np.maximum(span, 1e-9), 0.0)
            for i in np.nonzero(between)[0]:
                idx.append(i)
                rows.append(wl[i] * (1 - t[i]) + wb[i] * t[i])
        return np.array(idx, dtype=int), np.array(rows).reshape(-1, n)

    def _even_lid_skin(self, d: np.ndarray) -> np.ndarray:
        """The skin between lid and brow comes down by their moves in proportion to its place
        between them (uniform strain), so a lowered brow squeezes it evenly and nothing passes
        below what lay under it; a raised brow stretches it as the handles do,
        most just above the lid, where the lid's loose skin unfolds (evenly stretched, the faces
        of the LFW panel read less surprised: 0.34 against 0.38). Brows drawn in take it along
        sideways in proportion too (toward the midline by at most ``BROW_SQUEEZE`` x
        ``AU_CEILING`` of its distance from it, so the root of the nose is not pushed across).
        The blend of Gaussian handles had brought the skin just under a lowered brow down nearly
        as far as the brow, past the skin just above a lid held still or raised: triangles
        turned over (a bright seam across the root of the nose and at the inner corners of
        anger's eyes)."""
        idx, weights = self._lid_skin
        if len(idx):
            even = weights @ d
            d[idx, 0] = _toward_midline_at_most(even[:, 0], self.q[idx, 0], BROW_SQUEEZE * AU_CEILING)
            # y down: where the even share comes down, it is taken; where it goes up, the
            # handles' move if that goes up further
            d[idx, 1] = np.where(even[:, 1] > 0, even[:, 1], np.minimum(d[idx, 1], even[:, 1]))
        return d

    def _spread_down(self, field: np.ndarray) -> np.ndarray:
        """A field that moves the lower lip down, with the skin below it taking the move over its
        whole height to the jaw line (falling linearly to zero there) wherever the field's own
        downward move is less (added to it, so a chin that the field lifts still rises): skin
        squeezed between lowered corners and the chin would otherwise fold over (what a smiling
        portrait's corners, let down and then drawn into a frown, did)."""
        q = self.q
        line = np.array(LOWER_LIP_LINE)
        order = np.argsort(q[line, 0])
        lx, ly, ld = q[line, 0][order], q[line, 1][order], np.maximum(field[line, 1][order], 0.0)
        jaw = np.array(JAW_LINE)
        jorder = np.argsort(q[jaw, 0])
        jx, jy = q[jaw, 0][jorder], q[jaw, 1][jorder]
        x = q[:, 0]
        beyond = np.maximum(lx[0] - x, 0.0) + np.maximum(x - lx[-1], 0.0)  # outside the corners
        down = np.interp(x, lx, ld) * np.exp(-((beyond / 0.12) ** 2))
        top, bottom = np.interp(x, lx, ly), np.interp(x, jx, jy)
        t = np.clip((bottom - q[:, 1]) / np.maximum(bottom - top, 1e-3), 0.0, 1.0)
        below = (q[:, 1] > top) & (q[:, 1] < bottom)
        below[list(LIPS)] = False
        spread = down * t
        extra = np.maximum(spread - np.maximum(field[:, 1], 0.0), 0.0)  # what the field lacks of it
        out = field.copy()
        out[below, 1] += extra[below]
        return out

    def _corner_taper(self) -> np.ndarray:
        """(478,) 1 on the chin and the middle of the lips, falling to 0 at the mouth corners
        along the mouth line (1 - u^3, u = distance from the middle over half the mouth width)."""
        q = self.q
        mid_x = (q[13, 0] + q[14, 0]) / 2
        half = max(abs(q[308, 0] - q[78, 0]) / 2, 1e-3)
        line_y = (q[78, 1] + q[308, 1]) / 2
        u = np.clip(np.abs(q[:, 0] - mid_x) / half, 0.0, 1.0)
        near = np.exp(-(((q[:, 1] - line_y) / 0.10) ** 2))
        return 1.0 - near * u**3

    def _jaw_field(self, region: str = "lower_mouth") -> np.ndarray:
        q = self.q
        pivot_y = (q[234, 1] + q[454, 1]) / 2
        chin_y = q[152, 1]
        theta = JAW_DROP_IOD / max(chin_y - pivot_y, 1e-3)
        field = np.zeros_like(q)
        field[:, 1] = theta * np.maximum(q[:, 1] - pivot_y, 0.0) * self.regions[region]
        # slight backward (inward) pull of the jaw's sides as it opens
        field[:, 0] = -0.1 * theta * q[:, 0] * np.maximum(q[:, 1] - pivot_y, 0.0) * self.regions[region]
        return field

    def _closure_field(self, pairs=INNER_LIP_PAIRS, moved: np.ndarray | None = None) -> np.ndarray:
        """Lips meeting: each inner-lip pair closes its gap on the portrait (or on the portrait
        already moved by ``moved``; upper lip 40 % of the way, lower lip 60 %), spread to the lips
        around them."""
        q = self.q
        field = np.zeros_like(q)
        up = np.array([u for u, _ in pairs])
        lo = np.array([v for _, v in pairs])
        at = q if moved is None else q + moved
        gap = np.maximum(at[lo, 1] - at[up, 1], 0.0)  # face units, y down
        for idx, d, region in ((up, 0.4 * gap, "upper_mouth"), (lo, -0.6 * gap, "lower_mouth")):
            dist2 = ((q[:, None, :] - q[None, idx, :]) ** 2).sum(-1)
            w = np.exp(-dist2 / (2 * 0.06**2)) * self.regions[region][:, None]
            field[:, 1] += (w @ d) / np.maximum(1.0, w.sum(1))
        return field

    def _rest_smile(self) -> float:
        """How much the portrait already smiles, in AU12 units: the lift of the mouth corners
        above the lips' midline beyond a relaxed mouth's, over AU12's lift at 1 (0 .. 2)."""
        q = self.q
        lift = (q[13, 1] + q[14, 1]) / 2 - (q[61, 1] + q[291, 1]) / 2  # y down: > 0 corners higher
        return float(np.clip((lift - RELAXED_LIFT) / 0.10, 0.0, 2.0))

    def _rest_field(self) -> np.ndarray:
        """The displacement that relaxes the portrait's own expression: a smiling mouth's bend
        taken out (each lip point lowered by the corners' excess lift times its squared distance
        from the middle, and drawn in as AU12 would have drawn it out), the cheeks let down, and
        lips that are apart brought together. A portrait with a relaxed, closed mouth gets
        (nearly) zero. Expressions then start from this face, so a smiling photo can look sad."""
        q = self.q
        field = np.zeros_like(q)
        s = self.rest_smile
        if s > 0:  # the smile's bend taken out: corners down by its lift, drawn in as AU12 drew them out
            field += self._bend_field(-s * 0.10, -0.09 * s)
            field -= min(s, 1.0) * 0.03 / 0.10 * self._handles_field((Handle(CHEEK, 0.0, 0.10, 0.14, "below_eye"),))
        # lips parted a little (up to about 5 mm, AU25) close lip against lip; a wider opening
        # also has the jaw dropped (AU26), so it closes partly as a jaw closes: the lower lip
        # rises with the chin for up to half of its way (its vermilion keeps more of its height
        # instead of stretching over the gap), and what is left of the gap closes lip against
        # lip. The moves so far are smoothed over the face around the mouth (the jaw rising under
        # corners that come down compresses the skin there, and a move that varies faster than
        # the skin's spacing would turn triangles over); the lips themselves take them exactly.
        gap = max(q[14, 1] - q[13, 1], 0.0)
        jaw = self._jaw_field("jaw") * self._corner_taper()[:, None]
        share = 0.5 * float(np.clip((gap - LIPS_ONLY_GAP) / LIPS_ONLY_GAP, 0.0, 1.0))
        if share > 0 and jaw[14, 1] > 1e-6:
            field -= min(share * 0.6 * gap / jaw[14, 1], 1.0) * jaw
            w = np.exp(-((q[:, None, :] - q[None, :, :]) ** 2).sum(-1) / (2 * JAW_SMOOTH**2))
            smooth = (w @ field) / w.sum(1, keepdims=True)
            keep = q[:, 1] < q[2, 1]  # above the base of the nose (eyes, lids) nothing is spread
            keep[list(LIPS)] = True
            field = np.where(keep[:, None], field, smooth)
        field = self._spread_down(field)
        field += self._closure_field(INNER_LIP_PAIRS_ALL, moved=field)
        field[list(IRIS)] = 0.0
        return field

    def fold_level(self, params: dict[str, float] | np.ndarray) -> float:
        """How much of the portrait's smile folds (nasolabial lines, cheek creases) a frame with
        these parameters shows: its AU12 over the portrait's own smile, 0 .. 1 (1 when the
        portrait does not smile, so nothing is taken away)."""
        if self.rest_smile <= 0 or not np.any(self.rest_field):
            return 1.0
        if not isinstance(params, dict):
            params = dict(zip(MOTION, np.asarray(params, dtype=np.float64)))
        return float(np.clip(params.get("AU12", 0.0) / self.rest_smile, 0.0, 1.0))

    def _blink_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """For the upper and the lower lid: the handle points, and the Gaussian weights (478, 14)
        by which a move of them spreads over the lid's own region and side."""
        q = self.q
        out = []
        for pos, region in ((0, "above_eye"), (1, "below_eye")):
            idx = np.array([pair[pos] for pair in LID_PAIRS])
            dist2 = ((q[:, None, :] - q[None, idx, :]) ** 2).sum(-1)
            w = np.exp(-dist2 / (2 * 0.05**2))
            w *= self.side[:, None] == self.side[None, idx]
            w = w / np.maximum(1.0, w.sum(1, keepdims=True)) * self.regions[region][:, None]
            w[list(IRIS)] = 0.0
            out.append((idx, w))
        return out

    def _blink_field(self, d: np.ndarray | None = None) -> np.ndarray:
        """Closed lids: each upper-lid point meets its lower-lid partner 85 % of the way down
        (the lower lid rises the rest), from where the lids are with the displacement ``d``
        (face coordinates) applied: an eye held wide open (AU5, surprise) closes as fully as a
        relaxed one."""
        q = self.q if d is None else self.q + d
        (up, w_up), (lo, w_lo) = self._blink_w
        gap = q[lo] - q[up]
        return w_up @ (0.85 * gap) + w_lo @ (-0.15 * gap)

    def _lid_follow_field(self, gaze_down: float) -> np.ndarray:
        """The upper lids moved with a vertical gaze (face coordinates): as far as the iris moves,
        times ``LID_FOLLOW``; a look up raises them no further than AU5 at 1 does."""
        (_, w_up), _ = self._blink_w
        move = LID_FOLLOW * GAZE_TRAVEL * float(np.clip(gaze_down, -1.0, 1.0)) * self.iris_radius
        move = max(move, -AU_HANDLES["AU5"][0].up)
        out = np.zeros_like(self.q)
        out[:, 1] = w_up.sum(1) * move
        return out

    # -- evaluation ---------------------------------------------------------------------------
    def displace(self, params: dict[str, float] | np.ndarray, blink: float = 0.0,
                 head: tuple[float, float, float] = (0.0, 0.0, 0.0), gaze_down: float = 0.0) -> np.ndarray:
        """Mesh displacement in pixels, (478, 2), for rig parameters (``MOTION`` order or a dict),
        a blink amount (0 open .. 1 closed), a head pose (roll radians, dx, dy in IOD) and the
        gaze's vertical part (iris radii, down positive: the upper lids follow it, ``LID_FOLLOW``)."""
        if not isinstance(params, dict):
            params = dict(zip(MOTION, np.asarray(params, dtype=np.float64)))
        d = self.rest_field.copy()
        for au, v in params.items():
            if au in self.basis and v:
                d += float(np.clip(v, -0.25, AU_LIMITS.get(au, AU_CEILING))) * self.basis[au]
        d = self._even_lid_skin(d)
        if gaze_down:
            d += self._lid_follow_field(float(gaze_down))
        if blink:
            d += float(np.clip(blink, 0, 1)) * self._blink_field(d)
        d = self._no_lip_crossing(d)
        roll, dx, dy = head
        if roll or dx or dy:
            q = self.q + d
            c, s = np.cos(roll), np.sin(roll)
            rot = q @ np.array([[c, s], [-s, c]])
            d = rot - self.q + np.array([dx, dy])
        return d @ self.axes * self.iod  # face coords (IOD) -> pixel displacement

    def _no_lip_crossing(self, d: np.ndarray) -> np.ndarray:
        """Inner lips may close but not pass through each other (and lids likewise)."""
        for pairs in (INNER_LIP_PAIRS_ALL, LID_PAIRS):
            for up, lo in pairs:
                gap = (self.q[lo, 1] + d[lo, 1]) - (self.q[up, 1] + d[up, 1])
                if gap < 0:
                    d[up, 1] += gap / 2
                    d[lo, 1] -= gap / 2
        return d


def prototype_vector(category: str) -> np.ndarray:
    """The prototype of ``category`` as an ``EMOTION_AUS`` vector."""
    v = np.zeros(len(EMOTION_AUS))
    for au, x in PROTOTYPES.get(category, {}).items():
        v[EMOTION_AUS.index(au)] = x
    return v


def default_direction_model() -> DirectionVectorModel:
    """The face medium's direction vectors: each category's prototype in AU space; neutral = 0."""
    neutral = np.zeros(len(EMOTION_AUS))
    directions, lengths, centres = {}, {}, {"neutral": neutral}
    for cat in PROTOTYPES:
        v = prototype_vector(cat)
        n = float(np.linalg.norm(v))
        directions[cat], lengths[cat], centres[cat] = v / n, n, v
    model = DirectionVectorModel(
        neutral, directions, lengths, centres,
        meta={"medium": "face", "space": "FACS action-unit intensities", "names": list(EMOTION_AUS),
              "fit": "EMFACS prototypes (Ekman, Friesen & Hager 2002)"},
    )
    model.axes = model._fit_axes()
    return model


def _toward_midline_at_most(dx: np.ndarray, x: np.ndarray, share: float) -> np.ndarray:
    """Sideways moves ``dx`` (face coordinates) of points at ``x`` with any move toward the
    midline limited to ``share`` of the point's distance from it."""
    cap = share * np.abs(x)
    return np.where(-np.sign(x) * dx > cap, -np.sign(x) * cap, dx)
