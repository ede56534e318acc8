"""``python -m coincast`` is the ``coincast`` command."""

from coincast.cli.main import main

main()
