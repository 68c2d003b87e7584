"""How and where the model runs (device, threads, dtype), typed errors, atomic files, metrics:
the bottom layer, importing nothing else of ours."""
