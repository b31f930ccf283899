"""Shared by the server benchmarks: the real gpu-server (pocketsphinx) on loopback and
~60 s of real speech built from the LibriVox fixtures. Run with the gpu-server venv:
``gpu-server/.venv/bin/python bench/server/<name>.py``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "test" / "fixtures" / "audio" / "librivox"


def speech(seconds: float = 60.0, gap_s: float = 0.5) -> Path:
    """Concatenate the fixture clips (with short pauses) until ``seconds`` of audio."""
    clips = sorted(FIXTURES.glob("*.wav"))
    frames, total = [], 0
    while total < seconds * 32000:
        for clip in clips:
            with wave.open(str(clip)) as w:
                frames.append(w.readframes(w.getnframes()))
            frames.append(b"\0\0" * int(16000 * gap_s))
            total = sum(len(f) for f in frames)
            if total >= seconds * 32000:
                break
    fd, path = tempfile.mkstemp(prefix="jarvis-bench-", suffix=".wav")
    os.close(fd)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"".join(frames))
    return Path(path)


class Server:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = tempfile.mkdtemp(prefix="jarvis-bench-data-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("JARVIS_GPU_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jarvis_gpu_server", "--engine", "pocketsphinx", "--host", "127.0.0.1",
             "--port", str(self.port), "--data-dir", self.data],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=str(REPO / "gpu-server"),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with {self.proc.returncode}")
            time.sleep(0.1)
        self.stop()
        raise SystemExit("the server did not become healthy within 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def transcribe(client: httpx.Client, path: Path) -> dict:
    with open(path, "rb") as fh:
        r = client.post("/transcribe", files={"file": (path.name, fh, "audio/wav")}, timeout=600)
    r.raise_for_status()
    return r.json()
