"""``parse_emotion``: the text forms a user can write, read into an ``EmotionSpec``.

Accepted forms (whitespace is free, case does not matter):

=====================================  =========================================================
``angry``                              a category or alias at intensity 1 (``joy`` = happy)
``angry@0.7``                          at intensity 0.7 (0 = neutral, 1 = full, up to 1.5)
``0.6*happy+0.4*surprised``            a mixture; weights are proportions (normalised to sum 1)
``(0.6*happy+0.4*surprised)@0.8``      a mixture at an intensity
``happy@0.8+surprised@0.4``            per-term intensities: contributions w_k * i_k add up
``vad(0.8,0.7,0.4)``                   a valence-arousal-dominance point, each in [-1, 1]
                                       (0 0 0 is neutral; no '@' after it)
``wistful``, ``furious@0.5``           free words, mapped through the lexicon or text embedding
``sad@0.8 -> happy@1.0 over 16 bars``  a curve: keyframes evenly spaced over a length
``sad at 0 -> calm at 4 -> happy at 16 bars``  a curve with explicit keyframe times
=====================================  =========================================================

Curve units: ``s``/``seconds``, ``bars``, ``beats``. Anything else raises ``ValueError`` with a
message that says what was wrong and what is accepted.
"""

from __future__ import annotations

import dataclasses
import math
import re

from conditioning.curves import UNIT_ALIASES, EmotionCurve
from conditioning.lexicon import resolve_word
from conditioning.spec import INTENSITY_MAX, EmotionSpec
from conditioning.vocabulary import NEUTRAL, canonical

MAX_TEXT_LENGTH = 1000

ACCEPTED = (
    "accepted: a category (angry), with an intensity (angry@0.7), a mixture "
    "(0.6*happy+0.4*surprised), vad(v,a,d), a free word (wistful), or a curve "
    "(sad@0.8 -> happy over 16 bars)"
)

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<arrow>->|→)|(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z][A-Za-z'\-]*)|(?P<sym>[()*+@,\-]))"
)


class _Tokens:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[tuple[str, str, int]] = []
        pos = 0
        stripped_end = len(text.rstrip())
        while pos < stripped_end:
            m = _TOKEN_RE.match(text, pos)
            if m is None or m.end() == pos:
                bad = text[pos:].lstrip()[:1]
                raise ValueError(f"unexpected character {bad!r} in emotion {text!r}; {ACCEPTED}")
            kind = m.lastgroup
            self.items.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        j = self.i + offset
        if j < len(self.items):
            kind, value, _ = self.items[j]
            return kind, value
        return None

    def next(self) -> tuple[str, str]:
        item = self.peek()
        if item is None:
            raise ValueError(f"emotion {self.text!r} ends too early; {ACCEPTED}")
        self.i += 1
        return item

    def accept(self, kind: str, value: str | None = None) -> str | None:
        item = self.peek()
        if item and item[0] == kind and (value is None or item[1].lower() == value):
            self.i += 1
            return item[1]
        return None

    def expect(self, kind: str, value: str | None = None, what: str = "") -> str:
        got = self.accept(kind, value)
        if got is None:
            item = self.peek()
            found = repr(item[1]) if item else "the end"
            raise ValueError(
                f"expected {what or value or kind} but found {found} in emotion {self.text!r}; "
                f"{ACCEPTED}"
            )
        return got

    @property
    def done(self) -> bool:
        return self.i >= len(self.items)


def _number(tokens: _Tokens, what: str) -> float:
    text = tokens.expect("num", what=what)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {text!r}")
    return value


def _signed_number(tokens: _Tokens, what: str) -> float:
    if tokens.accept("sym", "-") is not None:
        return -_number(tokens, what)
    tokens.accept("sym", "+")
    return _number(tokens, what)


def _intensity(tokens: _Tokens) -> float:
    value = _number(tokens, "an intensity after '@'")
    if value < 0 or value > INTENSITY_MAX:
        raise ValueError(
            f"intensity must be in [0, {INTENSITY_MAX}] (0 neutral, 1 full, above 1 exaggerated), "
            f"got {value:g}"
        )
    return value


