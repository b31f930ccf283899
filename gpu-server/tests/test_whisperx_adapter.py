"""The whisperx engine against stand-in ``whisperx``, ``whisperx.diarize`` and ``torch``
modules that record calls and answer with structures shaped like WhisperX 3.8's."""

import importlib.machinery
import sys
import types

import numpy as np
import pytest

from jarvis_gpu_server.engines import EngineSpec, RequestError, TranscribeOptions, resolve_engine
from jarvis_gpu_server.engines.whisperx_engine import WhisperXEngine

AUDIO = np.zeros(16000 * 5, dtype=np.float32)


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, name, *args, **kwargs):
        self.calls.append((name, args, kwargs))

    def named(self, name):
        return [c for c in self.calls if c[0] == name]


def module(name):
    m = types.ModuleType(name)
    m.__spec__ = importlib.machinery.ModuleSpec(name, None)
    return m


@pytest.fixture
def fake(monkeypatch):
    rec = Recorder()
    state = {"cuda": True, "language": "en", "align_languages": {"en", "fr"}}

    class Pipeline:  # FasterWhisperPipeline
        def transcribe(self, audio, batch_size=None, num_workers=0, language=None, task=None, chunk_size=30, **kw):
            rec("transcribe", audio, batch_size=batch_size, language=language)
            return {
                "language": language or state["language"],
                "segments": [
                    {"start": 0.5, "end": 3.2, "text": " Hello world 42 times.", "avg_logprob": -0.2},
                    {"start": 3.5, "end": 4.9, "text": " Bye.", "avg_logprob": -0.3},
                ],
            }

    wx = module("whisperx")

    def load_model(whisper_arch, device, device_index=0, compute_type="default", asr_options=None, language=None, **kw):
        rec("load_model", whisper_arch, device, device_index=device_index, compute_type=compute_type, language=language)
        return Pipeline()

    def load_align_model(language_code, device, model_name=None, model_dir=None, model_cache_only=False):
        rec("load_align_model", language_code=language_code, device=device)
        if language_code not in state["align_languages"]:
            raise ValueError(f"No default align-model for language: {language_code}")
        return f"align-model-{language_code}", {"language": language_code, "dictionary": {}, "type": "torchaudio"}

    def align(transcript, model, align_model_metadata, audio, device, interpolate_method="nearest",
              return_char_alignments=False, print_progress=False, combined_progress=False, progress_callback=None):
        rec("align", list(transcript), model, align_model_metadata, device, return_char_alignments=return_char_alignments)
        words = [
            {"word": "Hello", "start": 0.5, "end": 0.9, "score": 0.91},
            {"word": "world", "start": 1.0, "end": 1.4, "score": 0.8},
            {"word": "42"},  # WhisperX cannot align numerals: no start, end or score
            {"word": "times.", "start": 2.0, "end": 3.2, "score": 0.7},
        ]
        segs = [
            {"start": 0.5, "end": 3.2, "text": " Hello world 42 times.", "words": words, "chars": None},
            {"start": 3.5, "end": 4.9, "text": " Bye.", "words": [{"word": "Bye.", "start": 3.5, "end": 4.9, "score": 0.99}]},
        ]
        return {"segments": segs, "word_segments": [w for s in segs for w in s["words"]]}

    def assign_word_speakers(diarize_df, transcript_result, speaker_embeddings=None, fill_nearest=False):
        rec("assign_word_speakers", diarize_df, transcript_result)
        for i, seg in enumerate(transcript_result["segments"]):
            seg["speaker"] = f"SPEAKER_0{i}"
            for w in seg.get("words", []):
                if "start" in w:
                    w["speaker"] = f"SPEAKER_0{i}"
        return transcript_result

    wx.load_model, wx.load_align_model, wx.align, wx.assign_word_speakers = load_model, load_align_model, align, assign_word_speakers

    diarize = module("whisperx.diarize")

    class DiarizationPipeline:
        def __init__(self, model_name=None, token=None, device="cpu", cache_dir=None):
            rec("DiarizationPipeline", model_name=model_name, token=token, device=device)

        def __call__(self, audio, num_speakers=None, min_speakers=None, max_speakers=None, return_embeddings=False, **kw):
            rec("diarize", audio, min_speakers=min_speakers, max_speakers=max_speakers)
            return "diarize-dataframe"

    diarize.DiarizationPipeline = DiarizationPipeline
    wx.diarize = diarize

    torch = module("torch")
    torch.cuda = types.SimpleNamespace(
        is_available=lambda: state["cuda"],
        get_device_name=lambda index=0: "NVIDIA L4",
        mem_get_info=lambda index=0: (20 * 1024**3, 24 * 1024**3),
    )
    torch.version = types.SimpleNamespace(cuda="12.4")

    monkeypatch.setitem(sys.modules, "whisperx", wx)
    monkeypatch.setitem(sys.modules, "whisperx.diarize", diarize)
    monkeypatch.setitem(sys.modules, "torch", torch)
    return types.SimpleNamespace(rec=rec, state=state, diarize=diarize)


