"""detforge: build large unified object-detection datasets and measure what they are worth."""

__version__ = "0.1.0"
