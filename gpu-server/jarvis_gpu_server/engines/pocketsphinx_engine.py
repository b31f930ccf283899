"""PocketSphinx 5: CPU only, English, ships its own model (no download).

Meant for smoke tests, CI and machines with no GPU and no network; it is not accurate.
Long audio is cut into speech regions with PocketSphinx's voice-activity ``Endpointer``;
each region is decoded as one utterance, and its words (``Decoder.seg()``, 100 frames/s)
are grouped into sentence-sized segments at pauses.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from . import SAMPLE_RATE, EngineInfo, EngineResult, EngineSpec, EngineUnavailable, RequestError, Segment, TranscribeOptions, Word

log = logging.getLogger("jarvis_gpu_server.engines.pocketsphinx")

ENGLISH = {"en", "en-us", "en_us", "english"}
ALTERNATE = re.compile(r"\(\d+\)$")

# Segment grouping: a new segment starts at a long pause, at a shorter pause once the
# segment is long, and in any case before it grows past MAX_SEGMENT seconds.
LONG_PAUSE = 0.6
SHORT_PAUSE = 0.15
SOFT_LIMIT = 8.0
MAX_SEGMENT = 15.0


def is_filler(token: str) -> bool:
    """<s>, </s>, <sil>, [NOISE], [SPEECH], ++GARBAGE++ and friends carry no words."""
    return not token or token[0] in "<[+" or token.endswith("]")


def clean_word(token: str) -> str:
    return ALTERNATE.sub("", token)


class PocketsphinxEngine:
    name = "pocketsphinx"

    def __init__(self, spec: EngineSpec):
        self.spec = spec
        self.decoder: Any = None
        self.frame_rate = 100

    def load(self) -> EngineInfo:
        if self.spec.model not in ("en-us", "default"):
            raise EngineUnavailable(
                f"pocketsphinx only ships the en-us model; --model {self.spec.model!r} is not one "
                "(leave --model unset with --engine pocketsphinx)"
            )
        if self.spec.device not in ("auto", "cpu"):
            raise EngineUnavailable(f"pocketsphinx runs on the CPU only; --device {self.spec.device} is not possible")
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise EngineUnavailable(f"pocketsphinx could not be imported ({exc}); pip install '.[pocketsphinx]'") from exc
        log.info("loading model en-us (pocketsphinx, cpu)")
        self.decoder = Decoder(loglevel="FATAL")
        try:
            self.frame_rate = int(self.decoder.config["frate"])
        except Exception:
            self.frame_rate = 100
        return EngineInfo(
            engine=self.name,
            model="en-us",
            device="cpu",
            compute_type=None,
            batch_size=None,
            diarization_available=False,
            languages=["en"],
        )

    def runtime_info(self) -> dict[str, Any]:
        return {}

    # -- transcription ------------------------------------------------------------------

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> EngineResult:
        if options.language and options.language.lower() not in ENGLISH:
            raise RequestError(
                "unsupported_language",
                f"the pocketsphinx engine only knows English; language {options.language!r} is not available "
                "(use the whisperx engine for other languages)",
            )
        if options.diarize:
            raise RequestError("diarization_unavailable", "speaker diarization needs the whisperx engine; pocketsphinx cannot diarize")
        pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        segments: list[Segment] = []
        for start, region in self._speech_regions(pcm):
            words = self._decode(region, start)
            segments.extend(group_words(words, options.word_timestamps))
        return EngineResult(segments=segments, language="en")

    def _speech_regions(self, pcm: bytes):
        """Yield (start seconds, pcm) for each region the Endpointer calls speech."""
        from pocketsphinx import Endpointer

        ep = Endpointer(sample_rate=SAMPLE_RATE)
        size = ep.frame_bytes
        whole = len(pcm) // size * size
        frames: list[bytes] = []
        start = 0.0

        def collect(speech: bytes | None):
            nonlocal frames, start
            if speech is None:
                return None
            if not frames:
                start = ep.speech_start
            frames.append(speech)
            if not ep.in_speech:
                region = (start, b"".join(frames))
                frames = []
                return region
            return None

        for offset in range(0, whole, size):
            region = collect(ep.process(pcm[offset : offset + size]))
            if region:
                yield region
        # end_stream flushes a region still open at the end; it needs at least one sample.
        tail = pcm[whole:] or b"\0\0"
        region = collect(ep.end_stream(tail))
        if region:
            yield region
        elif frames:
            yield (start, b"".join(frames))

    def _decode(self, pcm: bytes, offset: float) -> list[Word]:
        d = self.decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        words: list[Word] = []
        for seg in d.seg():
            token = seg.word
            if is_filler(token):
                continue
            start = offset + seg.start_frame / self.frame_rate
            end = offset + (seg.end_frame + 1) / self.frame_rate
            prob = getattr(seg, "prob", None)
            words.append(
                Word(
                    word=clean_word(token),
                    start=round(start, 3),
                    end=round(end, 3),
                    score=round(float(prob), 3) if prob is not None else None,
                )
            )
        return words


def group_words(words: list[Word], keep_words: bool = True) -> list[Segment]:
    segments: list[Segment] = []
    current: list[Word] = []

    def flush():
        if current:
            segments.append(
                Segment(
                    start=current[0].start,
                    end=current[-1].end,
                    text=" ".join(w.word for w in current),
                    words=list(current) if keep_words else None,
                )
            )

    for word in words:
        if current:
            gap = word.start - current[-1].end
            length = word.end - current[0].start
            if gap >= LONG_PAUSE or (length > SOFT_LIMIT and gap >= SHORT_PAUSE) or length > MAX_SEGMENT:
                flush()
                current = []
        current.append(word)
    flush()
    return segments
