"""The engine: groups -> tokens -> audio, one group at a time or batched."""
