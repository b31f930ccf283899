"""Streaming multipart parser: the ``file`` part goes straight to a temp file in chunks,
counted against the upload limit as it arrives (413 as soon as it is exceeded); the
other fields are small strings kept in memory."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from .errors import ApiError

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 64


@dataclass
class Upload:
    fields: dict[str, list[str]] = field(default_factory=dict)
    path: str | None = None
    filename: str | None = None
    content_type: str | None = None
    size: int = 0

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else default

    def getlist(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    def discard(self) -> None:
        if self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = None


def too_large(limit: int) -> ApiError:
    return ApiError(413, "upload_too_large", f"the upload is larger than this server's limit of {limit / 1048576:g} MiB (--max-upload-mb)")


async def receive_upload(request: Request, tmp_dir: str, limit: int, file_field: str = "file") -> Upload:
    ctype, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise ApiError(400, "invalid_request", f"expected a multipart/form-data body with the audio in a '{file_field}' field")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + 1024 * 1024:
        raise too_large(limit)  # refuse before reading a byte

    upload = Upload()
    state: dict = {"headers": {}, "field": b"", "value": b"", "name": None, "kind": None, "fh": None, "count": 0}

    def on_part_begin() -> None:
        state.update(headers={}, field=b"", value=b"", name=None, kind=None)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].decode("latin-1").lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(state["headers"].get("content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        state["count"] += 1
        if state["count"] > MAX_FIELDS:
            raise ApiError(400, "invalid_request", "too many form fields")
        if name == file_field:
            if upload.path is not None:
                raise ApiError(400, "invalid_request", f"send exactly one '{file_field}' part")
            fd, path = tempfile.mkstemp(prefix="upload-", suffix=".audio", dir=tmp_dir)
            upload.path = path
            state["fh"] = os.fdopen(fd, "wb")
            filename = disp.get(b"filename")
            upload.filename = os.path.basename(filename.decode("utf-8", "replace")) if filename else None
            upload.content_type = state["headers"].get("content-type", b"").decode("latin-1") or None
            state["kind"] = "file"
        elif disp.get(b"filename") is not None:
            state["kind"] = "ignored"  # some other file part; not ours
        else:
            state["kind"] = "field"
            state["buf"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        kind = state["kind"]
        if kind == "file":
            upload.size += end - start
            if upload.size > limit:
                raise too_large(limit)
            state["fh"].write(data[start:end])
        elif kind == "field":
            state["buf"] += data[start:end]
            if len(state["buf"]) > MAX_FIELD_BYTES:
                raise ApiError(400, "invalid_request", f"form field '{state['name']}' is too long")

    def on_part_end() -> None:
        if state["kind"] == "file":
            state["fh"].close()
            state["fh"] = None
        elif state["kind"] == "field":
            upload.fields.setdefault(state["name"], []).append(bytes(state["buf"]).decode("utf-8", "replace"))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except ApiError:
        _abort(state, upload)
        raise
    except ClientDisconnect:
        _abort(state, upload)
        raise
    except Exception as exc:  # malformed multipart
        _abort(state, upload)
        raise ApiError(400, "invalid_request", f"malformed multipart body: {exc}") from None
    if state["fh"] is not None:  # body ended inside the file part
        _abort(state, upload)
        raise ApiError(400, "invalid_request", "the multipart body ended before the file did")
    return upload


def _abort(state: dict, upload: Upload) -> None:
    if state.get("fh") is not None:
        try:
            state["fh"].close()
        except OSError:
            pass
        state["fh"] = None
    upload.discard()
