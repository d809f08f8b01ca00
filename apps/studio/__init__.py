"""``affect studio``: a Gradio page on the job layer (``apps.jobs``). Tabs for Voice, Music, Face,
Scene, Read and the intensity ladder share one emotion control and one ``Models``; every result
comes with the recognizers' reading and a provenance record; every event is named for
``gradio_client``. Needs the ``[studio]`` extra (gradio); nothing here is imported by the rest of
the package, and ``StudioJob`` imports gradio only when it runs.

Example:
    >>> from apps.studio import StudioJob
    >>> job = StudioJob(port=7861)  # then run(job) serves until Ctrl-C  # doctest: +SKIP
"""

from __future__ import annotations

from apps.studio.job import StudioJob

__all__ = ["StudioJob"]
