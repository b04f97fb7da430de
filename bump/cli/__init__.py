"""The ``bump`` command line: one module per subcommand, registered in :mod:`bump.cli.main`."""
