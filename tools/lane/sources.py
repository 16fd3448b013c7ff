"""The calls that reach every production kernel variant, each made through the public API
with meta tensors while ``capture.recording`` turns launches into catalogued variants.

- ``seed_models``: DeepSeek-R1 and GPT-OSS-120B (benchmarks/bench_route.py), ``route`` on
  both paths ("auto" picks one of them; ``topk_gating_softmax`` and ``moe_sorting`` on
  contiguous inputs launch what the unfused path launches) at every T in 1..16384 with the
  benchmark's options, then every option combination at each T that launched a new
  variant. The options reach the launches through fixed values (M, mask, moe_buf's row,
  dtypes), so a T whose launches were all seen before adds nothing an earlier T did not.
- ``fuzz_draws``: cases drawn from the fuzzers' own strategies at campaign sizes
  (fuzz/strategies.py: E_CHOICES + 256/257/384, K 1..8 and K == E, every U, mask, M,
  moe_buf and logits dtype and layout).
- ``constructs``: every case of tests/runtime_loops/test_construct.py, launched by its
  own ``launch`` helper.
"""
from __future__ import annotations

import inspect
import itertools
from dataclasses import dataclass

import torch

from .capture import Catalog, LaunchRecorded, recording

META = torch.device("meta")
ALL_TOKENS = range(1, 16385)


