"""`python -m core COMMAND …`: PromptLab's one command line (core/cli.py)."""
import sys

from core.cli import main

sys.exit(main())
