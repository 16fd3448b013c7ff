"""Cases: frozen inputs of the properties (NumPy arrays plus options), independent of Hypothesis.

The strategies (:mod:`fuzz.strategies`) draw them, the properties (:mod:`fuzz.properties`)
run them, and repro scripts and bundles embed them: nothing here imports Hypothesis, so
a repro replays without it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Weight bit patterns sorting must copy exactly: -0.0, NaN payloads (quiet and
#: signalling), infinities, the smallest denormal.
WEIGHT_BITS = (0x80000000, 0x7FC0DEAD, 0xFFC00001, 0x7F800001, 0x7F800000, 0xFF800000, 0x00000001)


class _CompactRepr:
    """Hypothesis's pretty printer expands dataclasses field by field; print our repr instead."""

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))


def _show(a: np.ndarray | None, limit: int = 48) -> str:
    if a is None:
        return "None"
    if a.size <= limit:
        if a.dtype == np.float32:
            text = np.array2string(a, separator=",", threshold=limit).replace("\n", "")
            negative_nan = np.argwhere(np.isnan(a) & np.signbit(a))  # printed as "nan" above
            return text + (f" (-nan at {negative_nan.tolist()})" if negative_nan.size else "")
        return str(a.tolist())
    return f"<{a.dtype} {tuple(a.shape)}>"


@dataclass(frozen=True, repr=False, eq=False)
class Logits(_CompactRepr):
    """Logits as the kernel sees them: ``values`` is the exact float32 upcast of the
    ``dtype`` tensor; with ``col_pad > 0`` the tensor is the column slice
    ``[:, col_offset:col_offset + E]`` of a wider parent filled with 1e4 (a kernel
    reading the wrong columns would select them)."""

    values: np.ndarray  # (T, E) float32
    dtype: str = "float32"
    col_pad: int = 0
    col_offset: int = 0

    def __post_init__(self):
        # A value the dtype cannot hold would be judged against a number the target never saw:
        # that is a harness error, so it is refused here, never reported as the target's bug.
        if self.dtype != "float32":
            exact = round_to(self.values, self.dtype)
            if not np.array_equal(exact, self.values, equal_nan=True):
                raise ValueError(f"Logits.values must be exact in {self.dtype} (use fuzz.cases.round_to)")

    def tensor(self, device="cpu"):
        import torch
        T, E = self.values.shape
        tdt = getattr(torch, self.dtype)
        src = torch.from_numpy(self.values.copy()).to(tdt)  # a copy: a target writing its input must not edit the case
        if not self.col_pad:
            return src.to(device)
        parent = torch.full((T, E + self.col_pad), 1e4, dtype=tdt)
        parent[:, self.col_offset:self.col_offset + E] = src
        return parent.to(device)[:, self.col_offset:self.col_offset + E]

    def __repr__(self) -> str:
        lay = f", strided(pad={self.col_pad}, off={self.col_offset})" if self.col_pad else ""
        return f"{self.dtype}{lay} {_show(self.values)}"


@dataclass(frozen=True, repr=False, eq=False)
class Options(_CompactRepr):
    """Sorting options shared by sorting and route cases."""

    unit_size: int = 32
    expert_mask: np.ndarray | None = None  # (E,) int32 or bool
    num_local_tokens: int | None = None
    m_on_device: bool = False  # pass M as an int32 device tensor of one element
    moe_buf: tuple[str, int] | None = None  # (dtype name, elements per row); T rows
    poisoned: bool = True  # pass canary-filled out= buffers

    def mask_tensor(self, device="cpu"):
        import torch
        return None if self.expert_mask is None else torch.from_numpy(self.expert_mask.copy()).to(device)

    def m_arg(self, device="cpu"):
        if self.num_local_tokens is None or not self.m_on_device:
            return self.num_local_tokens
        import torch
        return torch.tensor([self.num_local_tokens], dtype=torch.int32, device=device)

    def moe_buf_tensor(self, T: int, device="cpu"):
        """A fresh moe_buf of T rows, every byte nonzero (so zeroing is visible)."""
        if self.moe_buf is None:
            return None
        import torch
        name, n = self.moe_buf
        dt = getattr(torch, name)
        row_bytes = n * torch.empty((), dtype=dt).element_size()
        raw = (np.arange(T * row_bytes, dtype=np.int64) * 37 + 0x5B) % 255 + 1
        return torch.from_numpy(raw.astype(np.uint8).reshape(T, row_bytes)).view(dt).to(device)

    def __repr__(self) -> str:
        bits = [f"U={self.unit_size}"]
        if self.expert_mask is not None:
            m = np.asarray(self.expert_mask, dtype=np.int32)
            shown = m.tolist() if m.size <= 16 else f"{int(m.sum())} of {m.size} kept"
            bits.append(f"mask={shown}({self.expert_mask.dtype})")
        if self.num_local_tokens is not None:
            bits.append(f"M={self.num_local_tokens}{'(tensor)' if self.m_on_device else ''}")
        if self.moe_buf is not None:
            bits.append(f"moe_buf={self.moe_buf[0]}x{self.moe_buf[1]}")
        bits.append("out=poisoned" if self.poisoned else "out=allocated")
        return ", ".join(bits)


@dataclass(frozen=True, repr=False, eq=False)
class GatingCase(_CompactRepr):
    logits: Logits
    topk: int
    renormalize: bool = True
    labels: tuple[str, ...] = field(default=(), compare=False)

    def size(self) -> dict[str, int]:
        T, E = self.logits.values.shape
        return {"T": T, "E": E, "K": self.topk}

    def __repr__(self) -> str:
        s = self.size()
        return (f"GatingCase(T={s['T']}, E={s['E']}, K={self.topk}, renormalize={self.renormalize}, "
                f"logits={self.logits!r})")


