"""detect: a Trace -> impacts and roughness. Pure vectorised functions; imports ingest's types only."""
