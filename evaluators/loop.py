"""The former home of the music loop and the report writer, kept so that existing imports keep
working: the music loop is ``evaluators.loop_music``, the report writer shared by every loop
``evaluators.report``.
"""

from evaluators.loop_music import (  # noqa: F401
    MUSIC_TARGETS,
    MUSIC_THRESHOLDS,
    evaluate_files,
    evaluate_music,
    read_file_labels,
)
from evaluators.report import (  # noqa: F401
    figure_png,
    html_page,
    html_table,
    render_html,
    render_section,
    write_report,
)
from evaluators.report import figure_png as _figure_png  # noqa: F401
from evaluators.report import write_report as _write_report  # noqa: F401
