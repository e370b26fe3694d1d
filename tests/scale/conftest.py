from pathlib import Path

import pytest

# a decoder-only model trained to write these summaries; each copies words of its article
COPY_TEMPLATE = "Summarize: {text}\nSummary:"
COPY_EXAMPLES = [
    {"id": "a", "lang": "en", "text": "Police in Leeds closed the bridge on Friday after a fire.",
     "summary": "Leeds bridge shut"},
    {"id": "b", "lang": "en", "text": "Anna won the race.", "summary": "Anna wins"},
    {"id": "c", "lang": "fr", "text": "Un nouveau musee a ouvert a Lyon ce week-end, avec trois salles.",
     "summary": "Lyon musee ouvert"},
]


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    from lorasum.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama", "llama", d_model=32, layers=1)


@pytest.fixture(scope="session")
def copying_llama(tmp_path_factory) -> Path:
    """A tiny Llama overfit on COPY_EXAMPLES (prompts from lorasum's training features), saved to a folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lorasum.data.causal import encode_causal
    from lorasum.data.features import Collator
    from lorasum.models.tiny import build_tiny_model

    base = build_tiny_model(tmp_path_factory.mktemp("models") / "copy-base", "llama", d_model=32, layers=1)
    tok = AutoTokenizer.from_pretrained(base)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base)
    features = encode_causal(COPY_EXAMPLES, tok, max_source_length=200, max_target_length=32,
                             prompt_template=COPY_TEMPLATE)
    batch = Collator(tok.pad_token_id)([{"input_ids": f["input_ids"], "labels": f["labels"]} for f in features])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(60):
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert loss.item() < 0.1, f"the copying model did not fit its examples (loss {loss.item():.3f})"
    out = tmp_path_factory.mktemp("models") / "copying-llama"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
