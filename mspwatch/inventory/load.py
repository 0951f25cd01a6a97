"""Reading ``inventory.yml``: every error names the file and the field."""

from __future__ import annotations

from pathlib import Path

from mspwatch.common.config import load_model

from .model import Inventory


def load_inventory(path: Path) -> Inventory:
    """Load and validate an inventory file, raising ``ConfigError`` with ``file: field: message``."""
    return load_model(Inventory, path)
