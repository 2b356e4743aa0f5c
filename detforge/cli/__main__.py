"""``python -m detforge.cli``."""

from detforge.cli import main

main()
