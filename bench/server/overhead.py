"""Server overhead: wall time of POST /transcribe against the engine's own time.

Two ratios for the same ~60 s of speech:
  wall / processing_time   processing_time is what the engine process reports (decode + transcribe)
  wall / in-process engine the same engine timed directly in this process, no server at all
Goal: <= 1.05.
"""

from __future__ import annotations

import statistics
import sys
import time

import httpx

from _common import Server, speech, transcribe

RUNS = 3
GOAL = 1.05


def engine_in_process(path) -> float:
    from jarvis_gpu_server.audio import decode_audio
    from jarvis_gpu_server.engines import EngineSpec, TranscribeOptions, create_engine

    engine = create_engine(EngineSpec(engine="pocketsphinx", model="en-us"))
    engine.load()
    started = time.perf_counter()
    audio = decode_audio(str(path))
    engine.transcribe(audio, TranscribeOptions())
    return time.perf_counter() - started


def main() -> int:
    path = speech(60)
    try:
        with Server() as server, httpx.Client(base_url=server.url) as client:
            walls, engine_times, direct = [], [], []
            for _ in range(RUNS):  # interleaved, so load drift on a shared box hits both alike
                started = time.perf_counter()
                result = transcribe(client, path)
                walls.append(time.perf_counter() - started)
                engine_times.append(result["processing_time"])
                direct.append(engine_in_process(path))
            duration = result["duration"]
    finally:
        path.unlink()
    wall, engine, local = statistics.median(walls), statistics.median(engine_times), statistics.median(direct)
    ratio = wall / engine
    print(f"audio: {duration:.1f} s of speech, {RUNS} runs, medians")
    print(f"POST /transcribe wall: {wall:.3f} s   engine processing_time: {engine:.3f} s   in-process engine: {local:.3f} s")
    print(f"overhead ratio wall/processing_time: {ratio:.3f} (goal <= {GOAL})")
    print(f"overhead ratio wall/in-process engine: {wall / local:.3f}")
    print(f"realtime factor (processing/audio): {engine / duration:.3f}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
