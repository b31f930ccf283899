"""Shared test helpers: the real server as a subprocess, WER, re-encoding with PyAV."""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

GPU_SERVER = Path(__file__).resolve().parents[1]
REPO = GPU_SERVER.parent
FIXTURES = REPO / "test" / "fixtures" / "audio" / "librivox"
API_KEY = "test-key-7f3a"


@dataclass
class Clip:
    name: str
    path: Path
    transcript: str


def clips() -> list[Clip]:
    out = []
    with open(FIXTURES / "transcripts.tsv", newline="") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if row:
                out.append(Clip(row[0], FIXTURES / f"{row[0]}.wav", row[1]))
    return out


# -- word error rate ---------------------------------------------------------------------

ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}


def normalize(text: str) -> list[str]:
    """Lower case, drop punctuation (keeping in-word apostrophes), expand a few
    abbreviations the way Whisper's English normalizer does."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    words = [w.strip("'") for w in text.split()]
    return [ABBREVIATIONS.get(w, w) for w in words if w]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def wer(refs: list[str], hyps: list[str]) -> float:
    """Word error rate over a whole set: total edits / total reference words."""
    edits = words = 0
    for ref, hyp in zip(refs, hyps):
        r, h = normalize(ref), normalize(hyp)
        edits += edit_distance(r, h)
        words += len(r)
    return edits / max(words, 1)


# -- audio -------------------------------------------------------------------------------

def reencode(src: Path, dst: Path, codec: str, bit_rate: int | None = None) -> Path:
    """Re-encode src (any format) into dst with PyAV; the container comes from dst's suffix."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        in_stream = inp.streams.audio[0]
        rate = 48000 if codec in ("libopus", "opus") else in_stream.rate
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        if bit_rate:
            stream.bit_rate = bit_rate
        for frame in inp.decode(in_stream):
            frame.pts = None
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return dst


def concat_wav(paths: list[Path], dst: Path, repeat: int = 1, gap_s: float = 0.5) -> float:
    """Concatenate 16 kHz mono WAVs (with short silences between); returns seconds."""
    import wave

    frames = []
    for _ in range(repeat):
        for p in paths:
            with wave.open(str(p)) as w:
                frames.append(w.readframes(w.getnframes()))
            frames.append(b"\0\0" * int(16000 * gap_s))
    data = b"".join(frames)
    with wave.open(str(dst), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(data)
    return len(data) / 32000


# -- the server as a subprocess ----------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m jarvis_gpu_server`` on a loopback port, its log captured."""

    def __init__(self, data_dir: Path, *args: str, api_key: str | None = API_KEY, port: int | None = None,
                 env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.args = list(args)
        self.api_key = api_key
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True, timeout: float = 60) -> "ServerProcess":
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("JARVIS_GPU_") and k not in ("EXTERNAL_GPU_API_KEY", "HF_TOKEN", "HUGGINGFACE_TOKEN", "WHISPER_MODEL")}
        env.update(self.env)
        if self.api_key:
            env["JARVIS_GPU_API_KEY"] = self.api_key  # through the environment, as the CLI does
        cmd = [sys.executable, "-m", "jarvis_gpu_server", "--engine", "pocketsphinx", "--host", "127.0.0.1",
               "--port", str(self.port), "--data-dir", str(self.data_dir), *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                                     cwd=str(GPU_SERVER))
        threading.Thread(target=self._read, daemon=True).start()
        if wait:
            self.wait_healthy(timeout)
        return self

    def _read(self) -> None:
        assert self.proc and self.proc.stderr
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy after {timeout} s:\n{self.log}")

    def client(self, **kwargs) -> httpx.Client:
        headers = {"X-API-Key": self.api_key} if self.api_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, **kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)
