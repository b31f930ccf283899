"""Real speech end to end: the real server (pocketsphinx) over real HTTP."""

import pytest

from helpers import normalize, reencode, wer


def test_librivox_word_error_rate(wav_texts, librivox, server):
    refs = [c.transcript for c in librivox]
    hyps = [wav_texts[c.name]["text"] for c in librivox]
    rate = wer(refs, hyps)
    print(f"\nWER over {len(librivox)} LibriVox clips (pocketsphinx en-us): {rate:.3f}")
    for c, h in zip(librivox, hyps):
        print(f"  ref: {c.transcript}\n  hyp: {h}")
    assert rate <= 0.40


def test_result_shape(wav_texts, librivox):
    result = wav_texts[librivox[0].name]
    assert set(result) == {"text", "language", "duration", "segments", "processing_time", "engine", "model", "device"}
    assert result["engine"] == "pocketsphinx" and result["model"] == "en-us" and result["device"] == "cpu"
    assert result["language"] == "en"
    assert result["duration"] == pytest.approx(7.1, abs=0.01)
    assert 0 < result["processing_time"] < 60
    segs = result["segments"]
    assert segs and all(0 <= s["start"] < s["end"] <= result["duration"] + 0.05 for s in segs)
    words = [w for s in segs for w in s["words"]]
    assert words and all(w["start"] <= w["end"] for w in words)
    joined = " ".join(w["word"] for w in words)
    assert joined == result["text"]
    for w in words:  # fillers and alternates are gone
        assert not w["word"].startswith(("<", "[", "+")) and "(" not in w["word"]
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)


def test_long_audio_is_split_into_sentence_sized_segments(server, librivox, tmp_path):
    from helpers import concat_wav

    path = tmp_path / "long.wav"
    duration = concat_wav([c.path for c in librivox], path, repeat=1, gap_s=1.0)
    with server.client() as c, open(path, "rb") as fh:
        result = c.post("/transcribe", files={"file": ("long.wav", fh)}).json()
    segs = result["segments"]
    assert result["duration"] == pytest.approx(duration, abs=0.01)
    assert len(segs) >= 4, [(s["start"], s["end"]) for s in segs]
    assert max(s["end"] - s["start"] for s in segs) <= 16
    assert all(a["end"] <= b["start"] for a, b in zip(segs, segs[1:]))


# mp3/ogg are lossy: measured on these clips, opus 32 kb/s and mp3 64 kb/s give the same
# words as the WAV for most clips and differ by a word or two at most; flac is lossless.
@pytest.mark.parametrize(
    "codec,suffix,bit_rate,max_wer",
    [("flac", "flac", None, 0.0), ("libmp3lame", "mp3", 64000, 0.10), ("libopus", "ogg", 32000, 0.10)],
)
def test_other_formats_give_the_same_text(server, librivox, wav_texts, tmp_path, codec, suffix, bit_rate, max_wer):
    hyps, base = [], []
    with server.client() as c:
        for clip in librivox:
            encoded = reencode(clip.path, tmp_path / f"{clip.name}.{suffix}", codec, bit_rate)
            with open(encoded, "rb") as fh:
                r = c.post("/transcribe", files={"file": (encoded.name, fh)})
            assert r.status_code == 200, r.text
            assert r.json()["duration"] == pytest.approx(wav_texts[clip.name]["duration"], abs=0.1)
            hyps.append(r.json()["text"])
            base.append(wav_texts[clip.name]["text"])
    rate = wer(base, hyps)
    print(f"\n{suffix}: WER against the WAV transcripts {rate:.3f}")
    assert rate <= max_wer, list(zip(base, hyps))
    if max_wer == 0.0:
        assert [normalize(h) for h in hyps] == [normalize(b) for b in base]
