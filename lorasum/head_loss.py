"""The LM head and its cross-entropy in one pass, a chunk of label positions at a time.

Training needs only the summed loss over the label tokens and its gradient; the logits are
a means. Computed the usual way they are materialised as ``[tokens, vocabulary]`` in the
forward pass, again as the log-softmax, and once more as its gradient: with mT5's 250k
vocabulary that is the tensor that limits the batch size on a GPU, and at a 32k vocabulary
on a CPU the passes over it cost as much as the layers. Here each chunk of rows gets its
logits, their ``exp(z - max)`` in place (shared by the loss and the gradient) and the
gradients through the head at once (the softmax's product with the head weight, minus the
target's weight row and the smoothing's mean row, so the ``[chunk, vocabulary]`` gradient is
never written); only one chunk's logits are ever held, and backward scales the stored
gradients. On the training benchmark at a 32k vocabulary (CPU) the head and its loss take
about a third less time than linear + ``cross_entropy``.

Written by hand because ``torch.nn.functional.linear_cross_entropy`` (PyTorch's chunked
version) falls back to full logits for any ``label_smoothing`` other than 0 (XL-Sum trains
with 0.1) and its automatic chunk size is an order of magnitude slower than no chunking on
a CPU. Label smoothing is PyTorch's: the target is ``(1 - s) * one_hot + s / vocabulary``.
"""
from __future__ import annotations

import torch

# logits held at once, in elements (64 MiB in fp32): one chunk for a CPU batch at a 32k vocabulary,
# ~67 rows at mT5's 250k; larger chunks keep the matrix products efficient
CHUNK_ELEMENTS = 2**24


