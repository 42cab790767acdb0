"""`python -m ingest faq FILE…` / `python -m ingest docs PATH…`."""
import sys

from ingest.cli import main

sys.exit(main())