class Recorder:
    """Runs calls under ``recording``, filing each launch under the current call's label."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._label, self._tokens, self._tags, self._new = "", None, (), False

    def on_launch(self, fn, args, kwargs):
        self._new |= self.catalog.add(fn, args, kwargs, self._label, self._tokens, self._tags)

    def call(self, label: str, tokens, thunk, tags=()) -> bool:
        """Run ``thunk`` (a public call or a test's launch helper); True when it launched a
        variant not seen before. A helper that reads results after its launch is stopped
        there (meta tensors hold no data)."""
        self._label, self._tokens, self._tags, self._new = label, tokens, tags, False
        try:
            thunk()
        except LaunchRecorded:
            pass
        return self._new

    def session(self, stop_after_launch=False):
        """The recording context for this recorder's calls (see ``capture.recording``)."""
        return recording(self.on_launch, stop_after_launch)


# --------------------------------------------------------------------------- seed models


def _layouts(fm):
    """Output layouts the public API offers: (None,) until it takes ``layout=`` (the vLLM
    layout adds it), then every value it accepts, so their constexprs are reached too."""
    if "layout" not in inspect.signature(fm.route).parameters:
        return (None,)
    return tuple(fm.buffers.LAYOUTS)


@dataclass(frozen=True)
class CallOptions:
    """One combination of the public options; the default is the benchmark's."""
    dtype: str = "bfloat16"
    renormalize: bool = True
    mask: bool = False
    m: str = "none"  # none | tensor | an int (at most T)
    buf: bool = True  # moe_buf bf16 [T, model_dim], as the benchmark passes
    layout: str | None = None

    def describe(self) -> str:
        """e.g. "bfloat16 renorm M=tensor moe_buf"."""
        bits = {"dtype": self.dtype, "renormalize": "renorm" if self.renormalize else "no-renorm",
                "mask": "mask" if self.mask else "", "m": "" if self.m == "none" else f"M={self.m}",
                "buf": "moe_buf" if self.buf else "", "layout": self.layout or ""}
        return " ".join(b for b in bits.values() if b)


# M is data, any int in [0, T]: one of each integer specialisation (a multiple of 16, 1, other)
M_CHOICES = ("none", "tensor", "0", "1", "3")


def _m_arg(m: str, T: int):
    if m == "none":
        return None
    if m == "tensor":
        return torch.zeros(1, dtype=torch.int32, device=META)
    return min(int(m), T)


def _sorting_kwargs(model, T, o: CallOptions, U: int) -> dict:
    kwargs = dict(unit_size=U, num_local_tokens=_m_arg(o.m, T),
                  expert_mask=torch.ones(model.E, dtype=torch.int32, device=META) if o.mask else None,
                  moe_buf=torch.empty(T, model.D, dtype=torch.bfloat16, device=META) if o.buf else None)
    if o.layout is not None:
        kwargs["layout"] = o.layout
    return kwargs


def _logits(model, T, o: CallOptions):
    return torch.empty(T, model.E, dtype=getattr(torch, o.dtype), device=META)


def _route(fm, U, path):
    def call(model, T, o: CallOptions):
        fm.route(_logits(model, T, o), model.K, renormalize=o.renormalize, path=path, **_sorting_kwargs(model, T, o, U))
    return call


def _option_grid(layouts):
    """Every CallOptions: each field's choices, crossed."""
    choices = {"dtype": ("bfloat16", "float32", "float16"), "renormalize": (True, False), "mask": (False, True),
               "m": M_CHOICES, "buf": (True, False), "layout": layouts}
    for values in itertools.product(*choices.values()):
        yield CallOptions(**dict(zip(choices, values)))


def _seed_tags(T, bench_tokens) -> tuple:
    """Every seed variant is "seed"; the benchmark's shapes also "bench", its first (decode)
    and last (largest) ones "bench:decode" / "bench:largest" (tools/lane/sample.py pins them)."""
    if T not in bench_tokens:
        return ("seed",)
    ends = {bench_tokens[0]: ("bench:decode",), bench_tokens[-1]: ("bench:largest",)}
    return ("seed", "bench", *ends.get(T, ()))


def seed_models(recorder: Recorder, tokens=ALL_TOKENS):
    import fused_moe as fm
    from benchmarks.bench_route import MODELS, TOKENS, U
    layouts = _layouts(fm)
    base = CallOptions(layout=layouts[0])
    with recorder.session():
        for model in MODELS.values():
            for path in ("fused", "unfused"):
                call, label = _route(fm, U, path), f"{model.name} route({path})"
                new_at = [T for T in tokens if recorder.call(
                    f"{label} {base.describe()}", T, lambda: call(model, T, base), tags=_seed_tags(T, TOKENS))]
                for T in new_at:
                    for o in _option_grid(layouts):
                        recorder.call(f"{label} {o.describe()}", T, lambda: call(model, T, o), tags=("seed",))


# --------------------------------------------------------------------------- fuzz draws


def _draw(strategy, examples: int, body):
    """Run ``body`` on ``examples`` cases of ``strategy``, the same ones on every run."""
    from hypothesis import HealthCheck, Phase, given, settings

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(case):
        body(case)
    run()


def fuzz_draws(recorder: Recorder, examples: int):
    import fused_moe as fm
    from fuzz import strategies
    from fuzz.targets import ours

    def limits(op):
        return strategies.limits_for(ours.convention(op), strategies.CAMPAIGN_LIMITS)

    def sorting_kwargs(o, T):
        return dict(unit_size=o.unit_size, expert_mask=o.mask_tensor(META), num_local_tokens=o.m_arg(META),
                    moe_buf=o.moe_buf_tensor(T, META))

    def gating(case):
        T = case.logits.values.shape[0]
        recorder.call("fuzz gating", T, lambda: fm.topk_gating_softmax(
            case.logits.tensor(META), case.topk, renormalize=case.renormalize), tags=("fuzz",))

    def sorting(case):
        T = case.topk_ids.shape[0]
        ids, w = torch.from_numpy(case.topk_ids).to(META), torch.from_numpy(case.topk_weights).to(META)
        recorder.call("fuzz sorting", T, lambda: fm.moe_sorting(ids, w, case.num_experts,
                                                                **sorting_kwargs(case.options, T)), tags=("fuzz",))

    def route(case):
        T = case.logits.values.shape[0]
        for path in ("fused", "unfused"):  # "auto" picks one of them
            recorder.call(f"fuzz route({path})", T, lambda: fm.route(
                case.logits.tensor(META), case.topk, renormalize=case.renormalize, path=path,
                **sorting_kwargs(case.options, T)), tags=("fuzz",))

    with recorder.session():
        _draw(strategies.gating_cases(limits("gating")), examples, gating)
        _draw(strategies.sorting_cases(limits("sorting")), examples, sorting)
        _draw(strategies.route_cases(limits("route")), examples, route)


# --------------------------------------------------------------------------- runtime-loop constructs


def constructs(recorder: Recorder):
    from tests.runtime_loops import test_construct as tc
    with recorder.session(stop_after_launch=True):  # launch() reads its outputs back
        for param in tc.CASES:
            form, regime = param.values
            kernel = tc.PLACEMENTS[form.placement][1]
            recorder.call(f"construct {form.id}", None, lambda: tc.launch(
                kernel, form, regime, tc._rows(form, regime), META), tags=("construct",))


SOURCES = {"models": seed_models, "fuzz": fuzz_draws, "constructs": constructs}
