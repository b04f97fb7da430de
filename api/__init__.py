"""api: the HTTP face of bump (FastAPI), thin routes over bump's service functions."""
