"""The checks. Each module reads the catalog, image statistics and the shared kNN
graph, and returns per-image arrays; :mod:`vislint.pipeline` assembles them."""
