"""`chatterbox serve`: the engine behind HTTP and WebSocket (imported only by that command)."""