def engine(**kw):
    spec = dict(engine="whisperx", model="large-v3", device="auto", compute_type="auto", batch_size=16, hf_token=None)
    spec.update(kw)
    e = WhisperXEngine(EngineSpec(**spec))
    return e, e.load()


def test_auto_engine_is_whisperx_when_importable(fake):
    assert resolve_engine("auto") == "whisperx"


def test_load_on_cuda(fake):
    _, info = engine(batch_size=24)
    assert fake.rec.named("load_model") == [
        ("load_model", ("large-v3", "cuda"), {"device_index": 0, "compute_type": "float16", "language": None})
    ]
    assert (info.device, info.compute_type, info.batch_size) == ("cuda", "float16", 24)
    assert (info.gpu_name, info.vram_total_mb, info.vram_free_mb, info.cuda_version) == ("NVIDIA L4", 24576, 20480, "12.4")
    assert info.diarization_available is False and info.languages is None


def test_load_on_cpu_is_int8(fake):
    fake.state["cuda"] = False
    _, info = engine()
    assert fake.rec.named("load_model")[0][2]["compute_type"] == "int8"
    assert fake.rec.named("load_model")[0][1] == ("large-v3", "cpu")
    assert (info.device, info.gpu_name, info.cuda_version) == ("cpu", None, None)


def test_explicit_device_and_compute_type(fake):
    _, info = engine(device="cuda:1", compute_type="int8_float16", model="medium")
    assert fake.rec.named("load_model") == [
        ("load_model", ("medium", "cuda"), {"device_index": 1, "compute_type": "int8_float16", "language": None})
    ]
    assert info.device == "cuda:1"


def test_transcribe_aligns_and_maps_words(fake):
    e, _ = engine()
    result = e.transcribe(AUDIO, TranscribeOptions())
    name, args, kwargs = fake.rec.named("transcribe")[0]
    assert args[0] is AUDIO and kwargs == {"batch_size": 16, "language": None}
    assert fake.rec.named("load_align_model") == [("load_align_model", (), {"language_code": "en", "device": "cuda"})]
    align = fake.rec.named("align")[0]
    assert align[1][1] == "align-model-en" and align[1][3] == "cuda" and align[2] == {"return_char_alignments": False}
    assert [s["text"] for s in align[1][0]] == [" Hello world 42 times.", " Bye."]  # the transcribed segments
    assert result.language == "en"
    first = result.segments[0]
    assert (first.start, first.end, first.text, first.speaker) == (0.5, 3.2, "Hello world 42 times.", None)
    words = [(w.word, w.start, w.end, w.score) for w in first.words]
    # "42" had no times: it gets the gap between its neighbours, and no score
    assert words == [("Hello", 0.5, 0.9, 0.91), ("world", 1.0, 1.4, 0.8), ("42", 1.4, 2.0, None), ("times.", 2.0, 3.2, 0.7)]
    assert not fake.rec.named("DiarizationPipeline")

    # the alignment model is cached per language
    e.transcribe(AUDIO, TranscribeOptions(language="en"))
    assert len(fake.rec.named("load_align_model")) == 1
    assert fake.rec.named("transcribe")[1][2]["language"] == "en"
    e.transcribe(AUDIO, TranscribeOptions(language="fr"))
    assert [c[2]["language_code"] for c in fake.rec.named("load_align_model")] == ["en", "fr"]


