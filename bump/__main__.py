"""``python -m bump ...``: the same command line as the ``bump`` script."""

from bump.cli.main import main

raise SystemExit(main())
