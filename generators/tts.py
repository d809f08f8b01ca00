"""Offline text-to-speech shared by the media: the voices of Debian's flite (kal, kal16, awb, rms,
slt) and espeak-ng (several English accents and voice variants), and the sentence templates
(this project's own text) they speak.

The speech generator builds its synthetic corpus from them and the talking-head trainer learns
mouth motion from them; neither is specific to one medium, so they live here (a medium never
imports another).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
ESPEAK_VOICES = ("en-us", "en-us+f2", "en-gb+m3", "en-gb-scotland+f4", "en-029+m1", "en-us+f5",
                 "en-gb-x-rp+m7", "en-us+klatt2")

_SUBJECTS = ["the old man", "my sister", "a young teacher", "the driver", "our neighbour",
             "the little girl", "his brother", "the doctor", "a tired farmer", "the new student",
             "her father", "the captain", "my best friend", "the baker", "a quiet boy",
             "the manager", "your cousin", "the pilot", "an angry cat", "the children"]
_VERBS = ["opened", "carried", "painted", "found", "sold", "cleaned", "borrowed", "fixed",
          "watched", "lost", "brought", "moved", "ordered", "dropped", "counted", "wrapped"]
_OBJECTS = ["the heavy box", "a blue umbrella", "the kitchen window", "seven red apples",
            "the broken radio", "a letter from home", "the garden gate", "an old map",
            "the wooden chair", "twelve glass bottles", "the morning paper", "a warm blanket",
            "the silver key", "a bag of flour", "the last train ticket", "the yellow bicycle"]
_ENDINGS = ["", " before dinner", " after the storm", " on Monday morning", " near the river",
            " in the dark", " without a word", " at the station", " for the third time",
            " last night", " in front of everyone", " this afternoon"]
_QUESTIONS = ["did you really think it would be that easy", "where are you going at this hour",
              "is this the house you told me about", "why would anyone leave the door open",
              "can we talk about what happened yesterday", "who put the books on the floor"]
_STATEMENTS = ["i never said that she took the money", "we will meet again next week",
               "the weather is going to change tonight", "there is nothing left in the fridge",
               "it takes about an hour to get there", "they have been waiting since noon",
               "you can leave your coat by the door", "the results came in this morning",
               "nobody knew the answer to the question", "the meeting has been moved to friday"]


def sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct sentences from the templates (deterministic for a seed)."""
    rng = random.Random(seed)
    out: list[str] = []
    fixed = _QUESTIONS + _STATEMENTS
    rng.shuffle(fixed)
    seen = set()
    while len(out) < n:
        if fixed and rng.random() < 0.2:
            s = fixed.pop()
        else:
            s = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}{rng.choice(_ENDINGS)}"
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def tts_available() -> dict[str, bool]:
    return {"flite": shutil.which("flite") is not None, "espeak-ng": shutil.which("espeak-ng") is not None}


def synthesize_tts(text: str, voice: str, path: Path) -> None:
    """One sentence with one voice ("flite:kal", "espeak:en-us+f2") into a wav file."""
    engine, name = voice.split(":", 1)
    if engine == "flite":
        cmd = ["flite", "-voice", name, "-t", text, "-o", str(path)]
    elif engine == "espeak":
        cmd = ["espeak-ng", "-v", name, "-s", "155", "-w", str(path), text]
    else:
        raise ValueError(f"unknown TTS engine {engine!r}; accepted: flite, espeak")
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def default_voices() -> list[str]:
    have = tts_available()
    voices = [f"flite:{v}" for v in FLITE_VOICES] if have["flite"] else []
    voices += [f"espeak:{v}" for v in ESPEAK_VOICES] if have["espeak-ng"] else []
    if not voices:
        raise FileNotFoundError(
            "no text-to-speech engine found: install Debian's flite and espeak-ng "
            "(apt-get install flite espeak-ng) to build the synthetic speech corpus"
        )
    return voices
