"""Django for the benchmark scripts run as `python bench/<script>.py`: the project on the path and
set up, on a throwaway SQLite database unless DATABASE_URL names one."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup(temp_prefix: str) -> Path:
    """Set Django up once; returns the project root."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix=temp_prefix)
    import django

    django.setup()
    return ROOT