class _Parser:
    def __init__(self, text: str, use_embedding: bool | None, plain: bool = False) -> None:
        self.plain = plain  # lexicon entries: category names only
        self.tokens = _Tokens(text)
        self.text = text
        self.use_embedding = use_embedding
        self.notes: list[str] = []

    # spec := vad | sum
    def spec(self) -> EmotionSpec:
        t = self.tokens
        nxt = t.peek()
        if nxt and nxt[0] == "name" and nxt[1].lower() == "vad" and t.peek(1) == ("sym", "("):
            return self.vad()
        weights, intensity = self.sum()
        return EmotionSpec(weights, intensity)

    def vad(self) -> EmotionSpec:
        t = self.tokens
        t.expect("name", "vad")
        t.expect("sym", "(")
        values = [_signed_number(t, "a valence value")]
        for what in ("an arousal value", "a dominance value"):
            t.expect("sym", ",", what="','")
            values.append(_signed_number(t, what))
        t.expect("sym", ")", what="')' closing vad(v,a,d)")
        for name, v in zip(("valence", "arousal", "dominance"), values):
            if not -1.0 <= v <= 1.0:
                raise ValueError(f"vad(v,a,d): {name} must be in [-1, 1], got {v:g}")
        spec = EmotionSpec.from_vad(tuple(values))
        if t.peek() == ("sym", "@"):
            raise ValueError(
                "vad(v,a,d) is a point, not a direction: write the point itself, without '@' "
                "(a milder point lies closer to vad(0,0,0))"
            )
        self.notes.append(f"vad({','.join(f'{v:g}' for v in values)}) ~ {spec.mixture_string()}")
        return spec

    # sum := term ('+' term)*  ->  (weights, intensity) of the combined mixture
    def sum(self) -> tuple[dict[str, float], float]:
        terms = [self.term()]
        while self.tokens.accept("sym", "+") is not None:
            terms.append(self.term())
        total_p = sum(p for p, _, _ in terms)
        contrib: dict[str, float] = {}
        mix: dict[str, float] = {}
        for p, weights, intensity in terms:
            for k, w in weights.items():
                mix[k] = mix.get(k, 0.0) + (p / total_p) * w
                if k != NEUTRAL:
                    contrib[k] = contrib.get(k, 0.0) + (p / total_p) * w * intensity
        total = sum(contrib.values())
        if total > 0:  # contributions w_k * i_k add up; neutral only dilutes
            return {k: c / total for k, c in contrib.items() if c > 0}, total
        # Everything at intensity 0: keep the named mixture ("happy@0" stays happy).
        named = {k: w for k, w in mix.items() if k != NEUTRAL}
        if not named:
            return {NEUTRAL: 1.0}, 0.0
        norm = sum(named.values())
        return {k: w / norm for k, w in named.items()}, 0.0

    # term := [num '*'] atom ['@' num]
    def term(self) -> tuple[float, dict[str, float], float]:
        t = self.tokens
        proportion = 1.0
        if t.peek() and t.peek()[0] == "num":
            proportion = _number(t, "a weight")
            if proportion <= 0:
                raise ValueError(f"mixture weights must be > 0, got {proportion:g}")
            t.expect("sym", "*", what="'*' after a weight (as in 0.6*happy)")
        weights, intensity = self.atom()
        if t.accept("sym", "@") is not None:
            intensity = _intensity(t)
        return proportion, weights, intensity

    # atom := NAME | '(' sum ')'
    def atom(self) -> tuple[dict[str, float], float]:
        t = self.tokens
        if t.accept("sym", "(") is not None:
            result = self.sum()
            t.expect("sym", ")", what="')'")
            return result
        item = t.peek()
        if item is None or item[0] != "name":
            found = repr(item[1]) if item else "the end"
            raise ValueError(
                f"expected an emotion name but found {found} in {self.text!r}; {ACCEPTED}"
            )
        word = t.next()[1]
        if word.lower() in ("over", "at", "vad"):
            raise ValueError(
                f"expected an emotion name but found {word!r} in {self.text!r}; {ACCEPTED}"
            )
        name = canonical(word)
        if self.plain and name != word.lower():
            raise ValueError(f"lexicon entries use category names only, got {word!r}")
        if name is not None:
            if name != word.lower():
                self.notes.append(f"'{word.lower()}' is an alias of {name}")
            return ({name: 1.0}, 0.0 if name == NEUTRAL else 1.0)
        mapping = resolve_word(word, use_embedding=self.use_embedding)
        if mapping.note:
            self.notes.append(mapping.note)
        spec = _parse_plain(mapping.spec_text)
        return (dict(spec.weights), spec.intensity)

    # keyframe := spec ['at' num [unit]]
    def keyframe(self) -> tuple[EmotionSpec, float | None, str | None]:
        spec = self.spec()
        time, unit = None, None
        if self.tokens.accept("name", "at") is not None:
            time = _number(self.tokens, "a keyframe time after 'at'")
            unit = self._unit(optional=True)
        return spec, time, unit

    def _unit(self, optional: bool) -> str | None:
        item = self.tokens.peek()
        if item and item[0] == "name" and item[1].lower() in UNIT_ALIASES:
            self.tokens.next()
            return UNIT_ALIASES[item[1].lower()]
        if optional:
            return None
        found = repr(item[1]) if item else "the end"
        raise ValueError(f"expected a unit (s, bars, beats) but found {found} in {self.text!r}")

    def parse(self) -> EmotionSpec:
        t = self.tokens
        if t.done:
            raise ValueError(f"empty emotion; {ACCEPTED}")
        frames = [self.keyframe()]
        while t.accept("arrow") is not None:
            frames.append(self.keyframe())
        over = None
        if t.accept("name", "over") is not None:
            over = _number(t, "a length after 'over'")
            over_unit = self._unit(optional=True) or "s"
        if not t.done:
            raise ValueError(f"unexpected {t.peek()[1]!r} in emotion {self.text!r}; {ACCEPTED}")
        specs = [f[0] for f in frames]
        if len(frames) == 1:
            if frames[0][1] is not None or over is not None:
                raise ValueError(
                    f"'at' and 'over' belong to curves with two or more keyframes "
                    f"(sad -> happy over 8 s); got {self.text!r}"
                )
            return dataclasses.replace(specs[0], source=self.text, notes=tuple(self.notes))
        times = [f[1] for f in frames]
        units = {f[2] for f in frames if f[2] is not None}
        if over is not None:
            if any(x is not None for x in times):
                raise ValueError("use either 'over N unit' or explicit 'at' times, not both")
            if over <= 0:
                raise ValueError(f"a curve's length must be > 0, got {over:g}")
            n = len(specs)
            times = [over * i / (n - 1) for i in range(n)]
            unit, evenly = over_unit, True
        else:
            if any(x is None for x in times):
                raise ValueError(
                    "a curve needs 'over N unit' (sad -> happy over 8 s) or a time on every "
                    "keyframe (sad at 0 -> happy at 8 s)"
                )
            if len(units) > 1:
                raise ValueError(f"a curve uses one time unit, got {', '.join(sorted(units))}")
            unit, evenly = (units.pop() if units else "s"), False
        curve = EmotionCurve(list(zip(times, specs)), unit=unit, evenly_spaced=evenly)
        return dataclasses.replace(specs[0], curve=curve, source=self.text, notes=tuple(self.notes))


