"""``python -m bench``."""

from bench.runner import main

main()
