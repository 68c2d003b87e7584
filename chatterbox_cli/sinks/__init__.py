"""Where finished audio goes: files and streams, provenance, manifests, verification."""
