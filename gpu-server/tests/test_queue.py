import pytest

from jarvis_gpu_server.worker import QueueFull, Task, WorkQueue


def task(key):
    return Task(key=key, path="/nonexistent", options={})


def test_bounded_queue():
    q = WorkQueue(2)
    q.put(task("a"))
    q.put(task("b"))
    assert q.depth == 2 and not q.has_room()
    with pytest.raises(QueueFull):
        q.put(task("c"))
    q.put(task("restored-job"), force=True)  # jobs recovered after a restart are never refused
    assert q.depth == 3
    assert q.remove("b").key == "b" and q.remove("b") is None
    assert [q.get().key, q.get().key] == ["a", "restored-job"]
    q.close()
    assert q.get() is None


def test_zero_means_no_waiting():
    q = WorkQueue(0)
    with pytest.raises(QueueFull):
        q.put(task("a"))
