"""Auth, limits, bad input, the JSON error contract, /health during work, /info, /metrics."""

import concurrent.futures
import os
import threading
import time

import httpx
import pytest

from conftest import HF_MARKER, assert_error
from helpers import API_KEY, ServerProcess, concat_wav


@pytest.fixture(scope="module")
def short_clip(librivox):
    return min(librivox, key=lambda c: c.path.stat().st_size)


def post_file(client, path, route="/transcribe", **data):
    with open(path, "rb") as fh:
        return client.post(route, files={"file": (os.path.basename(path), fh)}, data=data)


# -- auth ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method,route", [("GET", "/info"), ("GET", "/metrics"), ("POST", "/transcribe"),
                                          ("POST", "/jobs"), ("GET", "/jobs/x"), ("DELETE", "/jobs/x"),
                                          ("POST", "/v1/audio/transcriptions"), ("GET", "/nowhere")])
def test_routes_need_the_key(server, method, route):
    r = httpx.request(method, server.url + route)
    assert_error(r, 401, "unauthorized")
    r = httpx.request(method, server.url + route, headers={"X-API-Key": "wrong"})
    assert_error(r, 401, "unauthorized")
    r = httpx.request(method, server.url + route, headers={"Authorization": "Bearer wrong"})
    assert_error(r, 401, "unauthorized")


