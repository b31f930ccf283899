"""The official openai client against /v1/audio/transcriptions."""

import pytest
from openai import OpenAI, AuthenticationError

from helpers import API_KEY


@pytest.fixture(scope="module")
def openai_client(server):
    return OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def clip(librivox):
    return min(librivox, key=lambda c: c.path.stat().st_size)


def test_json(openai_client, clip, wav_texts):
    with open(clip.path, "rb") as fh:
        out = openai_client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="json")
    assert out.text == wav_texts[clip.name]["text"]


def test_text_and_srt_and_vtt(openai_client, clip, wav_texts):
    with open(clip.path, "rb") as fh:
        text = openai_client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="text")
    assert isinstance(text, str) and text.strip() == wav_texts[clip.name]["text"]
    with open(clip.path, "rb") as fh:
        srt = openai_client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="srt", language="en")
    assert srt.startswith("1\n00:00:00,") and " --> " in srt
    with open(clip.path, "rb") as fh:
        vtt = openai_client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="vtt")
    assert vtt.startswith("WEBVTT")


def test_verbose_json_with_words(openai_client, clip):
    with open(clip.path, "rb") as fh:
        out = openai_client.audio.transcriptions.create(
            model="whisper-1", file=fh, response_format="verbose_json",
            timestamp_granularities=["word", "segment"], temperature=0.0, prompt="Austen",
        )
    assert out.duration == pytest.approx(2.99, abs=0.01)
    assert out.words and out.words[0].start < out.words[-1].end
    assert out.segments and out.segments[0].text


def test_wrong_key(server, clip):
    bad = OpenAI(base_url=server.url + "/v1", api_key="nope", max_retries=0)
    with open(clip.path, "rb") as fh, pytest.raises(AuthenticationError):
        bad.audio.transcriptions.create(model="whisper-1", file=fh)
