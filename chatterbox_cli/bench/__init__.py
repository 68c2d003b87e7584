"""`chatterbox bench`: every mode measured the same way, upstream as the baseline."""
