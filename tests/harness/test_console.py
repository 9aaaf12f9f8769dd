"""Messages reach a pipe or a CI log whole: nothing the harness prints is hard-wrapped."""

from __future__ import annotations

import io
import re
from pathlib import Path

import harness
from harness.console import make_console

_ROOT = Path(harness.__file__).parent


def test_a_long_message_is_one_line_outside_a_terminal() -> None:
    out = io.StringIO()
    console = make_console(file=out, width=40)  # narrower than the message: it must not wrap
    message = "error: " + "/very/long/path" * 8 + ": not a directory; give the run's directory"
    console.print(message)
    assert out.getvalue() == message + "\n"


def test_every_console_of_the_harness_comes_from_make_console() -> None:
    # A bare Console() wraps at 80 columns outside a TTY: that is the defect this rule prevents.
    offenders = [
        f"{path.relative_to(_ROOT.parent)}:{n}"
        for path in _ROOT.rglob("*.py") if path.name != "console.py"
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"(?<![\w.])Console\(", line)
    ]
    assert not offenders, f"make a console with harness.console.make_console: {offenders}"