def _parse_plain(text: str) -> EmotionSpec:
    """Parse a spec written only with category names (lexicon entries); no word mapping."""
    parser = _Parser(text, use_embedding=False, plain=True)
    spec = parser.spec()
    if not parser.tokens.done:
        raise ValueError(f"bad lexicon entry {text!r}")
    return spec


def parse_emotion(
    text: str | EmotionSpec, intensity: float | None = None, *, use_embedding: bool | None = None
) -> EmotionSpec:
    """Read an emotion from text.

    Args:
        text: see the module docstring for the accepted forms; an ``EmotionSpec`` passes through.
        intensity: if given, replaces the spec's intensity (the mixture is kept).
        use_embedding: allow free words to be mapped by text embedding (default: when installed).

    Returns:
        An ``EmotionSpec``; ``spec.notes`` says how aliases and free words were mapped, and
        ``spec.curve`` is set for curves (the spec itself is the curve's first keyframe).

    Raises:
        ValueError: for anything that is not an accepted form, with what was wrong and what is
            accepted.

    Example:
        >>> parse_emotion("angry@0.7").to_string()
        'angry@0.7'
        >>> parse_emotion("joy").notes
        ("'joy' is an alias of happy",)
    """
    if isinstance(text, EmotionSpec):
        spec = text
    else:
        if not isinstance(text, str):
            raise ValueError(f"an emotion is text like 'angry@0.7', got {type(text).__name__}")
        if len(text) > MAX_TEXT_LENGTH:
            raise ValueError(f"emotion text is longer than {MAX_TEXT_LENGTH} characters")
        if not text.strip():
            raise ValueError(f"empty emotion; {ACCEPTED}")
        spec = _Parser(text, use_embedding).parse()
    if intensity is not None:
        if (
            isinstance(intensity, bool)
            or not isinstance(intensity, (int, float))
            or not (0 <= float(intensity) <= INTENSITY_MAX)
        ):
            raise ValueError(
                f"intensity must be a number in [0, {INTENSITY_MAX}], got {intensity!r}"
            )
        spec = spec.with_intensity(float(intensity))
    return spec
