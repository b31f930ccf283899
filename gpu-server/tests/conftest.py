import pytest

from helpers import API_KEY, ServerProcess, clips

HF_MARKER = "hf_TESTTOKEN_must_never_be_logged"


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The real server, pocketsphinx engine, API key set; shared by most tests."""
    srv = ServerProcess(tmp_path_factory.mktemp("data"), env={"HF_TOKEN": HF_MARKER})
    srv.start()
    yield srv
    code = srv.stop()
    assert code in (0, -15), srv.log  # uvicorn re-raises SIGTERM after a clean shutdown


@pytest.fixture
def client(server):
    with server.client() as c:
        yield c


@pytest.fixture(scope="session")
def librivox():
    return clips()


@pytest.fixture(scope="session")
def wav_texts(server, librivox):
    """Transcripts of the original WAV clips, computed once."""
    texts = {}
    with server.client() as c:
        for clip in librivox:
            with open(clip.path, "rb") as fh:
                r = c.post("/transcribe", files={"file": (clip.path.name, fh, "audio/wav")})
            assert r.status_code == 200, r.text
            texts[clip.name] = r.json()
    return texts


def assert_error(response, status, code=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"], body
    if code:
        assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body["error"]
