"""Audio decoding with PyAV: anything ffmpeg reads becomes 16 kHz mono float32."""

from __future__ import annotations

import logging
import os
import re

import numpy as np

from .engines import SAMPLE_RATE

log = logging.getLogger("jarvis_gpu_server.audio")


class AudioError(Exception):
    status = 415
    code = "unsupported_media"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UndecodableAudio(AudioError):
    status = 415
    code = "unsupported_media"


class EmptyAudio(AudioError):
    status = 422
    code = "empty_audio"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    # PyAV appends the file path ("...: '/tmp/x'"); the client never needs our paths.
    return text.split(": '/")[0].rstrip(";: ")


def decode_audio(path: str) -> np.ndarray:
    """Decode the first audio stream of ``path`` to mono float32 at 16 kHz.

    Raises EmptyAudio (422) for zero-byte files and streams without a single sample,
    UndecodableAudio (415) with the decoder's reason for everything ffmpeg cannot read.
    """
    if os.path.getsize(path) == 0:
        raise EmptyAudio("the uploaded file is empty (0 bytes)")
    import av

    try:
        container = av.open(path, mode="r", metadata_errors="ignore")
    except Exception as exc:  # av.error.FFmpegError and friends
        raise UndecodableAudio(f"could not decode the upload as audio: {_reason(exc)}") from None
    try:
        if not container.streams.audio:
            raise UndecodableAudio("the upload has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        decoded = 0
        try:
            for frame in container.decode(stream):
                frame.pts = None
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    decoded += chunk.size
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except Exception as exc:
            if decoded == 0:
                raise UndecodableAudio(f"could not decode the audio stream: {_reason(exc)}") from None
            # Like ffmpeg itself, keep what decoded before a damaged tail.
            log.warning("audio decoding stopped early after %.1f s: %s", decoded / SAMPLE_RATE, _reason(exc))
    finally:
        container.close()
    audio = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    if audio.size == 0:
        raise EmptyAudio("the audio is empty: no samples could be decoded (zero-length audio)")
    return audio
