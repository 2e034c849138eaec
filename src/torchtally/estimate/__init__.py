"""Reasoning over a report: the hardware catalog and calibration, and roofline time per
operator. Imports the report and formulas, never the engine."""

from .apply import estimate_time
from .calibrate import calibrate
from .catalog import hardware, hardware_names
from .hardware import Hardware

__all__ = ["Hardware", "calibrate", "estimate_time", "hardware", "hardware_names"]