def test_language_without_alignment_model_keeps_segments(fake):
    e, _ = engine()
    result = e.transcribe(AUDIO, TranscribeOptions(language="xx"))
    assert not fake.rec.named("align")
    assert [s.text for s in result.segments] == ["Hello world 42 times.", "Bye."]
    assert all(s.words is None for s in result.segments)
    e.transcribe(AUDIO, TranscribeOptions(language="xx"))
    assert len(fake.rec.named("load_align_model")) == 1  # the miss is cached too


def test_no_word_timestamps_skips_alignment(fake):
    e, _ = engine()
    result = e.transcribe(AUDIO, TranscribeOptions(word_timestamps=False))
    assert not fake.rec.named("align") and all(s.words is None for s in result.segments)


def test_diarization(fake):
    e, info = engine(hf_token="hf_secret")
    assert info.diarization_available is True
    result = e.transcribe(AUDIO, TranscribeOptions(diarize=True, min_speakers=2, max_speakers=3))
    assert fake.rec.named("DiarizationPipeline") == [
        ("DiarizationPipeline", (), {"model_name": None, "token": "hf_secret", "device": "cuda"})
    ]
    _, args, kwargs = fake.rec.named("diarize")[0]
    assert args[0] is AUDIO and kwargs == {"min_speakers": 2, "max_speakers": 3}
    _, (df, transcript), _ = fake.rec.named("assign_word_speakers")[0]
    assert df == "diarize-dataframe" and transcript["segments"][0]["words"][0]["word"] == "Hello"
    assert [s.speaker for s in result.segments] == ["SPEAKER_00", "SPEAKER_01"]
    assert [w.speaker for w in result.segments[0].words] == ["SPEAKER_00", "SPEAKER_00", None, "SPEAKER_00"]
    assert result.segments[0].to_dict()["words"][2] == {"word": "42", "start": 1.4, "end": 2.0}
    e.transcribe(AUDIO, TranscribeOptions(diarize=True))
    assert len(fake.rec.named("DiarizationPipeline")) == 1  # loaded once
    assert fake.rec.named("diarize")[1][2] == {"min_speakers": None, "max_speakers": None}


def test_diarization_with_whisperx_before_3_8(fake):
    calls = []

    class OldPipeline:  # whisperx 3.6/3.7: use_auth_token=
        def __init__(self, model_name=None, use_auth_token=None, device="cpu"):
            calls.append({"use_auth_token": use_auth_token, "device": device})

        def __call__(self, audio, **kw):
            return "df"

    fake.diarize.DiarizationPipeline = OldPipeline
    e, _ = engine(hf_token="hf_old")
    e.transcribe(AUDIO, TranscribeOptions(diarize=True))
    assert calls == [{"use_auth_token": "hf_old", "device": "cuda"}]


def test_diarization_without_token_is_a_clear_400(fake):
    e, _ = engine()
    with pytest.raises(RequestError) as info:
        e.transcribe(AUDIO, TranscribeOptions(diarize=True))
    assert info.value.status == 400 and info.value.code == "hf_token_required"
    assert "--hf-token" in info.value.message and "HF_TOKEN" in info.value.message
    assert not fake.rec.named("transcribe")


def test_app_refuses_diarization_without_token_before_queueing():
    from jarvis_gpu_server.app import transcribe_options
    from jarvis_gpu_server.errors import ApiError
    from jarvis_gpu_server.upload import Upload

    runner = types.SimpleNamespace(info={"engine": "whisperx", "diarization_available": False, "languages": None})
    with pytest.raises(ApiError) as info:
        transcribe_options(Upload(fields={"enable_diarization": ["true"]}), runner)
    assert (info.value.status, info.value.code) == (400, "hf_token_required")
    opts = transcribe_options(Upload(fields={"enable_diarization": ["auto"], "language": ["de"]}), runner)
    assert (opts.diarize, opts.language) == (False, "de")
    runner.info["diarization_available"] = True
    opts = transcribe_options(Upload(fields={"enable_diarization": ["auto"], "min_speakers": ["2"]}), runner)
    assert (opts.diarize, opts.min_speakers) == (True, 2)
