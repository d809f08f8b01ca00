"""The studio's pictures, drawn with matplotlib's object API (no pyplot: safe across the
server's threads): before/after spectrograms, a piano roll, readings on the valence-arousal
plane, and the intensity ladder's asked-vs-read plot. Each writes a PNG and returns its path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TRACK_COLOURS = ("#c0392b", "#2e86c1", "#7f8c8d", "#27ae60")
TRACK_NAMES = ("melody", "accompaniment", "bass", "other")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, format="png")
    return path


def _log_spectrogram(wav: np.ndarray, sr: int, top_hz: float = 8000.0):
    from scipy.signal import spectrogram

    nper = int(0.025 * sr)
    f, t, s = spectrogram(wav.astype(np.float64), fs=sr, nperseg=nper, noverlap=nper - int(0.010 * sr),
                          window="hann", scaling="spectrum")
    keep = f <= min(top_hz, sr / 2)
    return f[keep], t, 10 * np.log10(s[keep] + 1e-12)


def spectrograms(before: tuple[np.ndarray, int], after: tuple[np.ndarray, int], path: str | Path,
                 titles: tuple[str, str] = ("before: the source recording", "after: converted")) -> Path:
    """Two spectrograms, one above the other, on one colour scale (dB), up to 8 kHz."""
    fig = _figure(8, 5)
    axes = fig.subplots(2, 1, sharex=True)
    specs = [_log_spectrogram(w, sr) for w, sr in (before, after)]
    top = max(float(s.max()) for _, _, s in specs)
    for ax, (f, t, s), title in zip(axes, specs, titles):
        mesh = ax.pcolormesh(t, f / 1000, s, shading="auto", cmap="magma", vmin=top - 80, vmax=top)
        ax.set_title(title, fontsize=10, loc="right")
        ax.set_ylabel("kHz")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(mesh, ax=list(axes), label="dB", shrink=0.8)
    return _save(fig, path)


def piano_roll(notes, num_bars: int, tempos: list[float] | None, path: str | Path, title: str = "") -> Path:
    """The piece's notes on the sixteenth-note grid (x: bars), coloured by track, with the tempo
    of each bar along the top."""
    from generators.music.representation import STEPS_PER_BAR

    fig = _figure(10, 4)
    ax = fig.subplots()
    pitches = [n.pitch for n in notes] or [60]
    for track in sorted({n.track for n in notes}):
        bars = [(n.start / STEPS_PER_BAR, n.length / STEPS_PER_BAR) for n in notes if n.track == track]
        ys = [n.pitch for n in notes if n.track == track]
        colour = TRACK_COLOURS[track % len(TRACK_COLOURS)]
        for (x, w), y in zip(bars, ys):
            ax.add_patch(_rect(x, y - 0.4, w, 0.8, colour))
        ax.plot([], [], color=colour, lw=6, label=TRACK_NAMES[track] if track < len(TRACK_NAMES) else f"track {track}")
    for b in range(num_bars + 1):
        ax.axvline(b, color="#dddddd", lw=0.6, zorder=0)
    ax.set_xlim(0, num_bars)
    ax.set_ylim(min(pitches) - 2, max(pitches) + (5 if tempos else 2))
    ax.set_xlabel("bar")
    ax.set_ylabel("MIDI pitch")
    if tempos:
        step = max(1, num_bars // 16)
        for b in range(0, num_bars, step):
            ax.text(b + 0.05, max(pitches) + 2.5, f"{tempos[b]:.0f}", fontsize=7, color="#555555")
    ax.set_title(title + ("  (tempo in BPM along the top)" if tempos else ""), fontsize=10, loc="left")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _rect(x, y, w, h, colour):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, facecolor=colour, edgecolor="none", alpha=0.85)


def va_plane(readings: list[tuple[str, float | None, float | None]], path: str | Path,
             title: str = "readings on the valence-arousal plane") -> Path:
    """Readings ``(label, valence, arousal)`` as points on the plane the recognizers read in, with
    the nine categories' anchors for orientation."""
    from conditioning import CATEGORIES
    from evaluators.recognizers.base import va_plane as anchors

    fig = _figure(5.5, 5)
    ax = fig.subplots()
    a = anchors()
    ax.scatter(a[:, 0], a[:, 1], color="#bbbbbb", s=20, zorder=1)
    for k, (v, ar) in zip(CATEGORIES, a):
        ax.annotate(k, (v, ar), fontsize=8, color="#888888", xytext=(3, 3), textcoords="offset points")
    colours = ["#c0392b", "#2e86c1", "#27ae60", "#8e44ad", "#d35400", "#16a085"]
    for i, (label, v, ar) in enumerate(readings):
        if v is None or ar is None:
            continue
        ax.scatter([v], [ar], s=70, color=colours[i % len(colours)], zorder=3, label=label)
    ax.axhline(0, color="#dddddd", lw=0.8, zorder=0)
    ax.axvline(0, color="#dddddd", lw=0.8, zorder=0)
    ax.set_xlim(-1.15, 1.15)
    ax.set_ylim(-1.15, 1.15)
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    ax.set_title(title, fontsize=10, loc="left")
    if any(v is not None for _, v, _ in readings):
        ax.legend(loc="lower left", fontsize=7)
    return _save(fig, path)


def ladder(asked: list[float], target: str, series: dict[str, list[float]],
           va_read: dict[str, list[float | None]], va_asked: dict[str, list[float]], path: str | Path,
           title: str) -> Path:
    """Asked vs read along the intensity ladder: P(target) per reading (left), and valence and
    arousal read against those the spec asks for (right)."""
    fig = _figure(10, 4.6)
    left, right = fig.subplots(1, 2)
    styles = ["-o", "--s", ":^"]
    for (label, ys), style in zip(series.items(), styles):
        left.plot(asked, ys, style, label=label)
    left.set_xlabel("intensity asked")
    left.set_ylabel(f"P({target}) read")
    left.set_ylim(-0.02, 1.02)
    left.set_title(f"{title}: P({target}) read", fontsize=10, loc="left")
    left.legend(fontsize=8, loc="upper left")
    for axis, colour in (("valence", "#2e86c1"), ("arousal", "#c0392b")):
        ys = va_read.get(axis) or []
        if any(y is not None for y in ys):
            right.plot(asked, [np.nan if y is None else y for y in ys], "-o", color=colour,
                       label=f"{axis} read")
        if axis in va_asked:
            right.plot(asked, va_asked[axis], ":", color=colour, label=f"{axis} asked (spec)")
    right.set_xlabel("intensity asked")
    right.set_ylim(-1.05, 1.05)
    right.axhline(0, color="#dddddd", lw=0.8)
    right.set_title("valence and arousal: asked (spec) vs read", fontsize=10, loc="left")
    right.legend(fontsize=7, loc="lower left")
    return _save(fig, path)
