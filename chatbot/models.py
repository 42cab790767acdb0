"""Old entry point of the offline e5 export (``python -m chatbot.models export-e5 DIR``); see chatbot.e5export."""
import sys

from chatbot.e5export import *  # noqa: F401,F403 -- the public names scripts imported from here
from chatbot.e5export import main

if __name__ == "__main__":
    sys.exit(main())
