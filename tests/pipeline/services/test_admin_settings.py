"""CUTOVER_SERVICES: a bad entry is named, with what is wrong and what is accepted.

Before, every bad URL (wrong scheme, no scheme, not a string) was reported as
"expected a JSON object", which sends the reader to the JSON rather than to the URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.admin.settings import AdminSettings
from pipeline.common.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[3]


def _error(value: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(AdminSettings, {"CUTOVER_SERVICES": value})
    return str(info.value)


def test_a_wrong_scheme_is_named_with_the_accepted_ones() -> None:
    message = _error('{"storage": "http://127.0.0.1:8004", "legacy": "ftp://10.0.0.5:21"}')
    assert message.startswith("CUTOVER_SERVICES=")
    assert "service 'legacy': base URL 'ftp://10.0.0.5:21' has scheme 'ftp'" in message
    assert "accepted schemes: http, https" in message
    assert "expected a JSON object" not in message
    assert "\n" not in message


def test_a_url_without_a_scheme_says_so() -> None:
    message = _error('{"storage": "127.0.0.1:8004"}')
    assert "service 'storage': base URL '127.0.0.1:8004' has no scheme" in message
    assert "accepted schemes: http, https" in message


def test_a_url_that_is_not_a_string_is_named() -> None:
    message = _error('{"storage": 8004}')
    assert "service 'storage': base URL must be a string, got int 8004" in message


def test_a_value_that_is_not_an_object_still_says_a_json_object_is_expected() -> None:
    assert _error('["http://127.0.0.1:8004"]').endswith(": expected a JSON object")
    assert _error("http://127.0.0.1:8004").endswith(": expected a JSON object")


def test_good_urls_load_without_their_trailing_slash() -> None:
    settings = load_settings(AdminSettings, {
        "CUTOVER_SERVICES": '{"storage": "http://127.0.0.1:8004/", "a": "https://a.example"}'})
    assert settings.services == {"storage": "http://127.0.0.1:8004", "a": "https://a.example"}


def test_admin_api_refuses_to_start_with_one_line_naming_the_scheme(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUTOVER_PORT": "1",
           "CUTOVER_DATA_DIR": str(tmp_path), "CUTOVER_SERVICES": '{"storage": "ws://x:1"}'}
    proc = subprocess.run([sys.executable, "-m", "pipeline.admin"], env=env, cwd=tmp_path,
                          check=False,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        """CUTOVER_SERVICES='{"storage":"ws://x:1"}': service 'storage': base URL 'ws://x:1' """
        """has scheme 'ws'; accepted schemes: http, https """
        """(e.g. {"storage": "http://127.0.0.1:8004"})""")
    assert "Traceback" not in proc.stderr
