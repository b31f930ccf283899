"""Command-line flags and environment variables.

Every flag has an environment variable named ``JARVIS_GPU_<FLAG>`` (``--max-upload-mb`` is
``JARVIS_GPU_MAX_UPLOAD_MB``). Precedence: flag, then ``JARVIS_GPU_*``, then the aliases
users of these deployments already set (``EXTERNAL_GPU_API_KEY``, ``HUGGINGFACE_TOKEN`` /
``HF_TOKEN``, ``WHISPER_MODEL``), then the default.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

ENV_PREFIX = "JARVIS_GPU_"

ENGINES = ("auto", "whisperx", "pocketsphinx")


class ConfigError(Exception):
    """A bad flag or environment value; the process exits with code 2."""


@dataclass(frozen=True)
class Option:
    flag: str
    help: str
    kind: str = "str"  # str | int | float | bool
    default: Any = None
    aliases: tuple[str, ...] = ()
    secret: bool = False

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()


def default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "jarvis-gpu-server")


OPTIONS: tuple[Option, ...] = (
    Option("--host", "address to listen on (non-loopback needs --api-key or --insecure)", default="127.0.0.1"),
    Option("--port", "TCP port (0 picks a free one; the log says which)", kind="int", default=8000),
    Option(
        "--api-key",
        "key every route but /health and /livez requires (X-API-Key or Authorization: Bearer); "
        "prefer the environment variable, argv is visible to other users",
        aliases=("EXTERNAL_GPU_API_KEY",),
        secret=True,
    ),
    Option(
        "--hf-token",
        "Hugging Face token for pyannote diarization (whisperx engine)",
        aliases=("HUGGINGFACE_TOKEN", "HF_TOKEN"),
        secret=True,
    ),
    Option("--engine", "auto | whisperx | pocketsphinx (auto = whisperx, never pocketsphinx)", default="auto"),
    Option(
        "--model",
        "whisper model for whisperx (default large-v3); pocketsphinx only has en-us",
        aliases=("WHISPER_MODEL",),
    ),
    Option("--device", "auto | cuda | cuda:N | cpu (auto = CUDA when torch sees one)", default="auto"),
    Option("--compute-type", "auto | float16 | int8 | int8_float16 | float32 (auto: float16 on CUDA, int8 on CPU)", default="auto"),
    Option("--batch-size", "whisperx batched-inference batch size", kind="int", default=16),
    Option("--max-upload-mb", "largest accepted upload in MiB (413 beyond)", kind="float", default=1024.0),
    Option("--queue-size", "transcriptions that may wait behind the running one (429 beyond)", kind="int", default=8),
    Option("--data-dir", "where jobs (SQLite), job audio and temp files live", default=None),
    Option("--insecure", "allow listening beyond loopback without an API key", kind="bool", default=False),
    Option(
        "--webhook-secret",
        "HMAC secret for job webhooks (default: the API key; with neither, webhooks are sent unsigned)",
        secret=True,
    ),
    Option("--job-retention-hours", "finished jobs are deleted after this many hours", kind="float", default=168.0),
    Option("--log-level", "debug | info | warning | error", default="info"),
    Option("--access-log", "log every HTTP request", kind="bool", default=False),
)


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    hf_token: str | None = None
    engine: str = "auto"
    model: str | None = None
    device: str = "auto"
    compute_type: str = "auto"
    batch_size: int = 16
    max_upload_mb: float = 1024.0
    queue_size: int = 8
    data_dir: str = field(default_factory=default_data_dir)
    insecure: bool = False
    webhook_secret: str | None = None
    job_retention_hours: float = 168.0
    log_level: str = "info"
    access_log: bool = False

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def signing_secret(self) -> str | None:
        return self.webhook_secret or self.api_key

    def __repr__(self) -> str:  # never print secrets, even by accident
        shown = {k: ("***" if k in ("api_key", "hf_token", "webhook_secret") and v else v) for k, v in vars(self).items()}
        return f"Settings({shown})"


TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def _convert(opt: Option, raw: Any, source: str) -> Any:
    if opt.kind == "bool":
        if isinstance(raw, bool):
            return raw
        value = str(raw).strip().lower()
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise ConfigError(f"{source}: expected true or false, got {raw!r}")
    if opt.kind in ("int", "float"):
        try:
            return int(raw) if opt.kind == "int" else float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: expected a{'n integer' if opt.kind == 'int' else ' number'}, got {raw!r}") from None
    value = str(raw).strip()
    return value or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jarvis_gpu_server",
        description="jarvis transcription server (WhisperX or PocketSphinx behind one HTTP API). "
        f"Every flag is also an environment variable {ENV_PREFIX}<FLAG>, e.g. {ENV_PREFIX}PORT.",
    )
    for opt in OPTIONS:
        env_names = ", ".join((opt.env,) + opt.aliases)
        default = "" if opt.default is None or opt.secret else f"; default {opt.default}"
        if opt.kind == "bool":
            parser.add_argument(opt.flag, dest=opt.dest, action="store_const", const=True, default=None,
                                help=f"{opt.help} (env {env_names})")
        else:
            parser.add_argument(opt.flag, dest=opt.dest, default=None, metavar=opt.dest.upper(),
                                help=f"{opt.help} (env {env_names}{default})")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"jarvis-gpu-server {__version__}")
    return parser


def load_settings(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        raw = getattr(args, opt.dest)
        source = opt.flag
        if raw is None:
            for name in (opt.env,) + opt.aliases:
                if environ.get(name, "").strip() != "" or (opt.kind == "bool" and name in environ):
                    raw, source = environ[name], name
                    break
        values[opt.dest] = opt.default if raw is None else _convert(opt, raw, source)
        if values[opt.dest] is None and opt.default is not None:
            values[opt.dest] = opt.default
    if values["data_dir"] is None:
        values["data_dir"] = default_data_dir()
    settings = Settings(**values)
    validate(settings)
    return settings


def validate(s: Settings) -> None:
    s.engine = (s.engine or "auto").lower()
    if s.engine not in ENGINES:
        raise ConfigError(f"--engine: expected one of {', '.join(ENGINES)}, got {s.engine!r}")
    if not 0 <= s.port <= 65535:
        raise ConfigError(f"--port: expected 0-65535, got {s.port}")
    if s.batch_size < 1:
        raise ConfigError(f"--batch-size: expected a positive integer, got {s.batch_size}")
    if s.queue_size < 0:
        raise ConfigError(f"--queue-size: expected 0 or more, got {s.queue_size}")
    if s.max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb: expected a positive number, got {s.max_upload_mb}")
    if s.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"--log-level: expected debug, info, warning or error, got {s.log_level!r}")
    s.log_level = s.log_level.lower()
    device = s.device.lower()
    if not (device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ConfigError(f"--device: expected auto, cpu, cuda or cuda:N, got {s.device!r}")
    s.device = device
    s.data_dir = str(Path(s.data_dir).expanduser())
    if not s.api_key and not s.insecure and not is_loopback(s.host):
        raise ConfigError(
            f"refusing to listen on {s.host} without an API key: anyone who can reach this port could use "
            f"the server. Set --api-key (or {ENV_PREFIX}API_KEY / EXTERNAL_GPU_API_KEY), "
            "or pass --insecure to serve without one."
        )


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
