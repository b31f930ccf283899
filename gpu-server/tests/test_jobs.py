"""Jobs: persisted in SQLite, survive restarts, webhooks signed with HMAC-SHA256."""

import hashlib
import hmac
import http.server
import json
import os
import signal
import threading
import time

import pytest

from conftest import assert_error
from helpers import API_KEY, ServerProcess, concat_wav


def submit(client, path, **data):
    with open(path, "rb") as fh:
        return client.post("/jobs", files={"file": (os.path.basename(path), fh)}, data=data)


def wait_for(client, job_id, statuses=("succeeded", "failed"), timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['status']}")


@pytest.fixture(scope="module")
def short_clip(librivox):
    return min(librivox, key=lambda c: c.path.stat().st_size)


class Receiver:
    """A webhook receiver on loopback: http.server in a thread."""

    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        self.event = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()
                outer.event.set()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook?x=1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_job_lifecycle_and_signed_webhook(server, client, short_clip):
    receiver = Receiver()
    try:
        r = submit(client, short_clip.path, webhook_url=receiver.url)
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["status"] in ("queued", "running") and job["id"].startswith("job_")
        assert r.headers["Location"] == f"/jobs/{job['id']}"
        done = wait_for(client, job["id"])
        assert done["status"] == "succeeded", done
        assert done["result"]["text"] and done["result"]["segments"]
        assert done["filename"] == short_clip.path.name
        assert receiver.event.wait(15), "no webhook arrived"
        headers, body = receiver.received[0]
        # verify the signature independently of the server's code: t=<unix>,v1=<hex hmac of "t.body">
        parts = dict(p.split("=", 1) for p in headers["x-jarvis-signature"].split(","))
        assert abs(time.time() - int(parts["t"])) < 120
        expected = hmac.new(API_KEY.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(parts["v1"], expected)
        payload = json.loads(body)
        assert payload["id"] == job["id"] and payload["status"] == "succeeded"
        assert payload["result"]["text"] == done["result"]["text"]
        assert headers["x-jarvis-event"] == "job.succeeded" and headers["x-jarvis-job-id"] == job["id"]
        deadline = time.monotonic() + 5
        while client.get(f"/jobs/{job['id']}").json()["webhook_status"] != "delivered":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        receiver.close()
    srt = client.get(f"/jobs/{job['id']}/result", params={"response_format": "srt"})
    assert srt.status_code == 200 and " --> " in srt.text
    assert job["id"] in [j["id"] for j in client.get("/jobs").json()["jobs"]]
    assert client.delete(f"/jobs/{job['id']}").json() == {"id": job["id"], "deleted": True, "status": "succeeded"}
    assert_error(client.get(f"/jobs/{job['id']}"), 404, "job_not_found")
    assert_error(client.delete(f"/jobs/{job['id']}"), 404, "job_not_found")


def test_failed_job_keeps_the_reason(client, tmp_path):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(os.urandom(4096))
    job = submit(client, bad).json()
    done = wait_for(client, job["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "unsupported_media" and done["error"]["message"]
    assert "result" not in done


def test_bad_job_requests(client, short_clip, tmp_path):
    assert_error(submit(client, short_clip.path, webhook_url="ftp://example.com/x"), 400, "invalid_request")
    empty = tmp_path / "e.wav"
    empty.write_bytes(b"")
    assert_error(submit(client, empty), 422, "empty_audio")


def test_jobs_survive_restarts(tmp_path, librivox, short_clip):
    data = tmp_path / "data"
    longest = max(librivox, key=lambda c: c.path.stat().st_size)  # 7 s of speech, ~2 s of work
    srv = ServerProcess(data).start()
    try:
        with srv.client() as c:
            first = submit(c, short_clip.path).json()
            assert wait_for(c, first["id"])["status"] == "succeeded"
            running = submit(c, longest.path).json()
            queued = submit(c, short_clip.path).json()
            wait_for(c, running["id"], statuses=("running",))
        assert srv.stop(signal.SIGKILL) == -signal.SIGKILL  # no chance to clean up
        assert len(os.listdir(data / "jobs")) == 2  # inputs of the running and the queued job

        srv = ServerProcess(data).start()
        with srv.client() as c:
            assert c.get(f"/jobs/{first['id']}").json()["result"]["text"]  # results survive
            for job in (running, queued):
                done = wait_for(c, job["id"])
                assert done["status"] == "succeeded", done
                assert done["result"]["text"]
        assert "was interrupted by a restart; running it again" in srv.log
        assert os.listdir(data / "jobs") == []  # job audio deleted once the jobs finished
        assert srv.stop() in (0, -signal.SIGTERM)

        # a clean restart: everything still there, nothing re-run
        srv = ServerProcess(data).start()
        with srv.client() as c:
            jobs = c.get("/jobs").json()["jobs"]
            assert {j["id"] for j in jobs} == {first["id"], running["id"], queued["id"]}
            assert all(j["status"] == "succeeded" for j in jobs)
    finally:
        srv.stop()


def test_interrupted_job_without_its_audio_fails_with_a_reason(tmp_path, librivox):
    data = tmp_path / "data"
    long = tmp_path / "long.wav"
    concat_wav([c.path for c in librivox[:2]], long)
    srv = ServerProcess(data).start()
    try:
        with srv.client() as c:
            job = submit(c, long).json()
            wait_for(c, job["id"], statuses=("running",))
        srv.stop(signal.SIGKILL)
        for name in os.listdir(data / "jobs"):
            os.unlink(data / "jobs" / name)
        srv = ServerProcess(data).start()
        with srv.client() as c:
            done = c.get(f"/jobs/{job['id']}").json()
            assert done["status"] == "failed"
            assert done["error"]["code"] == "interrupted" and "input audio is gone" in done["error"]["message"]
    finally:
        srv.stop()
