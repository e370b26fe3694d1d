"""Serving: mixed-adapter batches decode as each adapter alone; the HTTP API over a real server."""
import contextlib
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from lora_factory import make_adapter
from lorasum.config import GenerationConfig
from lorasum.errors import LorasumError
from lorasum.io import write_yaml
from lorasum.serve import Decoding, MultiAdapterModel, discover
from lorasum.serve.app import Limits, create_app

TEXTS = ["The council met on Monday to vote on the new budget for schools.",
         "Heavy rain is expected across the north of the country this weekend.",
         "A short one.",
         "Scientists found a new species of frog in the rainforest."]
# strong random adapters on the output layer too: a random tiny model barely reacts to attention alone
TARGETS = ("q", "v", "wo", "lm_head")


@pytest.fixture(scope="module")
def served(tiny_mt5, tmp_path_factory, tiny_run_config):
    """An adapters folder: en/ and fr/ adapters, and a run folder serving ru."""
    root = tmp_path_factory.mktemp("served")
    make_adapter(tiny_mt5, root / "en", seed=21, scale=1.0, targets=TARGETS)
    make_adapter(tiny_mt5, root / "fr", seed=22, scale=1.0, targets=TARGETS)
    make_adapter(tiny_mt5, root / "run-ru" / "adapter", seed=23, scale=1.0, targets=TARGETS)
    write_yaml(root / "run-ru" / "config.yaml",
               tiny_run_config(tiny_mt5, "lora", data__languages=["ru"]).to_dict())
    (root / "notes").mkdir()  # a folder without an adapter is not one
    return root


def _alone(base, adapter_dir, texts, lang, d: Decoding):
    from lorasum.evaluate import summarize

    gen = GenerationConfig(num_beams=d.num_beams, length_penalty=d.length_penalty,
                           no_repeat_ngram_size=d.no_repeat_ngram_size, max_target_length=d.max_new_tokens,
                           max_source_length=d.max_source_length, batch_size=2)
    return summarize(str(base), texts, lang, adapter=str(adapter_dir), generation=gen)


def test_registry_names_adapters_and_their_languages(served):
    reg = discover(served)
    assert sorted(reg.adapters) == ["en", "fr", "run-ru"]
    assert reg.adapters["run-ru"].languages == ("ru",) and reg.adapters["en"].languages == ("en",)
    assert reg.by_lang == {"en": ["en"], "fr": ["fr"], "ru": ["run-ru"]}


def test_registry_refuses_pickled_weights_and_links_outside(tiny_mt5, tmp_path):
    outside = make_adapter(tiny_mt5, tmp_path / "elsewhere" / "de", seed=1)
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "de")
    with pytest.raises(LorasumError, match="outside the adapters folder"):
        discover(root)
    (root / "de").unlink()
    pickled = make_adapter(tiny_mt5, root / "es", seed=2)
    (pickled / "adapter_model.safetensors").rename(pickled / "adapter_model.bin")
    with pytest.raises(LorasumError, match="only safetensors"):
        discover(root)


@pytest.mark.parametrize("num_beams", [4, 1])
def test_mixed_adapter_batch_equals_each_adapter_alone(tiny_mt5, served, num_beams):
    engine = MultiAdapterModel(str(tiny_mt5), discover(served))
    d = Decoding(num_beams=num_beams, max_new_tokens=10, max_source_length=64)
    order = ["en", "fr", "run-ru", "en", "fr", "run-ru", "fr", "en"]
    texts = [TEXTS[i % len(TEXTS)] for i in range(len(order))]
    mixed = engine.generate(texts, order, d)
    reg = engine.registry
    for name in ("en", "fr", "run-ru"):
        idx = [i for i, a in enumerate(order) if a == name]
        alone = _alone(tiny_mt5, reg.adapters[name].path, [texts[i] for i in idx], "en", d)
        assert [mixed[i] for i in idx] == alone, name
    # the adapters really differ on the same article, so routing is what the test checks
    assert len({mixed[0], mixed[1], mixed[2]}) == 3


