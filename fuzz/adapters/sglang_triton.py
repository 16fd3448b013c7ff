"""The pure-Triton MoE routing kernels shipped in the ``sglang`` wheel, run on our signatures.

Checked against sglang 0.5.23 (PyPI wheel; sources under ``python/sglang/`` in
sgl-project/sglang). Four kernels are reachable without a GPU (Triton interpreter,
``TRITON_INTERPRET=1`` set before the first call):

=====================  =======  ================================================  ==============
target                 op       sglang entry point (module : function)             layout
=====================  =======  ================================================  ==============
``gate_topk``          gating   ``sglang.kernels.ops.moe.gate_topk:gate_topk``     (values only)
``fused_gate_softmax`` gating   ``sglang.kernels.ops.moe.moe_fused_gate:``          softmax top-k
                                ``moe_fused_gate(scoring_func="softmax")``
``align_small_numel``  sorting  ``sglang.kernels.ops.moe.moe_align_small_numel:``   vLLM
                                ``moe_align_small_numel``
``sorting_small``      sorting  ``sglang.kernels.ops.moe.moe_sorting_small:``       CK / aiter
                                ``_run_small_sort`` (no mx-quant)
=====================  =======  ================================================  ==============

Loading (no sglang import chain): ``import sglang`` pulls ``sglang.srt.utils`` (psutil,
...), so the kernel files are loaded directly from the package directory
(:func:`package_dir`: ``$MOE_SGLANG_DIR``, an installed ``sglang``, or ``<repo>/.ext/sglang``
from ``pip install --no-deps --target .ext sglang``) under private module names.
While a file executes and while a kernel runs, :func:`_shims` puts minimal fakes of
the few absolute imports those files make into ``sys.modules`` (removed afterwards):

* ``sglang``, ``sglang.kernels``, ``sglang.kernels.ops``, ``sglang.kernels.ops.moe``,
  ``sglang.srt``, ``sglang.kernels.jit``: empty packages (so no ``__init__`` runs);
* ``sglang.kernels.jit.utils``: ``is_arch_support_pdl() -> False`` (no PDL launch on
  CPU), ``get_jit_cuda_arch()`` (never reached when PDL is off);
* ``sglang.kernels.kernel_api_logging``: ``debug_kernel_api`` = identity decorator;
* ``sglang.kernels.ops.moe.moe_route_radix``: ``covered() -> False`` (sigmoid-only fast path);
* ``sglang.srt.environ``: ``envs.<NAME>.get() -> False`` (the SM120 top-22 switch);
* ``sglang.srt.utils``: ``is_gfx95_supported() -> False`` (only used by the aiter patch).

Conventions (every fact below read in the file named, sglang 0.5.23):

``gate_topk`` (kernels/ops/moe/gate_topk.py): top-k of the raw values, no softmax;
keys are the float bits mapped to an order-preserving unsigned key packed above
``N_PAD - index`` and sorted descending -> largest first, ties to the LOWER index.
Values come back in the input dtype (we upcast exactly to float32). Positive NaN
bits rank ABOVE +inf (outside our domain). ``-0.0`` and ``+0.0`` get different keys,
so ``+0.0`` beats ``-0.0`` whatever their indices (SPEC: a tie, lower index wins).
``k <= 32`` (NotImplementedError above); rows must be contiguous (assert: we pass
``.contiguous()``); ``BLOCK_SIZE_M = 32`` rows per program; the column loop unrolls
when ``N_PAD // 32 - 1 <= 4`` (E <= 160) and is a runtime loop above; the index key
lives in 16 bits (E <= 65504).

``fused_gate_softmax`` (kernels/ops/moe/moe_fused_gate.py, ``_router_triton_kernel``
with ``SCORING_FUNC=2``, no bias): selection on the float32 logits (``biased``),
repeated argmax with ``tl.min`` over tied lanes -> ties to the LOWER index; weight =
softmax of the whole row at the winner; ``renormalize`` divides by the selected sum
(``1.0`` when that sum is 0). NaN ranks as ``-1e30`` but poisons the softmax (NaN
weights); a +inf or an all--inf row gives ``inf - inf`` = NaN weights: non-finite
logits are outside the domain. Any E (``BLOCK_N = next_pow2(E)``), any row stride
(``stride_sm``/``stride_sn``), fp32/fp16/bf16. Rows per program
``BLOCK_M = max(1, min(4, 256 // BLOCK_N))``; ``num_warps`` 1 -> 4 above BLOCK_N 512.

``align_small_numel`` (kernels/ops/moe/moe_align_small_numel.py): vLLM layout
(``sorted_token_ids`` = flat ``t*K + j``, pad ``numel``), "+1 offset" buckets: the
kernel is called with ``num_experts = E + 1``; id ``-1`` is bucket 0 and is KEPT as a
leading segment whose blocks get expert id ``-1`` (not dropped as in vLLM), ids
``>= E`` are not checked -> ids outside ``[0, E)`` are outside our domain. Rank inside
a bucket = number of earlier pairs (stable: token, slot ascending). Only
``[0, num_tokens_post_pad)`` of ``sorted_token_ids`` and the used blocks of
``expert_ids`` are written (the docstring calls the unwritten tail an intended
deviation) -> tail untouched. Caller-allocated buffers; sglang's own sizes
(srt/layers/moe/moe_runner/triton_utils/moe_align_block_size.py) are
``numel * U`` if ``numel < E + 1`` else ``numel + (E + 1) * (U - 1)``, rounded up to 4 --
not one of our capacity rules; any buffer at least as large as the valid prefix
works (``NB = next_pow2(len(expert_ids))``). sglang routes here only for
``numel <= 64`` (``SMALL_NUMEL_LIMIT``) and ``E + 1 > 64``; the kernel is O(numel^2).

``sorting_small`` (kernels/ops/moe/moe_sorting_small.py): CK layout, bit-for-bit
aiter's: ``(slot << 24) | token``, pad ``(K << 24) | M``, weight 0, ``num_valid_ids =
[P, M]`` with ``M = T``. Stable rank by flat pair index -> exact (token, slot) order;
duplicates counted separately. No range check: an id ``< 0`` sorts first as its own
expert, an id ``>= E`` after the real ones -> outside the domain. Writes only the
valid prefix (tail untouched). ``moe_buf`` (contiguous, any dtype) is zeroed WHOLE by
extra programs. Buffers come from the caller; the aiter patch allocates
``T*K + E*U - K`` rows (aiter's rule). Three kernels chosen by ``P = T*K``:
``P > 32`` -> histogram + bitonic sort (``E_POW2 = next_pow2(E + 1)``),
``P <= 64 and P <= 2U`` -> one P x P compare CTA, else the distributed one (64-expert
chunks). ``_small_sort_supported`` limits it to ``P <= 256``, ``K < 128``, int32
contiguous ids, no mask, no ``num_local_tokens``, and ``E <= 256`` or (``P > 32`` and
``E < 512``) or (``P <= 64`` and ``P <= 2U``); the adapter raises ValueError outside.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import types
from pathlib import Path

from fuzz import buffers
from fuzz.conventions import load

_ROOT = Path(__file__).resolve().parents[2]
_PRIVATE = "fuzz.adapters._sglang_files"  # private parent name of the loaded kernel files
_FILES = {  # our short name -> file inside the sglang package
    "gate_topk": "kernels/ops/moe/gate_topk.py",
    "moe_fused_gate": "kernels/ops/moe/moe_fused_gate.py",
    "moe_align_small_numel": "kernels/ops/moe/moe_align_small_numel.py",
    "moe_sorting_small": "kernels/ops/moe/moe_sorting_small.py",
}
_loaded: dict[str, types.ModuleType] = {}


def package_dir() -> Path | None:
    """The ``sglang`` package directory, found without importing it."""
    env = os.environ.get("MOE_SGLANG_DIR")
    candidates = [Path(env)] if env else []
    try:
        spec = importlib.util.find_spec("sglang")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) for p in spec.submodule_search_locations]
    candidates.append(_ROOT / ".ext" / "sglang")
    for cand in candidates:
        if all((cand / rel).is_file() for rel in _FILES.values()):
            return cand
    return None


def available() -> bool:
    """True when the sglang Triton kernel files are found and can run: a GPU, or the
    Triton interpreter selected (``TRITON_INTERPRET=1``). Never raises."""
    try:
        if package_dir() is None or importlib.util.find_spec("triton") is None:
            return False
        if os.environ.get("TRITON_INTERPRET") == "1":
            return True
        import torch
        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - availability probes must not raise
        return False


class _Flag:
    def get(self):
        return False


def _fake_modules() -> dict[str, types.ModuleType]:
    def mod(name, package=False, **attrs):
        m = types.ModuleType(name)
        if package:
            m.__path__ = []
        m.__dict__.update(attrs)
        return m

    envs = type("Envs", (), {"__getattr__": lambda self, name: _Flag()})()
    fakes = [mod(n, package=True) for n in ("sglang", "sglang.kernels", "sglang.kernels.ops",
                                            "sglang.kernels.ops.moe", "sglang.kernels.jit", "sglang.srt")]
    fakes += [
        mod("sglang.kernels.jit.utils", is_arch_support_pdl=lambda: False,
            get_jit_cuda_arch=lambda: types.SimpleNamespace(major=0, minor=0)),
        mod("sglang.kernels.kernel_api_logging",
            debug_kernel_api=lambda func=None, **_: func if func is not None else (lambda f: f)),
        mod("sglang.kernels.ops.moe.moe_route_radix", covered=lambda *a, **k: False),
        mod("sglang.srt.environ", envs=envs),
        mod("sglang.srt.utils", is_gfx95_supported=lambda: False),
    ]
    fakes[3].moe_route_radix = fakes[-3]  # `from sglang.kernels.ops.moe import moe_route_radix`
    return {m.__name__: m for m in fakes}


@contextlib.contextmanager
def _shims():
    """Fake the sglang modules the kernel files import, unless real ones are loaded."""
    fakes = _fake_modules()
    added = [name for name in fakes if name not in sys.modules]
    for name in added:
        sys.modules[name] = fakes[name]
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


def _module(short: str) -> types.ModuleType:
    if short not in _loaded:
        base = package_dir()
        if base is None:
            raise ImportError("sglang not found: pip install --no-deps --target .ext sglang")
        if _PRIVATE not in sys.modules:
            sys.modules[_PRIVATE] = types.ModuleType(_PRIVATE)
            sys.modules[_PRIVATE].__path__ = []
        name = f"{_PRIVATE}.{short}"
        spec = importlib.util.spec_from_file_location(name, base / _FILES[short])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        with _shims():
            spec.loader.exec_module(module)
        _loaded[short] = module
    return _loaded[short]


def _torch():
    import torch
    return torch


# --------------------------------------------------------------------------- gating


def gate_topk(logits, topk, *, renormalize=True):
    """Top-k of the raw logits (weights = the selected logits, upcast exactly to float32)."""
    del renormalize  # no softmax: the convention says weights="logits", renormalize="never"
    with _shims():
        values, ids = _module("gate_topk").gate_topk(logits.contiguous(), topk)
    return {"topk_weights": values.float(), "topk_ids": ids}


def fused_gate_softmax(logits, topk, *, renormalize=True):
    """``moe_fused_gate`` with softmax scoring and no bias."""
    with _shims():
        weights, ids = _module("moe_fused_gate").moe_fused_gate(logits, None, topk, scoring_func="softmax",
                                                                renormalize=renormalize)
    return {"topk_weights": weights, "topk_ids": ids}


# --------------------------------------------------------------------------- sorting


def align_small_numel(topk_ids, topk_weights, num_experts, *, unit_size=32, out=None):
    """vLLM layout; ``out = (sorted_token_ids, expert_ids, num_tokens_post_pad)``."""
    del topk_weights  # the vLLM layout has no sorted weights
    T, K = topk_ids.shape
    if out is None:
        out = buffers.fresh("vllm", "sglang", T, K, num_experts, unit_size, topk_ids.device)
    sorted_ids, expert_ids, post_pad = out
    with _shims():
        _module("moe_align_small_numel").moe_align_small_numel(
            topk_ids, num_experts + 1, unit_size, sorted_ids, expert_ids, post_pad)
    return buffers.as_fields("vllm", out)


def sorting_small(topk_ids, topk_weights, num_experts, *, unit_size=32, moe_buf=None, out=None):
    """CK layout; ``out = (sorted_token_ids, sorted_weights, sorted_expert_ids, num_valid_ids)``."""
    torch = _torch()
    T, K = topk_ids.shape
    mod = _module("moe_sorting_small")
    ids = topk_ids if topk_ids.dtype == torch.int32 else topk_ids.to(torch.int32)
    if not mod._small_sort_supported(ids.contiguous(), unit_size, None, None, num_experts, emit_mx=False):
        raise ValueError(f"sorting_small: T*K={T * K}, K={K}, E={num_experts}, U={unit_size} is outside "
                         "_small_sort_supported (T*K <= 256, K < 128, E limits by T*K)")
    dev = topk_ids.device
    if out is None:
        out = buffers.fresh("ck", "aiter", T, K, num_experts, unit_size, dev)
    buf = moe_buf if moe_buf is not None else torch.empty((0, 0), dtype=torch.bfloat16, device=dev)
    with _shims():
        mod._run_small_sort(ids.contiguous(), topk_weights.contiguous(), *out, buf, unit_size, None, num_experts)
    return buffers.as_fields("ck", out)


# --------------------------------------------------------------------------- conventions

_GATING = {"op": "gating", "layout": "ck", "order": "exact", "invalid_ids": "drop", "duplicates": "keep",
           "capacity": "tight", "tail": "untouched", "nan": "outside_domain"}

gate_topk.convention = load({
    **_GATING, "name": "sglang.gate_topk", "ties": "lower", "selection": "logits", "weights": "logits",
    "specials_order": "bits", "nan": "spec",  # its sort key is the float's bits: -0.0 < +0.0 < ... < +inf < +NaN
    "renormalize": "never", "weights_dtype": "float32",
    "domain": {"max_topk": 32, "max_experts": 65504, "supports": [], "token_boundaries": [32],
               "dtypes": ["float32", "float16", "bfloat16"]},
})
fused_gate_softmax.convention = load({
    **_GATING, "name": "sglang.moe_fused_gate.softmax", "ties": "lower", "selection": "logits",
    "weights": "softmax", "renormalize": "argument", "weights_dtype": "float32",
    "infinities": "outside_domain",  # +inf or an all -inf row gives NaN weights (see the docstring)
    "domain": {"supports": [], "token_boundaries": [1, 2, 4], "dtypes": ["float32", "float16", "bfloat16"]},
})
align_small_numel.convention = load({
    "base": "vllm", "name": "sglang.moe_align_small_numel", "op": "sorting", "layout": "vllm", "order": "exact",
    "invalid_ids": "outside_domain", "duplicates": "keep", "capacity": "vllm", "tail": "untouched",
    "domain": {"supports": ["out"], "assignment_boundaries": [64]},
})
sorting_small.convention = load({
    "name": "sglang.moe_sorting_small", "op": "sorting", "layout": "ck", "order": "exact",
    "invalid_ids": "outside_domain", "duplicates": "keep", "capacity": "aiter", "tail": "untouched",
    "domain": {"max_experts": 256, "max_topk": 127, "max_tokens": 256, "max_assignments": 256,
               "supports": ["moe_buf", "out"],
               "assignment_boundaries": [32, 64, 256]},
})

TARGETS = {
    "sglang.gate_topk": gate_topk,
    "sglang.moe_fused_gate.softmax": fused_gate_softmax,
    "sglang.moe_align_small_numel": align_small_numel,
    "sglang.moe_sorting_small": sorting_small,
}
