"""The Umami simulator: `server` (endpoints and validation per version), `traffic` (what it holds), `answers`
(every aggregate, per version)."""

from .server import DEMO_API_KEY, DEMO_PASSWORD, DEMO_USERNAME, UmamiSimulator, demo_plan
from .traffic import UmamiData

__all__ = [
    "DEMO_API_KEY",
    "DEMO_PASSWORD",
    "DEMO_USERNAME",
    "UmamiData",
    "UmamiSimulator",
    "demo_plan",
]
