"""``python -m chatbot.e5export export-e5 DIR [--force] [--quiet]``."""
import sys

from chatbot.e5export.cli import main

sys.exit(main())
