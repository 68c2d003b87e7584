"""S3Gen over upstream modules: batched rendering and token-level streaming."""
