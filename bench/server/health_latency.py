"""/health latency while a ~60 s transcription runs: p50 and p99; goal p99 <= 50 ms.
Bounded: at most 3000 probes or 300 s, loopback only."""

from __future__ import annotations

import sys
import threading
import time

import httpx

from _common import Server, speech, transcribe

GOAL_P99_MS = 50.0
MAX_PROBES = 3000


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def main() -> int:
    path = speech(60)
    try:
        with Server() as server:
            idle = []
            with httpx.Client(base_url=server.url) as probe:
                for _ in range(100):
                    t = time.perf_counter()
                    probe.get("/health")
                    idle.append((time.perf_counter() - t) * 1000)
            done = threading.Event()

            def work() -> None:
                try:
                    with httpx.Client(base_url=server.url) as client:
                        transcribe(client, path)
                finally:
                    done.set()

            threading.Thread(target=work, daemon=True).start()
            busy = []
            deadline = time.monotonic() + 300
            with httpx.Client(base_url=server.url) as probe:
                while probe.get("/info").json()["running"] == 0 and not done.is_set() and time.monotonic() < deadline:
                    time.sleep(0.01)
                while not done.is_set() and len(busy) < MAX_PROBES and time.monotonic() < deadline:
                    t = time.perf_counter()
                    r = probe.get("/health")
                    busy.append((time.perf_counter() - t) * 1000)
                    if r.status_code != 200:
                        print(f"/health answered {r.status_code} during work")
                        return 1
                    time.sleep(0.01)
            done.wait(300)
    finally:
        path.unlink()
    idle.sort()
    busy.sort()
    p99 = percentile(busy, 0.99)
    print(f"idle: n={len(idle)} p50={percentile(idle, 0.5):.2f} ms p99={percentile(idle, 0.99):.2f} ms")
    print(f"during transcription: n={len(busy)} p50={percentile(busy, 0.5):.2f} ms p99={p99:.2f} ms max={busy[-1]:.2f} ms")
    print(f"p99 ratio to goal: {p99 / GOAL_P99_MS:.3f} (p99 {p99:.2f} ms, goal <= {GOAL_P99_MS:.0f} ms)")
    return 0 if p99 <= GOAL_P99_MS else 1


if __name__ == "__main__":
    sys.exit(main())
