"""Card preview page (in progress)."""

from __future__ import annotations

from flask import Flask

from cds_service.config import Settings


def init_app(app: Flask, settings: Settings) -> None:
    if not settings.preview:
        return
