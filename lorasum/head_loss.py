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
gradients. A frozen head (LoRA) on a CPU goes further: each chunk walks the vocabulary in blocks
small enough to stay in cache, with the softmax's maximum, sum and product with the weight
accumulated online (rescaled whenever a block raises a row's maximum). On the training benchmark at a 32k vocabulary (CPU) the head and its loss take
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
# On a CPU a frozen head (LoRA) is walked a block of vocabulary rows at a time: a block of at most
# [512, 1024] logits stays in cache between its matrix product, its exp and the product back, where
# a [rows, 32000] one goes out to memory: 15-30% less time for 64-512 rows at a 32k vocabulary
# (rows x 128 features, one thread), against 4096-row blocks that were no faster than none at 124 rows.
CPU_ROWS, CPU_VOCAB_BLOCK = 512, 1024


def default_chunk_rows(vocab: int) -> int:
    """Rows per chunk so that one chunk's logits stay within :data:`CHUNK_ELEMENTS`."""
    return max(1, CHUNK_ELEMENTS // max(vocab, 1))


def _online_rows(hidden, weight, bias, targets, smoothing: float, chunk_rows: int, vocab_block: int, need_h: bool):
    """Summed loss (and d loss / d hidden) with the softmax accumulated over vocabulary blocks.

    Per row the running maximum ``m``, the sum ``s`` of ``exp(z - m)`` and ``acc = sum exp(z - m) w``
    are rescaled by ``exp(m_old - m_new)`` when a block raises the maximum, as in an online
    softmax; at the end ``log s + m`` is the log-normaliser and ``acc / s`` the softmax's
    product with the head weight. The target's and the mean logit come from the weight's rows.
    """
    vocab = weight.shape[0]
    grad_h = torch.empty_like(hidden) if need_h else None
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    mean_w = weight.float().mean(0) if smoothing else None
    mean_b = bias.float().mean() if smoothing and bias is not None else 0.0
    for start in range(0, hidden.shape[0], chunk_rows):
        h = hidden[start:start + chunk_rows]
        t = targets[start:start + chunk_rows]
        hf = h.float()
        w_t = weight[t].float()
        target_logit = (hf * w_t).sum(1)
        if bias is not None:
            target_logit += bias[t].float()
        m = h.new_full((h.shape[0], 1), float("-inf"), dtype=torch.float32)  # exp(-inf - m) = 0: nothing to rescale
        s = torch.zeros_like(m)
        acc = torch.zeros(h.shape, dtype=torch.float32, device=h.device) if need_h else None
        for v0 in range(0, vocab, vocab_block):
            w = weight[v0:v0 + vocab_block]
            raw = torch.nn.functional.linear(h, w, None if bias is None else bias[v0:v0 + vocab_block])
            z = raw.float()
            new_m = torch.maximum(m, z.amax(1, keepdim=True))
            rescale = (m - new_m).exp_()
            e = z.sub_(new_m).exp_()
            s = s.mul_(rescale).add_(e.sum(1, keepdim=True))
            if need_h:
                acc.mul_(rescale).add_((e.to(raw.dtype) @ w).float())
            m = new_m
        lse = (m + s.log()).squeeze(1)
        # -log p(target) with the smoothed target: lse - (1 - s) * z_t - s * mean(z)
        loss = lse - (1 - smoothing) * target_logit
        if smoothing:
            loss = loss - smoothing * (hf @ mean_w + mean_b)
        total += loss.sum()
        if need_h:
            grad = acc.div_(s).sub_((1 - smoothing) * w_t)
            if smoothing:
                grad -= smoothing * mean_w
            grad_h[start:start + chunk_rows] = grad
    return total, grad_h


class _LinearCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of ``hidden @ weight.T + bias``; gradients computed in forward."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, smoothing: float, chunk_rows: int, vocab_block: int):
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        ctx.present = (need_h, need_w, need_b)
        ctx.dtypes = (hidden.dtype, weight.dtype, bias.dtype if bias is not None else None)
        if not (need_w or need_b):  # a frozen head: only the hidden states' gradient
            total, grad_h = _online_rows(hidden, weight, bias, targets, smoothing, chunk_rows, vocab_block, need_h)
            ctx.save_for_backward(*(x for x in (grad_h,) if x is not None))
            return total
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
            loss = lse - (1 - smoothing) * target_logit
            if smoothing:
                loss = loss - smoothing * mean_logit
            total += loss.sum()
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
        return total

    @staticmethod
    def backward(ctx, grad_out):
        saved = iter(ctx.saved_tensors)
        grads = [next(saved) * grad_out if present else None for present in ctx.present]
        grads = [g.to(dtype) if g is not None else None for g, dtype in zip(grads, ctx.dtypes)]
        return (*grads, None, None, None, None)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         targets: torch.Tensor, smoothing: float = 0.0, *, reduction: str = "sum",
                         chunk_rows: int | None = None, vocab_block: int | None = None) -> torch.Tensor:
    """``cross_entropy(linear(hidden, weight, bias).float(), targets, label_smoothing=smoothing)``, chunked.

    ``hidden`` is ``(rows, features)`` and every row carries a loss (no ignored targets).
    ``chunk_rows`` bounds the rows, and so the logits, held at once. ``vocab_block`` applies
    when neither ``weight`` nor ``bias`` needs a gradient (a frozen head): the vocabulary is
    then walked that many rows of ``weight`` at a time. Defaults: on a CPU
    :data:`CPU_ROWS` x :data:`CPU_VOCAB_BLOCK`, elsewhere :func:`default_chunk_rows` x the
    whole vocabulary. ``reduction``: ``sum`` or ``mean`` over the rows.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    vocab = weight.shape[0]
    cpu = hidden.device.type == "cpu"
    block = vocab_block or (min(vocab, CPU_VOCAB_BLOCK) if cpu else vocab)
    frozen = not (weight.requires_grad or (bias is not None and bias.requires_grad))
    rows = chunk_rows or (CPU_ROWS if cpu and frozen else default_chunk_rows(block if frozen else vocab))
    total = _LinearCrossEntropy.apply(hidden, weight, bias, targets, float(smoothing), rows, max(1, block))
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

