"""``python -m jarvis_gpu_server``: parse flags, bind, serve, load the model meanwhile."""

from __future__ import annotations

import logging
import os
import platform
import socket
import sys

from . import __version__
from .config import ConfigError, Settings, load_settings
from .engines import DEFAULT_MODELS, EngineSpec, EngineUnavailable, check_installed, resolve_engine
from .log import fatal, setup_logging

log = logging.getLogger("jarvis_gpu_server")


def bind(host: str, port: int) -> socket.socket:
    host = host.strip("[]")
    if host == "localhost":
        host = "127.0.0.1"
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = infos[0]
    # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
    # IPPROTO_TCP, and without it small keep-alive responses wait ~40 ms for delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(address)
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_for(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def engine_spec(settings: Settings) -> EngineSpec:
    engine = resolve_engine(settings.engine)
    check_installed(engine)
    model = settings.model or DEFAULT_MODELS[engine]
    if engine == "pocketsphinx" and model != "en-us":
        if settings.model and os.environ.get("WHISPER_MODEL", "") != settings.model:
            log.warning("pocketsphinx only has the en-us model; ignoring --model %s", settings.model)
        model = "en-us"
    if engine == "pocketsphinx" and settings.device not in ("auto", "cpu"):
        raise EngineUnavailable(f"pocketsphinx runs on the CPU only; --device {settings.device} is not possible")
    return EngineSpec(engine=engine, model=model, device=settings.device, compute_type=settings.compute_type,
                      batch_size=settings.batch_size, hf_token=settings.hf_token)


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings(argv)
    except ConfigError as exc:
        fatal(str(exc))
        return 2
    setup_logging(settings.log_level)
    try:
        spec = engine_spec(settings)
    except EngineUnavailable as exc:
        fatal(str(exc))
        return 2
    log.info("starting jarvis-gpu-server %s (python %s, engine %s, model %s)",
             __version__, platform.python_version(), spec.engine, spec.model)
    try:
        os.makedirs(settings.data_dir, exist_ok=True)
    except OSError as exc:
        fatal(f"cannot create --data-dir {settings.data_dir}: {exc}")
        return 1
    try:
        sock = bind(settings.host, settings.port)
    except OSError as exc:
        fatal(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
        return 1
    url = url_for(sock)
    if settings.api_key is None and settings.insecure:
        log.warning("no API key and --insecure: anyone who can reach %s can use this server", url)

    import uvicorn

    from .app import create_app

    app = create_app(settings, spec, url)
    state = app.state.server
    config = uvicorn.Config(app, log_config=None, access_log=settings.access_log, lifespan="on",
                            timeout_graceful_shutdown=10, server_header=False)
    server = uvicorn.Server(config)
    state.uvicorn = server
    log.info("listening on %s (loading the model; /health answers 503 until ready)", url)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    if state.exit_code:
        return state.exit_code
    return 0 if server.started or not server.should_exit else 1


if __name__ == "__main__":
    sys.exit(main())
