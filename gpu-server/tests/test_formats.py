from jarvis_gpu_server.formats import render, timestamp

RESULT = {
    "text": "Hello there. General Kenobi!",
    "segments": [
        {"start": 0.0, "end": 1.5, "text": " Hello there.", "speaker": "SPEAKER_00"},
        {"start": 1.5004, "end": 3723.9996, "text": "General\tKenobi!", "speaker": "SPEAKER_01"},
        {"start": 4000.0, "end": 4001.0, "text": "   "},
    ],
}
PLAIN = {"segments": [{"start": 0.25, "end": 2.0, "text": "just words"}]}


def test_timestamps():
    assert timestamp(0) == "00:00:00.000"
    assert timestamp(3723.9996, ",") == "01:02:04,000"
    assert timestamp(59.9994) == "00:00:59.999"
    assert timestamp(360000.5) == "100:00:00.500"
    assert timestamp(-1) == "00:00:00.000"


def test_text():
    assert render(RESULT, "text") == "[SPEAKER_00] Hello there.\n[SPEAKER_01] General Kenobi!\n"
    assert render(PLAIN, "txt") == "just words\n"
    assert render({"segments": []}, "text") == ""


def test_srt():
    assert render(RESULT, "srt") == (
        "1\n00:00:00,000 --> 00:00:01,500\n[SPEAKER_00] Hello there.\n\n"
        "2\n00:00:01,500 --> 01:02:04,000\n[SPEAKER_01] General Kenobi!\n"
    )


def test_vtt():
    assert render(PLAIN, "vtt") == "WEBVTT\n\n00:00:00.250 --> 00:00:02.000\njust words\n"
    assert render({"segments": []}, "vtt") == "WEBVTT\n"


def test_tsv_like_openai_whisper():
    assert render(RESULT, "tsv") == (
        "start\tend\ttext\n0\t1500\t[SPEAKER_00] Hello there.\n1500\t3724000\t[SPEAKER_01] General Kenobi!\n"
    )


def test_json_roundtrip():
    import json

    assert json.loads(render(RESULT, "json")) == RESULT
