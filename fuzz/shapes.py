"""Shape classes: a GPU campaign draws its cases from a few seeded classes, so each kernel
variant compiles once and then runs warm.

A compiled GPU kernel is specialised on what its launch fixes at compile time: the expert
count's power-of-two bucket (and E == 1, E % 16), the top-k width's bucket, the logits
dtype, pointer alignment and stride classes, the mask and moe_buf dtypes, a padding-width
bucket of the unit size. Drawn freely, nearly every campaign example hit a variant not
compiled yet, at about 0.5 s a compile on an H100 against a few milliseconds a run
(docs/notes.md, "Campaign throughput"). A class fixes each of those to one value or one
bucket; T, M, K and U inside their buckets, every regime and every value still vary per
example. A run draws from ``count`` classes picked at random from its seed; other seeds
(other workers, machines, campaigns) pick other classes, so a long campaign still covers
the whole space, class by class.

Nothing here reads our kernels' geometry: the buckets are the ones any Triton kernel
family compiles by (powers of two), so the same classes serve any target.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from fuzz.strategies import Limits

#: K buckets: (lo, hi) -- a kernel's top-k block is the next power of two of K.
TOPK_BUCKETS = ((1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (17, 32), (33, 64), (65, 128))
#: U buckets: padding widths (U - 1 slots at most) of a few lanes, or of a warp.
UNIT_BUCKETS = ((1, 5), (6, 1 << 30))


#: Bytes per element of the moe_buf dtypes the strategies draw (fuzz.strategies.MOE_BUF_REGIMES).
MOE_BUF_ITEMSIZE = {"float32": 4, "bfloat16": 2, "uint8": 1, "int64": 8}
MOE_BUF_ROWS = range(1, 25)  # the strategies' row lengths


def moe_buf_word(row_bytes: int) -> int:
    """The widest integer word dividing a row: what a kernel zeroing it would use."""
    return next((w for w in (8, 4, 2) if row_bytes % w == 0), 1)


@dataclass(frozen=True)
class ShapeClass:
    experts: int
    dtype: str
    topk: tuple[int, int]
    units: tuple[int, ...]
    layout: str
    mask: str  # "none" or the mask's dtype
    moe_buf: tuple[str, int] | None  # (dtype, word bytes of its rows) or None

    def limits(self, base: Limits) -> Limits:
        """``base`` (a target's limits) narrowed to this class."""
        rows = None
        if self.moe_buf is not None:
            dtype, word = self.moe_buf
            rows = tuple(n for n in MOE_BUF_ROWS if moe_buf_word(n * MOE_BUF_ITEMSIZE[dtype]) == word)
        # a class with a mask (moe_buf) always passes one: "none" is another class
        masks = dict(mask_regimes=("none",)) if self.mask == "none" else dict(
            mask_regimes=tuple(r for r in base.mask_regimes if r != "none"), mask_dtypes=(self.mask,))
        return base.within(experts=(self.experts,), dtypes=(self.dtype,), topk_range=self.topk,
                           unit_sizes=self.units, layouts=(self.layout,), **masks,
                           moe_buf_regimes=("none",) if self.moe_buf is None else (self.moe_buf[0],),
                           moe_buf_rows=rows)

    def __str__(self) -> str:
        lo, hi = self.topk
        buf = "none" if self.moe_buf is None else f"{self.moe_buf[0]} in {self.moe_buf[1]}-byte words"
        return (f"E={self.experts} {self.dtype} K={lo}..{hi} U={'/'.join(map(str, self.units))} {self.layout} "
                f"mask {self.mask} moe_buf {buf}")


def _topk_buckets(E: int, limits: Limits):
    cap = min(E, 127, limits.max_topk)
    return [(lo, min(hi, cap)) for lo, hi in TOPK_BUCKETS if lo <= cap]


def _unit_buckets(limits: Limits):
    buckets = [tuple(u for u in limits.unit_sizes if lo <= u <= hi) for lo, hi in UNIT_BUCKETS]
    return [b for b in buckets if b]


def _moe_bufs(limits: Limits):
    """None, and every (dtype, word) a drawn row length reaches."""
    if "moe_buf" not in limits.supports:
        return [None]
    return [None, *sorted({(d, moe_buf_word(n * MOE_BUF_ITEMSIZE[d])) for d in limits.moe_buf_regimes
                           if d != "none" for n in MOE_BUF_ROWS})]


def _masks(limits: Limits):
    return ["none", *limits.mask_dtypes] if "expert_mask" in limits.supports else ["none"]


def draw_classes(limits: Limits, count: int, rng: random.Random) -> list[ShapeClass]:
    """``count`` distinct classes inside ``limits`` (a target's domain), chosen by ``rng``.
    Small top-k buckets come first in each class's draw (most routing kernels serve K <= 8)."""
    classes: list[ShapeClass] = []
    for _ in range(count * 20):  # distinct where the domain has that many
        if len(classes) == count:
            break
        E = rng.choice(limits.expert_choices())
        buckets = _topk_buckets(E, limits)
        topk = buckets[min(int(rng.expovariate(0.5)), len(buckets) - 1)]
        cls = ShapeClass(E, rng.choice(limits.dtypes), topk, rng.choice(_unit_buckets(limits)),
                         rng.choice(limits.layouts), rng.choice(_masks(limits)), rng.choice(_moe_bufs(limits)))
        if cls not in classes:
            classes.append(cls)
    return classes
