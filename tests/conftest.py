"""Shared pytest setup: make the ``nnscons`` package (under site_scons/) importable, locate shared models."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "site_scons"))

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