@dataclass(frozen=True, repr=False, eq=False)
class SortingCase(_CompactRepr):
    topk_ids: np.ndarray  # (T, K) int32
    topk_weights: np.ndarray  # (T, K) float32
    num_experts: int
    options: Options = Options()
    labels: tuple[str, ...] = field(default=(), compare=False)

    def size(self) -> dict[str, int]:
        T, K = self.topk_ids.shape
        return {"T": T, "E": self.num_experts, "K": K, "U": self.options.unit_size}

    def __repr__(self) -> str:
        T, K = self.topk_ids.shape
        w = self.topk_weights.view(np.uint32)
        wtxt = _show(self.topk_weights) if self.topk_weights.size <= 48 else "<float32>"
        odd = [hex(b) for b in sorted(set(w.reshape(-1).tolist()) & set(WEIGHT_BITS))]
        return (f"SortingCase(T={T}, K={K}, E={self.num_experts}, {self.options!r}, ids={_show(self.topk_ids)}, "
                f"weights={wtxt}{', bits ' + ','.join(odd) if odd else ''})")


@dataclass(frozen=True, repr=False, eq=False)
class RouteCase(_CompactRepr):
    logits: Logits
    topk: int
    renormalize: bool = True
    options: Options = Options()
    labels: tuple[str, ...] = field(default=(), compare=False)

    def size(self) -> dict[str, int]:
        T, E = self.logits.values.shape
        return {"T": T, "E": E, "K": self.topk, "U": self.options.unit_size}

    def __repr__(self) -> str:
        T, E = self.logits.values.shape
        return (f"RouteCase(T={T}, E={E}, K={self.topk}, renormalize={self.renormalize}, {self.options!r}, "
                f"logits={self.logits!r})")


@dataclass(frozen=True, repr=False, eq=False)
class ReuseCase(_CompactRepr):
    """Route calls run in order, all with the T, E, K, dtype and row stride of the first:
    later calls often hit the plan the first one cached (fused_moe/plans.py) while their
    values, options (M, mask, moe_buf, out=) or column offset (so address alignment) differ.
    The first call comes back last, after the cache has seen the others."""

    calls: tuple[RouteCase, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(label for call in self.calls for label in call.labels))

    def size(self) -> dict[str, int]:
        return {**self.calls[0].size(), "calls": len(self.calls)}

    def __repr__(self) -> str:
        return "ReuseCase(" + ", ".join(map(repr, self.calls)) + ")"


@dataclass(frozen=True, repr=False, eq=False)
class BatchCase(_CompactRepr):
    """Batch invariance: ``rows`` of ``case`` recomputed inside another batch made of
    those rows (reordered, repeated) followed by ``filler`` rows of other tokens."""

    case: GatingCase
    rows: tuple[int, ...]
    filler: np.ndarray  # (F, E) float32, exact in case.logits.dtype

    @property
    def labels(self) -> tuple[str, ...]:
        return self.case.labels

    def size(self) -> dict[str, int]:
        return {**self.case.size(), "T_other": len(self.rows) + self.filler.shape[0]}

    def __repr__(self) -> str:
        return f"BatchCase({self.case!r}, rows={list(self.rows)}, filler={_show(self.filler)})"


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` rounded to ``dtype`` (through torch) and upcast back to float32 exactly."""
    if dtype == "float32":
        return x.astype(np.float32)
    import torch
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(getattr(torch, dtype)).float().numpy()


# --------------------------------------------------------------------------- files

CASE_TYPES = {cls.__name__: cls for cls in (Logits, Options, GatingCase, SortingCase, RouteCase, ReuseCase, BatchCase)}


def _encode(value, key: str, arrays: dict):
    """JSON-able structure of a case; arrays go to ``arrays`` under dotted keys."""
    import dataclasses
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {"$array": key}
    if dataclasses.is_dataclass(value):
        return {"$type": type(value).__name__, **{f.name: _encode(getattr(value, f.name), f"{key}.{f.name}", arrays)
                                                   for f in dataclasses.fields(value)}}
    if isinstance(value, (tuple, list)):
        return {"$tuple": [_encode(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value


def _decode(value, arrays):
    if isinstance(value, dict):
        if "$array" in value:
            return arrays[value["$array"]]
        if "$tuple" in value:
            return tuple(_decode(v, arrays) for v in value["$tuple"])
        cls = CASE_TYPES[value["$type"]]
        return cls(**{k: _decode(v, arrays) for k, v in value.items() if k != "$type"})
    return value


def save_case(case, folder) -> None:
    """``case.json`` (readable: shapes, dtypes, options) and ``case.npz`` (the exact arrays)."""
    import json
    from pathlib import Path
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict = {}
    structure = _encode(case, "case", arrays)
    shapes = {k: {"shape": list(a.shape), "dtype": str(a.dtype)} for k, a in arrays.items()}
    (folder / "case.json").write_text(json.dumps({"case": structure, "size": case.size(), "arrays": shapes},
                                                 indent=1) + "\n")
    np.savez(folder / "case.npz", **arrays)


def load_case(folder):
    """The case :func:`save_case` wrote, bit for bit."""
    import json
    from pathlib import Path
    folder = Path(folder)
    data = json.loads((folder / "case.json").read_text())
    with np.load(folder / "case.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    return _decode(data["case"], arrays)
