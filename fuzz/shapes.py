"""Shape classes: a GPU campaign draws its cases from a few seeded classes, so each kernel
variant compiles once and then runs warm.

A compiled GPU kernel is specialised on what its launch fixes at compile time. For ours:
the expert count's power-of-two bucket (and E == 1, E % 16), K and U exactly (as runtime
values they cost 3-19% of a route's time, docs/notes.md v8), the option flags
(renormalize, a mask, M on the device, a moe_buf and its word size), the logits dtype,
pointer alignment and stride classes, and the tile sizes T picks. Drawn freely, nearly
every campaign example hit a variant not compiled yet, at about 0.5 s a compile on an
H100 against a few milliseconds a run (docs/notes.md, "Campaign throughput"). A class
fixes each of those; T, M, every regime and every value still vary per example, so a
class compiles only its T buckets (about ten variants). A run draws from ``count``
classes picked at random from its seed; other seeds (other workers, machines, campaigns)
pick other classes, so a long campaign still covers the whole space, class by class.

Nothing here reads our kernels' geometry: these are what any JIT-compiled routing kernel
is likely to specialise on, so the same classes serve any target.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

from fuzz.strategies import CI_LIMITS, MOE_BUF_ROWS, Limits, limits_for

#: Classes per property that a compiled lane's differential tests draw from (lane_classes).
LANE_CLASSES = 8

#: K buckets: (lo, hi); a class draws its bucket (small ones first), then one K inside it.
TOPK_BUCKETS = ((1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (17, 32), (33, 64), (65, 128))


def moe_buf_word(dtype: str, row: int) -> int:
    """The widest integer word dividing a moe_buf row of ``row`` ``dtype`` elements: what a
    kernel zeroing it would use."""
    import torch
    row_bytes = row * getattr(torch, dtype).itemsize
    return next((w for w in (8, 4, 2) if row_bytes % w == 0), 1)


@dataclass(frozen=True)
class ShapeClass:
    experts: int
    dtype: str
    topk: int
    unit_size: int
    renormalize: bool
    layout: str
    mask: str  # "none" or the mask's dtype
    m_on_device: bool  # num_local_tokens as a device tensor (else none or a host int)
    moe_buf: tuple[str, int] | None  # (dtype, word bytes of its rows) or None

    def limits(self, base: Limits) -> Limits:
        """``base`` (a target's limits) narrowed to this class."""
        rows = None
        if self.moe_buf is not None:
            dtype, word = self.moe_buf
            rows = tuple(n for n in MOE_BUF_ROWS if moe_buf_word(dtype, n) == word)
        # a class with a mask (moe_buf) always passes one: "none" is another class
        masks = dict(mask_regimes=("none",)) if self.mask == "none" else dict(
            mask_regimes=tuple(r for r in base.mask_regimes if r != "none"), mask_dtypes=(self.mask,))
        return base.within(experts=(self.experts,), dtypes=(self.dtype,), topk_range=(self.topk, self.topk),
                           unit_sizes=(self.unit_size,), renormalize=(self.renormalize,), layouts=(self.layout,),
                           m_regimes=("tensor",) if self.m_on_device else ("none", "int"), **masks,
                           moe_buf_regimes=("none",) if self.moe_buf is None else (self.moe_buf[0],),
                           moe_buf_rows=rows)

    def __str__(self) -> str:
        buf = "none" if self.moe_buf is None else f"{self.moe_buf[0]} in {self.moe_buf[1]}-byte words"
        return (f"E={self.experts} {self.dtype} K={self.topk} U={self.unit_size} renormalize={self.renormalize} "
                f"{self.layout} mask {self.mask} M {'on device' if self.m_on_device else 'host'} moe_buf {buf}")


def _topk(E: int, limits: Limits, rng: random.Random) -> int:
    cap = min(E, 127, limits.max_topk)
    buckets = [(lo, min(hi, cap)) for lo, hi in TOPK_BUCKETS if lo <= cap]
    lo, hi = buckets[min(int(rng.expovariate(0.5)), len(buckets) - 1)]
    return rng.randint(lo, hi)


def _moe_bufs(limits: Limits):
    """None, and every (dtype, word) a drawn row length reaches."""
    if "moe_buf" not in limits.supports:
        return [None]
    return [None, *sorted({(d, moe_buf_word(d, n)) for d in limits.moe_buf_regimes
                           if d != "none" for n in MOE_BUF_ROWS})]


def _masks(limits: Limits):
    return ["none", *limits.mask_dtypes] if "expert_mask" in limits.supports else ["none"]


def draw_classes(limits: Limits, count: int, rng: random.Random) -> list[ShapeClass]:
    """``count`` distinct classes inside ``limits`` (a target's domain), chosen by ``rng``."""
    device_m = [False, True] if "num_local_tokens_tensor" in limits.supports else [False]
    classes: list[ShapeClass] = []
    for _ in range(count * 20):  # distinct where the domain has that many
        if len(classes) == count:
            break
        E = rng.choice(limits.expert_choices())
        cls = ShapeClass(E, rng.choice(limits.dtypes), _topk(E, limits, rng), rng.choice(limits.unit_sizes),
                         rng.choice(limits.renormalize), rng.choice(limits.layouts), rng.choice(_masks(limits)),
                         rng.choice(device_m), rng.choice(_moe_bufs(limits)))
        if cls not in classes:
            classes.append(cls)
    return classes


def lane_classes(prop: str, target, count: int = LANE_CLASSES) -> list[ShapeClass]:
    """The classes a compiled (GPU) test lane draws ``prop``'s cases on ``target`` from, so
    each variant it compiles serves many examples; seeded by their names, so every run draws
    the same ones (the tests stay deterministic). None under the Triton interpreter, which
    compiles nothing: the CPU lanes keep drawing every shape."""
    import torch
    if os.environ.get("TRITON_INTERPRET") == "1" or not torch.cuda.is_available():
        return []
    return draw_classes(limits_for(target.convention, CI_LIMITS), count, random.Random(f"{prop}:{target.name}"))
