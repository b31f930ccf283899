"""jarvis-gpu-server: the bundled transcription server of the jarvis CLI."""

__version__ = "0.1.0"