def test_both_header_styles_work(server):
    assert httpx.get(server.url + "/info", headers={"X-API-Key": API_KEY}).status_code == 200
    assert httpx.get(server.url + "/info", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
    assert httpx.get(server.url + "/info", headers={"Authorization": f"bearer {API_KEY}"}).status_code == 200


def test_health_and_livez_are_open(server):
    r = httpx.get(server.url + "/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "model_loaded": True, "engine": "pocketsphinx", "model": "en-us", "device": "cpu"}
    assert httpx.get(server.url + "/livez").status_code == 200


def test_secrets_never_logged(server, client, short_clip):
    post_file(client, short_clip.path)
    assert API_KEY not in server.log
    assert HF_MARKER not in server.log
    # the loading stages a CLI spinner reads
    assert "loading model en-us (pocketsphinx, cpu)" in server.log
    assert f"ready on {server.url}" in server.log


# -- bad input -----------------------------------------------------------------------------

def test_bad_uploads(client, tmp_path, short_clip):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert_error(post_file(client, empty), 422, "empty_audio")

    noise = tmp_path / "random.bin"
    noise.write_bytes(os.urandom(20000))
    err = assert_error(post_file(client, noise), 415, "unsupported_media")
    assert "decode" in err["message"] and "/" not in err["message"].split(":", 1)[1]  # no server paths

    text = tmp_path / "notes.txt"
    text.write_text("this is not audio, it is a text file\n" * 50)
    assert_error(post_file(client, text), 415, "unsupported_media")

    header_only = tmp_path / "truncated.wav"
    header_only.write_bytes(short_clip.path.read_bytes()[:44])
    assert_error(post_file(client, header_only), 422, "empty_audio")

    truncated = tmp_path / "cut.wav"  # a WAV cut mid-stream still decodes what is there
    truncated.write_bytes(short_clip.path.read_bytes()[:30000])
    r = post_file(client, truncated)
    assert r.status_code == 200 and 0.5 < r.json()["duration"] < 1.0


def test_bad_requests(client, short_clip):
    assert_error(client.post("/transcribe", data={"language": "en"}), 400, "invalid_request")  # not multipart
    assert_error(client.post("/transcribe", files={"other": ("a.wav", b"x")}), 400, "missing_file")
    assert_error(client.post("/transcribe", content=b"{}", headers={"content-type": "application/json"}), 400)
    assert_error(post_file(client, short_clip.path, response_format="docx"), 400, "invalid_request")
    assert_error(post_file(client, short_clip.path, language="de"), 400, "unsupported_language")
    assert_error(post_file(client, short_clip.path, enable_diarization="true"), 400, "diarization_unavailable")
    assert_error(post_file(client, short_clip.path, enable_diarization="maybe"), 400, "invalid_request")
    assert_error(post_file(client, short_clip.path, min_speakers="two"), 400, "invalid_request")
    assert_error(post_file(client, short_clip.path, min_speakers="3", max_speakers="2"), 400, "invalid_request")
    # auto diarization on a server that cannot: no speakers, no error
    assert post_file(client, short_clip.path, enable_diarization="auto").status_code == 200


def test_framework_errors_use_the_contract(client):
    assert_error(client.get("/nowhere"), 404, "not_found")
    assert_error(client.put("/health"), 405, "method_not_allowed")
    assert_error(client.get("/jobs", params={"limit": "lots"}), 422, "invalid_request")
    assert_error(client.get("/jobs/job_nope"), 404, "job_not_found")


@pytest.mark.parametrize("fmt,check", [
    ("text", lambda t: t.endswith("\n") and "-->" not in t),
    ("srt", lambda t: t.startswith("1\n00:00:00,") and " --> " in t),
    ("vtt", lambda t: t.startswith("WEBVTT\n\n00:00:00.")),
    ("tsv", lambda t: t.startswith("start\tend\ttext\n") and t.split("\n")[1].split("\t")[0].isdigit()),
])
def test_response_formats(client, short_clip, fmt, check):
    r = post_file(client, short_clip.path, response_format=fmt)
    assert r.status_code == 200, r.text
    assert check(r.text), r.text


def test_word_timestamps_off(client, short_clip):
    r = post_file(client, short_clip.path, word_timestamps="false")
    assert all("words" not in s for s in r.json()["segments"])


# -- /info, /metrics, /health while busy ---------------------------------------------------

def test_info(client):
    info = client.get("/info").json()
    assert info["engine"] == "pocketsphinx" and info["model"] == "en-us" and info["device"] == "cpu"
    for key in ("gpu_name", "vram_total_mb", "vram_free_mb", "cuda_version", "compute_type", "batch_size"):
        assert info[key] is None
    assert info["diarization_available"] is False
    assert info["limits"] == {"max_upload_mb": 1024.0, "queue_size": 8}
    assert info["queue_depth"] == 0 and info["uptime_s"] > 0 and info["server_version"]
    assert info["model_loaded"] is True and info["auth_required"] is True


def test_metrics(client, short_clip):
    post_file(client, short_clip.path)
    text = client.get("/metrics").text
    for name in ("jarvis_http_requests_total", "jarvis_http_failures_total", "jarvis_audio_seconds_total",
                 "jarvis_processing_seconds_total", "jarvis_queue_depth", "jarvis_model_load_seconds",
                 "jarvis_transcriptions_total"):
        assert name in text
    assert 'route="/transcribe"' in text


def test_health_answers_fast_while_transcribing(server, client, librivox, tmp_path):
    long = tmp_path / "long.wav"
    concat_wav([c.path for c in librivox[:3]], long)  # ~16 s of speech
    done = threading.Event()

    def work():
        try:
            post_file(client, long)
        finally:
            done.set()

    threading.Thread(target=work, daemon=True).start()
    with httpx.Client(base_url=server.url) as probe:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and probe.get("/info", headers={"X-API-Key": API_KEY}).json()["running"] == 0:
            time.sleep(0.02)
        latencies = []
        while not done.is_set() and len(latencies) < 300:
            t = time.perf_counter()
            r = probe.get("/health")
            latencies.append(time.perf_counter() - t)
            assert r.status_code == 200
            time.sleep(0.01)
    done.wait(60)
    assert len(latencies) >= 20, "the transcription finished too soon to measure"
    latencies.sort()
    print(f"\n/health during work: n={len(latencies)} p50={latencies[len(latencies)//2]*1000:.1f} ms max={latencies[-1]*1000:.1f} ms")
    # p99, not max: on a shared 2-core box another process can steal the CPU for a moment;
    # the engine runs in its own process, so the event loop itself is never blocked by it.
    assert latencies[int(len(latencies) * 0.99)] < 0.100
    assert latencies[len(latencies) // 2] < 0.050


# -- limits: a second server with a tiny upload limit and queue ----------------------------

@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("limited"), "--max-upload-mb", "0.15", "--queue-size", "1").start()
    yield srv
    srv.stop()


def test_upload_limit(limited, librivox, short_clip):
    big = max(librivox, key=lambda c: c.path.stat().st_size)  # ~227 kB > 0.15 MiB
    with limited.client() as c:
        err = assert_error(post_file(c, big.path), 413, "upload_too_large")
        assert "0.15 MiB" in err["message"]

        def chunks():  # no Content-Length: the limit is enforced while streaming
            boundary = b"xyzzy"
            yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
            data = big.path.read_bytes()
            for i in range(0, len(data), 16384):
                yield data[i:i + 16384]
            yield b"\r\n--" + boundary + b"--\r\n"

        r = c.post("/transcribe", content=chunks(), headers={"content-type": "multipart/form-data; boundary=xyzzy"})
        assert_error(r, 413, "upload_too_large")
        assert post_file(c, short_clip.path).status_code == 200  # below the limit
    assert os.listdir(limited.data_dir / "tmp") == []  # no temp file outlives its request


def test_full_queue_answers_429(limited, short_clip):
    def one(_):
        with limited.client() as c:
            return post_file(c, short_clip.path)

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(one, range(5)))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) >= 2 and codes.count(429) >= 1, codes
    for r in responses:
        if r.status_code == 429:
            assert_error(r, 429, "queue_full")
            assert int(r.headers["Retry-After"]) >= 1
    assert os.listdir(limited.data_dir / "tmp") == []


def test_engine_crash_fails_the_request_and_recovers(server, client, librivox, tmp_path):
    long = tmp_path / "long.wav"
    concat_wav([c.path for c in librivox], long)
    result = {}

    def work():
        with server.client() as own:
            result["response"] = post_file(own, long)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while client.get("/info").json()["running"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pid = server.proc.pid
    children = [c for tid in os.listdir(f"/proc/{pid}/task")
                for c in open(f"/proc/{pid}/task/{tid}/children").read().split()]
    # multiprocessing's resource tracker is a child too; the engine is the spawn_main one
    children = [c for c in children if b"spawn_main" in open(f"/proc/{c}/cmdline", "rb").read()]
    assert len(children) == 1, children
    os.kill(int(children[0]), 9)  # what the OOM killer would do
    thread.join(30)
    assert_error(result["response"], 500, "engine_crashed")
    server.wait_healthy(60)
    assert post_file(client, librivox[1].path).status_code == 200
    assert "restarting it" in server.log
