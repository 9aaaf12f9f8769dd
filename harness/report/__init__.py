"""The HTML report: one self-contained page per run (from its run.json), and an index."""

from harness.errors import ReportError
from harness.report.render import (
                                   load_run,
                                   render_index,
                                   render_run,
                                   render_run_dir,
                                   render_run_html,
)

__all__ = ["ReportError", "load_run", "render_index", "render_run", "render_run_dir",
           "render_run_html"]
