"""A headless Chromium that renders the driver's page, installed on first use by
hack/install-chromium.sh (the test is skipped where it cannot be)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")


def chromium_or_skip() -> Path:
    if not CHROMIUM.exists():
        result = subprocess.run(
            [str(ROOT / "hack" / "install-chromium.sh")], capture_output=True, text=True
        )
        if result.returncode != 0 or not CHROMIUM.exists():
            pytest.skip(f"chromium is missing and could not be installed: {result.stderr[-500:]}")
    return CHROMIUM


def chromium(url: str, *flags: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="kubestream-chromium-")
    try:
        return subprocess.run(
            [
                str(chromium_or_skip()),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1400,1150",
                "--virtual-time-budget=5000",
                *flags,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
