"""The NLI score cache: round trip, and several processes writing at once."""
import multiprocessing

from lorasum.metrics.faithfulness.cache import ScoreCache, text_hash


def test_round_trip(tmp_path):
    cache = ScoreCache(tmp_path / "c.sqlite")
    cache.put_many("m", [(text_hash("a"), text_hash("s"), 0.25, 3, True)])
    assert cache.get_many("m", [(text_hash("a"), text_hash("s")), (text_hash("a"), text_hash("t"))]) == {
        (text_hash("a"), text_hash("s")): (0.25, 3, True)}
    assert cache.get_many("other model", [(text_hash("a"), text_hash("s"))]) == {}


def _writer(path: str, worker: int, rows: int, start) -> None:
    cache = ScoreCache(path)
    start.wait(60)  # both processes begin writing together
    for i in range(rows):  # one transaction per row: the most contention
        cache.put_many("m", [(text_hash(f"article {i}"), text_hash(f"w{worker} summary {i}"), i / rows, 1, False)])
        cache.get_many("m", [(text_hash(f"article {i}"), text_hash(f"w{1 - worker} summary {i}"))])
    cache.close()


def test_two_processes_write_at_once(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ScoreCache(path).close()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(path, w, 150, start)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    cache = ScoreCache(path)
    assert cache.count("m") == 300
    keys = [(text_hash(f"article {i}"), text_hash(f"w{w} summary {i}")) for w in (0, 1) for i in range(150)]
    assert len(cache.get_many("m", keys)) == 300
