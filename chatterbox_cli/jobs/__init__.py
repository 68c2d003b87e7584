"""Many texts to many files: batch inputs, the local runner, the Ray executor."""
