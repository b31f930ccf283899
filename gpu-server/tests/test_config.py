"""Flags, environment variables, the loopback rule, engine choice."""

import subprocess
import sys

import pytest

from helpers import GPU_SERVER
from jarvis_gpu_server.config import ConfigError, is_loopback, load_settings


def run_server(*args, env=None):
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("JARVIS_GPU_") and k != "EXTERNAL_GPU_API_KEY"}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "jarvis_gpu_server", *args], capture_output=True, text=True,
                          timeout=30, env=base, cwd=str(GPU_SERVER))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_non_loopback_without_key_is_refused(host, tmp_path):
    proc = run_server("--host", host, "--engine", "pocketsphinx", "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "refusing to listen on" in proc.stderr and "--api-key" in proc.stderr and "--insecure" in proc.stderr


def test_loopback_hosts():
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "10.0.0.1", "my.host"):
        assert not is_loopback(host), host


def test_non_loopback_allowed_with_key_or_insecure():
    assert load_settings(["--host", "0.0.0.0"], {"EXTERNAL_GPU_API_KEY": "k"}).api_key == "k"
    assert load_settings(["--host", "0.0.0.0", "--insecure"], {}).insecure is True
    assert load_settings(["--host", "0.0.0.0"], {"JARVIS_GPU_INSECURE": "true"}).insecure is True
    with pytest.raises(ConfigError):
        load_settings(["--host", "0.0.0.0"], {"JARVIS_GPU_INSECURE": "false"})


def test_environment_and_precedence():
    env = {"JARVIS_GPU_PORT": "9001", "WHISPER_MODEL": "medium", "HUGGINGFACE_TOKEN": "hf_a", "HF_TOKEN": "hf_b",
           "JARVIS_GPU_MAX_UPLOAD_MB": "12.5", "JARVIS_GPU_QUEUE_SIZE": "3", "JARVIS_GPU_BATCH_SIZE": "4",
           "JARVIS_GPU_COMPUTE_TYPE": "int8_float16", "JARVIS_GPU_DEVICE": "CUDA:1", "JARVIS_GPU_DATA_DIR": "/tmp/d"}
    s = load_settings([], env)
    assert (s.port, s.model, s.hf_token, s.max_upload_mb, s.queue_size, s.batch_size) == (9001, "medium", "hf_a", 12.5, 3, 4)
    assert (s.compute_type, s.device, s.data_dir) == ("int8_float16", "cuda:1", "/tmp/d")
    s = load_settings(["--port", "9002", "--model", "small"], {**env, "JARVIS_GPU_MODEL": "tiny"})
    assert (s.port, s.model) == (9002, "small")
    assert load_settings([], {**env, "JARVIS_GPU_MODEL": "tiny"}).model == "tiny"
    assert load_settings([], {"JARVIS_GPU_API_KEY": "a", "EXTERNAL_GPU_API_KEY": "b"}).api_key == "a"
    assert "hf_a" not in repr(load_settings([], env))


@pytest.mark.parametrize("args,env,message", [
    (["--port", "x"], {}, "expected an integer"),
    (["--engine", "vosk"], {}, "--engine"),
    (["--device", "tpu"], {}, "--device"),
    ([], {"JARVIS_GPU_QUEUE_SIZE": "-1"}, "--queue-size"),
    ([], {"JARVIS_GPU_INSECURE": "perhaps"}, "JARVIS_GPU_INSECURE"),
])
def test_bad_values(args, env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(args, env)


def test_auto_engine_never_falls_back_to_pocketsphinx(tmp_path):
    proc = run_server("--engine", "auto", "--data-dir", str(tmp_path), "--port", "0")
    assert proc.returncode == 2
    assert "WhisperX" in proc.stderr and "[whisperx]" in proc.stderr and "--engine pocketsphinx" in proc.stderr


def test_pocketsphinx_refuses_cuda(tmp_path):
    proc = run_server("--engine", "pocketsphinx", "--device", "cuda", "--data-dir", str(tmp_path), "--port", "0")
    assert proc.returncode == 2 and "CPU only" in proc.stderr


def test_help_lists_every_flag_and_env():
    out = run_server("--help").stdout
    for flag in ("--host", "--port", "--api-key", "--hf-token", "--engine", "--model", "--device", "--compute-type",
                 "--batch-size", "--max-upload-mb", "--queue-size", "--data-dir", "--insecure", "--webhook-secret"):
        assert flag in out
    for env in ("JARVIS_GPU_PORT", "EXTERNAL_GPU_API_KEY", "HF_TOKEN", "WHISPER_MODEL"):
        assert env in out
