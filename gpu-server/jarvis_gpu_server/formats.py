"""Render a transcription result (the JSON dict) as txt, srt, vtt, tsv or json.

Segments are dicts ``{start, end, text, speaker?, words?}`` as the API returns them.
Speaker labels, when present, prefix the text as ``[SPEAKER_00] ...``.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

FORMATS = ("json", "text", "txt", "srt", "vtt", "tsv")

MEDIA_TYPES = {
    "json": "application/json",
    "text": "text/plain; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
}


def timestamp(seconds: float, separator: str = ".") -> str:
    """HH:MM:SS.mmm (vtt) or HH:MM:SS,mmm (srt); hours grow past 99 if they must."""
    ms = max(0, int(round(float(seconds) * 1000)))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _line(segment: dict[str, Any]) -> str:
    text = " ".join(str(segment.get("text", "")).split())
    speaker = segment.get("speaker")
    return f"[{speaker}] {text}" if speaker else text


def _spoken(segments: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in segments if str(s.get("text", "")).strip()]


def render_text(result: dict[str, Any]) -> str:
    lines = [_line(s) for s in _spoken(result.get("segments", []))]
    return "\n".join(lines) + ("\n" if lines else "")


def render_srt(result: dict[str, Any]) -> str:
    blocks = []
    for i, seg in enumerate(_spoken(result.get("segments", [])), start=1):
        blocks.append(f"{i}\n{timestamp(seg['start'], ',')} --> {timestamp(seg['end'], ',')}\n{_line(seg)}\n")
    return "\n".join(blocks)


def render_vtt(result: dict[str, Any]) -> str:
    blocks = ["WEBVTT\n"]
    for seg in _spoken(result.get("segments", [])):
        blocks.append(f"{timestamp(seg['start'])} --> {timestamp(seg['end'])}\n{_line(seg)}\n")
    return "\n".join(blocks)


def render_tsv(result: dict[str, Any]) -> str:
    """openai-whisper's tsv: a header, then integer milliseconds, tab, text."""
    rows = ["start\tend\ttext"]
    for seg in _spoken(result.get("segments", [])):
        text = _line(seg).replace("\t", " ")
        rows.append(f"{int(round(seg['start'] * 1000))}\t{int(round(seg['end'] * 1000))}\t{text}")
    return "\n".join(rows) + "\n"


def render_json(result: dict[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False)


RENDERERS = {
    "json": render_json,
    "text": render_text,
    "txt": render_text,
    "srt": render_srt,
    "vtt": render_vtt,
    "tsv": render_tsv,
}


def render(result: dict[str, Any], fmt: str) -> str:
    try:
        return RENDERERS[fmt](result)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}") from None
