#!/usr/bin/env bash
# The main job on a machine with no GPU and no network: install, start the bundled server
# with the pocketsphinx engine, transcribe a bundled LibriVox sample, print the transcript.
set -euo pipefail
trap 'echo "$(basename "$0"): failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR
source "$(dirname "$0")/env.sh"
cd "$root"
bash scripts/install.sh
jarvis() { node "$root/bin/run.js" "$@"; }
port="${JARVIS_TRY_PORT:-8765}"
jarvis gpu-server start --engine pocketsphinx --port "$port"
out="$(mktemp -d)"
sample="test/fixtures/audio/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"
EXTERNAL_GPU_URL="http://127.0.0.1:$port" jarvis transcribe "$sample" --format txt,srt --output-dir "$out" --force
echo
echo "Transcript ($out/$(basename "${sample%.wav}").txt):"
cat "$out/$(basename "${sample%.wav}").txt"
echo
echo "Reference: $(grep "$(basename "${sample%.wav}")" test/fixtures/audio/librivox/transcripts.tsv | cut -f2)"
echo
echo "The server keeps running: jarvis gpu-server stop --port $port"
