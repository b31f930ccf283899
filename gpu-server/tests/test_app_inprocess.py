"""App-level checks that need no engine: the loading window, webhook signing."""

import hashlib
import hmac
import http.server
import threading

from starlette.testclient import TestClient

from conftest import assert_error
from jarvis_gpu_server.app import create_app
from jarvis_gpu_server.config import Settings
from jarvis_gpu_server.engines import EngineSpec
from jarvis_gpu_server.webhook import deliver, sign, verify


def test_loading_window(tmp_path, librivox):
    settings = Settings(data_dir=str(tmp_path), api_key="k")
    app = create_app(settings, EngineSpec(engine="whisperx", model="large-v3", device="auto"))
    client = TestClient(app)  # no lifespan: the runner never starts, the model stays "loading"
    r = client.get("/health")
    assert r.status_code == 503
    assert r.json() == {"status": "loading", "model_loaded": False, "engine": "whisperx", "model": "large-v3", "device": "auto"}
    assert client.get("/livez").status_code == 200
    headers = {"X-API-Key": "k"}
    clip = librivox[0].path
    with open(clip, "rb") as fh:
        r = client.post("/transcribe", files={"file": ("a.wav", fh)}, headers=headers)
    err = assert_error(r, 503, "model_loading")
    assert r.headers["Retry-After"]
    assert "loading" in err["message"]
    with open(clip, "rb") as fh:  # jobs are accepted while loading and wait for the model
        r = client.post("/jobs", files={"file": ("a.wav", fh)}, headers=headers)
    assert r.status_code == 202 and r.json()["status"] == "queued"
    info = client.get("/info", headers=headers).json()
    assert info["status"] == "loading" and info["model_loaded"] is False and info["queue_depth"] == 1
    assert info["diarization_available"] is False  # whisperx without an HF token
    assert_error(client.get("/info"), 401, "unauthorized")


def test_signature_roundtrip():
    body = b'{"id":"job_1"}'
    header = sign("secret", body, timestamp=1700000000)
    t, v1 = header.split(",")
    assert t == "t=1700000000"
    assert v1 == "v1=" + hmac.new(b"secret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert verify("secret", body, header, now=1700000010)
    assert not verify("secret", body + b" ", header, now=1700000010)
    assert not verify("other", body, header, now=1700000010)
    assert not verify("secret", body, header, now=1700000000 + 3600)  # too old: a replay


def test_unsigned_webhook_without_secret_and_no_retry_on_4xx():
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(dict(self.headers))
            self.send_response(410 if len(seen) > 1 else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        assert deliver(url, {"id": "job_1"}, None, "job.succeeded", "job_1", delays=(0.01,)) == (True, None)
        assert "X-Jarvis-Signature" not in seen[0]
        ok, error = deliver(url, {"id": "job_1"}, "s", "job.succeeded", "job_1", delays=(0.01, 0.01))
        assert (ok, error) == (False, "HTTP 410") and len(seen) == 2  # a 4xx is not retried
        ok, error = deliver("http://127.0.0.1:9/", {}, "s", "job.failed", "job_2", delays=(0.01,), timeout=1)
        assert ok is False and error
    finally:
        httpd.shutdown()