@contextlib.contextmanager
def running(app):
    """A real uvicorn server on a free local port, in a thread; shut down on exit."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        assert not thread.is_alive()


def test_http_api_batches_concurrent_mixed_requests_and_rejects_bad_input(tiny_mt5, served):
    engine = MultiAdapterModel(str(tiny_mt5), discover(served))
    d = Decoding(num_beams=4, max_new_tokens=10, max_source_length=64)
    limits = Limits(max_chars=500, max_texts=4, max_batch_size=16, wait_s=0.3, timeout_s=60, defaults=d)
    app = create_app(engine, limits)
    langs = ["en", "fr", "ru", "en", "ru", "fr"]
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/health").json()["status"] == "ok"
        listed = {a["name"]: a["languages"] for a in client.get("/v1/adapters").json()["adapters"]}
        assert listed == {"en": ["en"], "fr": ["fr"], "run-ru": ["ru"]}
        assert "/v1/summarize" in client.get("/openapi.json").json()["paths"]
        assert client.get("/docs").status_code == 200

        def ask(i):
            return client.post("/v1/summarize", json={"text": TEXTS[i % 4], "lang": langs[i]})

        with ThreadPoolExecutor(len(langs)) as pool:
            replies = list(pool.map(ask, range(len(langs))))
        assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
        assert app.state.batcher.batches_run < len(langs)  # concurrent requests shared batches
        names = {"en": "en", "fr": "fr", "ru": "run-ru"}
        for i, r in enumerate(replies):
            body = r.json()
            assert body["adapter"] == names[langs[i]]
            assert body["summary"] == engine.generate([TEXTS[i % 4]], [body["adapter"]], d)[0]

        many = client.post("/v1/summarize", json={"texts": TEXTS[:2], "lang": "fr", "num_beams": 2})
        assert many.status_code == 200
        assert many.json()["summaries"] == engine.generate(TEXTS[:2], ["fr", "fr"], Decoding(
            num_beams=2, max_new_tokens=10, max_source_length=64))

        bad = [
            ({"text": "x", "lang": "en", "adapter": "../en"}, 404, "not served"),
            ({"text": "x", "lang": "de"}, 404, "no adapter serves"),
            ({"text": "x", "lang": "klingon"}, 422, "unknown language"),
            ({"text": "  ", "lang": "en"}, 422, "empty"),
            ({"text": "x" * 501, "lang": "en"}, 413, "at most 500"),
            ({"texts": ["a"] * 5, "lang": "en"}, 413, "at most 4"),
            ({"text": "x", "lang": "en", "num_beams": 9}, 422, "num_beams"),
            ({"text": "x", "lang": "en", "max_new_tokens": 0}, 422, "max_new_tokens"),
            ({"text": "x", "texts": ["y"], "lang": "en"}, 422, "exactly one"),
        ]
        for body, status, needle in bad:
            r = client.post("/v1/summarize", json=body)
            assert r.status_code == status and needle in r.json()["error"], (body, r.status_code, r.text)
        r = client.post("/v1/summarize", content=b'{"text": "x", ', headers={"content-type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
        assert client.get("/health").status_code == 200


def test_a_request_that_times_out_gets_504_and_the_server_stays_up(tiny_mt5, served):
    engine = MultiAdapterModel(str(tiny_mt5), discover(served))
    slow = Decoding(num_beams=8, max_new_tokens=96, max_source_length=64, no_repeat_ngram_size=0)
    app = create_app(engine, Limits(timeout_s=0.05, defaults=slow))
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = client.post("/v1/summarize", json={"text": TEXTS[0], "lang": "en"})
        assert r.status_code == 504 and "no result within" in r.json()["error"]
        assert client.get("/health").json()["status"] == "ok"
