"""T3 decode loops over upstream modules (one per backbone) and batched sampling."""
