"""``python -m deploystream`` = the ``deploystream`` command."""

from deploystream.cli import main

main()