def default_chunk_rows(vocab: int) -> int:
    """Rows per chunk so that one chunk's logits stay within :data:`CHUNK_ELEMENTS`."""
    return max(1, CHUNK_ELEMENTS // max(vocab, 1))


class _LinearCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of ``hidden @ weight.T + bias``; gradients computed in forward."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, smoothing: float, chunk_rows: int):
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        vocab = weight.shape[0]
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        grad_b = torch.zeros(vocab, dtype=torch.float32, device=weight.device) if need_b else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        uniform = smoothing / vocab  # the smoothing's share of every class: d/dz of -s * mean(z)
        # its part of the gradient of every row's hidden state
        uniform_h = smoothing * weight.float().mean(0) if need_h and smoothing else None
        for start in range(0, hidden.shape[0], chunk_rows):
            h = hidden[start:start + chunk_rows]
            t = targets[start:start + chunk_rows]
            raw = torch.nn.functional.linear(h, weight, bias)
            logits = raw.float()
            target_logit = logits.gather(1, t[:, None]).squeeze(1)
            mean_logit = logits.mean(1) if smoothing else None
            top = logits.amax(1, keepdim=True)
            # exp(z - max) in place of the logits: one pass, shared by the loss and the gradient
            e = logits.sub_(top).exp_()
            norm = e.sum(1, keepdim=True)
            lse = (top + norm.log()).squeeze(1)
            # -log p(target) with the smoothed target: lse - (1 - s) * z_t - s * mean(z)
            loss = lse - (1 - smoothing) * target_logit
            if smoothing:
                loss = loss - smoothing * mean_logit
            total += loss.sum()
            if not (need_h or need_w or need_b):
                continue
            # d loss / d z = softmax - (1 - s) * one_hot(t) - s / V; the softmax is e / norm, and the other two
            # terms are rows of the weight (and a constant), so the [chunk, vocabulary] gradient is never written
            inv = norm.reciprocal()
            g = e.to(raw.dtype)
            if need_h:
                grad = (g @ weight).float().mul_(inv)
                grad -= (1 - smoothing) * weight[t].float()
                if smoothing:
                    grad -= uniform_h
                grad_h[start:start + chunk_rows] = grad
            if need_w:
                grad_w += (g.t() @ (h * inv.to(h.dtype))).float()
                grad_w.index_add_(0, t, h.float(), alpha=-(1 - smoothing))
                if smoothing:
                    grad_w -= uniform * h.float().sum(0)
            if need_b:
                grad_b += (e.t() @ inv).squeeze(1)
                grad_b.index_add_(0, t, torch.full(t.shape, -(1 - smoothing), device=t.device))
                if smoothing:
                    grad_b -= uniform * h.shape[0]
        ctx.save_for_backward(*(x for x in (grad_h, grad_w, grad_b) if x is not None))
        ctx.present = (need_h, need_w, need_b)
        ctx.dtypes = (hidden.dtype, weight.dtype, bias.dtype if bias is not None else None)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        saved = iter(ctx.saved_tensors)
        grads = [next(saved) * grad_out if present else None for present in ctx.present]
        grads = [g.to(dtype) if g is not None else None for g, dtype in zip(grads, ctx.dtypes)]
        return (*grads, None, None, None)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         targets: torch.Tensor, smoothing: float = 0.0, *, reduction: str = "sum",
                         chunk_rows: int | None = None) -> torch.Tensor:
    """``cross_entropy(linear(hidden, weight, bias).float(), targets, label_smoothing=smoothing)``, chunked.

    ``hidden`` is ``(rows, features)`` and every row carries a loss (no ignored targets).
    ``chunk_rows`` (default :func:`default_chunk_rows`) bounds the logits held at once.
    ``reduction``: ``sum`` or ``mean`` over the rows.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    rows = chunk_rows or default_chunk_rows(weight.shape[0])
    total = _LinearCrossEntropy.apply(hidden, weight, bias, targets, float(smoothing), rows)
    return total / max(hidden.shape[0], 1) if reduction == "mean" else total


class _Captured:
    """What the head saw and returned while captured (see :class:`capture_head_input`)."""
    hidden: torch.Tensor | None = None  # its input's rows at the kept positions
    stub: torch.Tensor | None = None  # the placeholder it returned
    value: torch.Tensor | None = None  # ``then(hidden)``


def _plain_linear(head) -> bool:
    # a subclass, a wrapper (peft's LoRA on the head, modules_to_save, FSDP) or a hook (accelerate's device
    # placement, DeepSpeed ZeRO-3's parameter gathering) may do more than the matrix product of this module
    return (type(head) is torch.nn.Linear and "forward" not in head.__dict__
            and not head._forward_hooks and not head._forward_pre_hooks)


class capture_head_input:
    """Within the block, ``head`` returns a free placeholder and keeps its input's rows at ``mask``.

    The model runs as usual up to its LM head (T5's rescale of tied embeddings included).
    ``then``, given those rows, runs in the head's place, inside the model's forward (where a
    sharded model has the head's weight gathered); its result is ``captured.value``.
    """

    def __init__(self, head: torch.nn.Linear, mask: torch.Tensor, then=None):
        self.head, self.mask, self.then, self.captured = head, mask, then, _Captured()

    def __enter__(self) -> _Captured:
        captured, mask, vocab, then = self.captured, self.mask, self.head.out_features, self.then

        def forward(hidden, *args, **kwargs):
            captured.hidden = hidden[mask]
            captured.stub = hidden.new_zeros((), dtype=torch.float32).expand(captured.hidden.shape[0], vocab)
            if then is not None:
                captured.value = then(captured.hidden)
            return captured.stub

        self.head.forward = forward
        return captured

    def __exit__(self, *exc) -> None:
        del self.head.forward


def head_output_is_returned(model: torch.nn.Module, inputs: dict) -> bool:
    """Whether ``model`` returns its LM head's output untouched, so the head can be fused with the loss.

    Checked on a one-token slice of ``inputs`` (call it once per model), in eval mode (no
    dropout draws from the RNG, so training's random stream is unchanged). False for a head that is not a
    plain ``nn.Linear`` and for models that change the logits after the head (BART's
    ``final_logits_bias``, soft-capping, an upcast copy).
    """
    head = model.get_output_embeddings()
    if not _plain_linear(head):
        return False
    small = {k: v[:1, :1] if torch.is_tensor(v) and v.dim() == 2 else v for k, v in inputs.items()}
    device = next(v for v in small.values() if torch.is_tensor(v)).device
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad(), capture_head_input(head, torch.ones((1, 1), dtype=torch.bool, device=device)) as captured:
            out = model(**small)
    finally:
        for m, training in modes.items():
            m.training = training
    return getattr(out, "logits", None) is captured.stub

