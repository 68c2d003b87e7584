"""Text in, sentence groups out: segmenting per language."""
