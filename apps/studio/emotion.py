"""The one emotion control every tab of the studio shows, and what its values mean.

The control's values (``CONTROL_FIELDS``, in this order) become one emotion text that the job
layer parses, so the page, ``gradio_client`` and ``affect`` all speak the same language:

- ``category``:  ``angry@0.8`` (the category at the intensity slider's value)
- ``mixture``:   ``(0.7*happy+0.3*surprised)@0.8`` (two categories, the balance is the first's share)
- ``curve``:     the curve text as written (``sad@0.8 -> angry@0.8 over 3 s``; intensities per keyframe)
- ``words``:     ``wistful@0.8`` (free words at the slider's intensity; ``furious@0.5`` as written)
- ``reference``: what a recognizer reads from an uploaded clip, photo, MIDI file or video, as a
  mixture of its two strongest categories at the strength read, times the slider (1 = as read):
  cross-modal transfer through the shared space (a voice's reading drives music or a face).

The functions here import no Gradio: ``build_control`` (in ``apps.studio.app``) makes the components.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.common import JobError
from conditioning import CATEGORIES, INTENSITY_MAX, NEUTRAL, parse_emotion

MODES = ("category", "mixture", "curve", "words", "reference")
MODE_LABELS = {"category": "Category", "mixture": "Mixture of two", "curve": "Curve",
               "words": "Free words", "reference": "From a reference"}
#: the control's values, in the order every endpoint takes them after its own inputs
CONTROL_FIELDS = ("emotion_mode", "category", "category_b", "balance", "intensity", "curve", "words",
                  "reference")
DEFAULT_CONTROL = {"emotion_mode": "category", "category": "angry", "category_b": "sad", "balance": 0.7,
                   "intensity": 0.8, "curve": "sad@0.8 -> angry@0.8 over 3 s", "words": "wistful",
                   "reference": None}
#: a reading whose two strongest categories hold less than this is read as neutral
NEUTRAL_BELOW = 0.05
#: a second category under this share of the first is left out of the mixture
SECOND_SHARE = 0.1


def fmt(x: float) -> str:
    """A number as the parser's canonical text writes it (0.8, 1, 0.25)."""
    return f"{float(x):.3f}".rstrip("0").rstrip(".") or "0"


@dataclass
class Control:
    """The control's values (what the page or an API caller sends)."""

    emotion_mode: str = "category"
    category: str | None = "angry"
    category_b: str | None = "sad"
    balance: float = 0.7
    intensity: float = 0.8
    curve: str | None = None
    words: str | None = None
    reference: str | None = None

    @classmethod
    def of(cls, values) -> Control:
        return cls(*values)

    def check(self) -> None:
        if self.emotion_mode not in MODES:
            raise JobError(f"emotion mode must be one of {', '.join(MODES)}, got {self.emotion_mode!r}")
        try:
            intensity = float(self.intensity)
        except (TypeError, ValueError):
            raise JobError(f"intensity must be a number in [0, {INTENSITY_MAX:g}], got "
                           f"{self.intensity!r}") from None
        if not 0.0 <= intensity <= INTENSITY_MAX:
            raise JobError(f"intensity must be a number in [0, {INTENSITY_MAX:g}], got {intensity:g}")
        for name in ("category", "category_b"):
            value = getattr(self, name)
            if self.emotion_mode in ("category", "mixture") and value not in CATEGORIES:
                if name == "category_b" and self.emotion_mode == "category":
                    continue
                raise JobError(f"{name} must be one of {', '.join(CATEGORIES)}, got {value!r}")


def control_text(c: Control) -> str:
    """The emotion text a control means (not for ``reference``, which needs a reading first)."""
    c.check()
    i = fmt(c.intensity)
    if c.emotion_mode == "category":
        return NEUTRAL if c.category == NEUTRAL else f"{c.category}@{i}"
    if c.emotion_mode == "mixture":
        b = min(1.0, max(0.0, float(c.balance)))
        if c.category == c.category_b or b >= 0.995 or b <= 0.005:
            one = c.category if b > 0.005 or c.category == c.category_b else c.category_b
            return NEUTRAL if one == NEUTRAL else f"{one}@{i}"
        return f"({fmt(b)}*{c.category}+{fmt(1 - b)}*{c.category_b})@{i}"
    if c.emotion_mode == "curve":
        text = (c.curve or "").strip()
        if not text:
            raise JobError("write a curve, e.g. 'sad@0.8 -> angry@0.8 over 3 s' (keyframes in s, "
                           "bars or beats)")
        return text
    if c.emotion_mode == "words":
        text = (c.words or "").strip()
        if not text:
            raise JobError("write a word for the emotion, e.g. 'wistful' or 'furious'")
        return text if "@" in text or "->" in text else f"{text}@{i}"
    raise JobError("the emotion is taken from a reference: upload a clip, photo, MIDI file or video")


def reading_text(probabilities: dict[str, float], scale: float = 1.0) -> str:
    """A reading's probabilities as an emotion text: the mixture of its two strongest non-neutral
    categories, at their summed probability (the share of the reading that is not neutral, as
    ``Reading.as_spec`` counts it) times ``scale``, capped at the intensity cap.

    >>> reading_text({"neutral": 0.2, "angry": 0.6, "sad": 0.15, "happy": 0.05})
    '(0.8*angry+0.2*sad)@0.75'
    >>> reading_text({"neutral": 0.98, "angry": 0.01, "sad": 0.01})
    'neutral'
    """
    ranked = sorted(((k, float(p)) for k, p in probabilities.items() if k != NEUTRAL),
                    key=lambda kv: -kv[1])
    (a, pa), (b, pb) = (ranked + [(NEUTRAL, 0.0), (NEUTRAL, 0.0)])[:2]
    if pa + pb < NEUTRAL_BELOW:
        return NEUTRAL
    if pb < SECOND_SHARE * pa:
        return f"{a}@{fmt(min(INTENSITY_MAX, pa * scale))}"
    total = pa + pb
    wa = round(pa / total, 2)
    return f"({fmt(wa)}*{a}+{fmt(1 - wa)}*{b})@{fmt(min(INTENSITY_MAX, total * scale))}"


def describe_lines(text: str) -> list[str]:
    """How ``text`` parses, in the lines ``affect emotions TEXT`` prints (spec, weights, VAD,
    the mapping of words, a curve sampled), or a JobError line."""
    from apps.jobs import EmotionsJob, run

    return run(EmotionsJob([text])).lines


def check_text(text: str) -> None:
    """The job layer's one line when ``text`` is not an emotion."""
    try:
        parse_emotion(text)
    except ValueError as exc:
        raise JobError(str(exc)) from None
