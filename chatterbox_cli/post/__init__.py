"""After synthesis: join, loudness, watermark, and the runaway guard."""
