"""What a target declares: the convention its outputs follow and the domain it accepts.

The checkers compare a target's outputs with the oracle modulo exactly what its
convention declares (:mod:`fuzz.properties`), and the strategies draw only inside its
domain (:meth:`Convention.limits`). A convention is data: the built-in ones are below,
and a user's is a small TOML or JSON file of the same fields (:func:`load`):

.. code-block:: toml

    op = "sorting"            # gating | sorting | route
    layout = "vllm"           # ck | vllm
    order = "unordered"       # exact | unordered   (inside an expert)
    capacity = "vllm"         # tight | vllm | aiter  (the buffer sizes the producer allocates)
    tail = "filled"           # untouched | filled   (past the valid prefix, up to the buffer end)
    invalid_ids = "drop"      # drop | outside_domain
    [domain]
    max_topk = 8
    experts = [8, 16, 64, 128, 256]
    supports = []             # of expert_mask, num_local_tokens, num_local_tokens_tensor, moe_buf, out

Fields (defaults: this project's contract, SPEC sections 1-3):

=================  =================================================================================
``op``             which call the target is: ``gating``, ``sorting`` or ``route``
``layout``         ``ck`` (SPEC section 2) or ``vllm`` (:mod:`oracles.layouts`)
``order``          inside an expert: ``exact`` (token, slot ascending) or ``unordered`` (atomics)
``ties``           equal keys go to the ``lower`` or ``higher`` expert index, or ``any`` valid top-k
``selection``      ``logits`` or ``probabilities`` (float32 softmax: values that round to the same
                   probability tie)
``weights``        the gating weights: ``softmax`` (of the whole row, optionally renormalized),
                   ``logits`` (the raw selected logits) or ``none`` (ids only)
``renormalize``    ``argument`` (the caller chooses), ``always`` (softmax over the selected
                   logits, as Triton's routing does) or ``never``
``weights_dtype``  float32, bfloat16 or float16 (tolerance follows it)
``nan``            ``spec`` (NaN ranks as -inf) or ``outside_domain`` (no NaN drawn)
``infinities``     ``spec`` (+-inf logits, limit semantics) or ``outside_domain`` (none drawn)
``specials_order`` how the selection orders NaN and -0.0: ``spec`` (NaN as -inf, -0.0 ties +0.0)
                   or ``bits`` (by the float's bits: +NaN above +inf, -0.0 below +0.0)
``invalid_ids``    ids outside [0, E): ``drop`` or ``outside_domain``
``duplicates``     a repeated id in a row: ``keep`` or ``outside_domain``
``capacity``       the producer's buffer sizes: ``tight`` (SPEC), ``vllm``, ``aiter`` or ``sglang``
                   (:func:`fuzz.buffers.production_capacity`)
``tail``           past the valid prefix up to the buffer end: ``untouched`` or ``filled`` (vLLM:
                   pad value and ``-1`` blocks)
``domain``         :class:`Domain`: experts, top-k, tokens, unit sizes, dtypes, optional
                   arguments supported, and the boundaries where the target changes path
=================  =================================================================================
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

CHOICES = {
    "op": ("gating", "sorting", "route"),
    "layout": ("ck", "vllm"),
    "order": ("exact", "unordered"),
    "ties": ("lower", "higher", "any"),
    "selection": ("logits", "probabilities"),
    "weights": ("softmax", "logits", "none"),
    "renormalize": ("argument", "always", "never"),
    "weights_dtype": ("float32", "bfloat16", "float16"),
    "nan": ("spec", "outside_domain"),
    "specials_order": ("spec", "bits"),
    "infinities": ("spec", "outside_domain"),
    "invalid_ids": ("drop", "outside_domain"),
    "duplicates": ("keep", "outside_domain"),
    "capacity": ("tight", "vllm", "aiter", "sglang"),
    "tail": ("untouched", "filled"),
}
#: Optional arguments a target may support (``num_local_tokens_tensor``: M as an int32 device tensor).
OPTIONAL_ARGS = ("expert_mask", "num_local_tokens", "num_local_tokens_tensor", "moe_buf", "out")
LOGIT_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Domain:
    """The inputs a target accepts. ``None`` means no limit beyond the contract's."""

    experts: tuple[int, ...] | None = None  # E values allowed (None: any)
    powers_of_two: bool = False  # E must be a power of two
    max_experts: int | None = None
    max_topk: int | None = None
    max_tokens: int | None = None
    max_assignments: int | None = None  # T * K
    unit_sizes: tuple[int, ...] | None = None
    dtypes: tuple[str, ...] = LOGIT_DTYPES
    supports: tuple[str, ...] = OPTIONAL_ARGS
    #: Values of T (tokens) and T*K (assignments) where the target changes path: strategies
    #: draw on both sides of each.
    token_boundaries: tuple[int, ...] = ()
    assignment_boundaries: tuple[int, ...] = ()

    def allows_experts(self, E: int) -> bool:
        return ((self.experts is None or E in self.experts) and (not self.powers_of_two or E & (E - 1) == 0)
                and (self.max_experts is None or E <= self.max_experts))


@dataclass(frozen=True)
class Convention:
    """A target's declared convention and domain (see the module docstring)."""

    name: str = "ck"
    op: str | None = None  # None: not declared (a user's target: inferred from its signature)
    layout: str = "ck"
    order: str = "exact"
    ties: str = "lower"
    selection: str = "logits"
    weights: str = "softmax"
    renormalize: str = "argument"
    weights_dtype: str = "float32"
    nan: str = "spec"
    specials_order: str = "spec"
    infinities: str = "spec"
    invalid_ids: str = "drop"
    duplicates: str = "keep"
    capacity: str = "tight"
    tail: str = "untouched"
    domain: Domain = field(default_factory=Domain)

    def __post_init__(self):
        for key, allowed in CHOICES.items():
            value = getattr(self, key)
            if value not in allowed and not (key == "op" and value is None):
                raise ValueError(f"convention {self.name!r}: {key} must be one of {', '.join(allowed)}, "
                                 f"got {value!r}")
        bad = sorted(set(self.domain.supports) - set(OPTIONAL_ARGS))
        if bad:
            raise ValueError(f"convention {self.name!r}: domain.supports has {bad}; allowed: "
                             f"{', '.join(OPTIONAL_ARGS)}")
        bad = sorted(set(self.domain.dtypes) - set(LOGIT_DTYPES))
        if bad:
            raise ValueError(f"convention {self.name!r}: domain.dtypes has {bad}; allowed: {', '.join(LOGIT_DTYPES)}")

    def supports(self, arg: str) -> bool:
        return arg in self.domain.supports

    def replace(self, **changes) -> "Convention":
        return dataclasses.replace(self, **changes)

    def with_domain(self, **changes) -> "Convention":
        return dataclasses.replace(self, domain=dataclasses.replace(self.domain, **changes))


#: This project's contract (SPEC sections 1-3), for each op.
CK = Convention()
#: vLLM's layout (SPEC section 6): flat ids, pad T*K, -1 blocks, unordered inside an expert,
#: vLLM's buffer sizes, whole buffer written.
VLLM = Convention(name="vllm", layout="vllm", order="unordered", capacity="vllm", tail="filled")
BUILTIN = {"ck": CK, "vllm": VLLM}


def _from_mapping(data: dict, name: str) -> Convention:
    data = dict(data)
    base = BUILTIN[data.pop("base", "ck")]
    domain_data = data.pop("domain", {}) or {}
    known = {f.name for f in dataclasses.fields(Convention)} - {"domain"}
    unknown = sorted(set(data) - known - {"name"})
    if unknown:
        raise ValueError(f"convention {name!r}: unknown field(s) {unknown}; known: {', '.join(sorted(known))}")
    dknown = {f.name for f in dataclasses.fields(Domain)}
    dunknown = sorted(set(domain_data) - dknown)
    if dunknown:
        raise ValueError(f"convention {name!r}: unknown domain field(s) {dunknown}; known: {', '.join(sorted(dknown))}")
    domain = dataclasses.replace(base.domain, **{k: tuple(v) if isinstance(v, list) else v
                                                 for k, v in domain_data.items()})
    return dataclasses.replace(base, name=data.pop("name", name), domain=domain, **data)


def load(spec, *, op: str | None = None) -> Convention:
    """A convention from a built-in name (``ck``, ``vllm``), a TOML / JSON file path, a
    mapping of fields, or a :class:`Convention`; ``op`` overrides its op."""
    if isinstance(spec, Convention):
        conv = spec
    elif isinstance(spec, dict):
        conv = _from_mapping(spec, spec.get("name", "custom"))
    elif isinstance(spec, str) and spec in BUILTIN:
        conv = BUILTIN[spec]
    else:
        path = Path(spec)
        if not path.is_file():
            raise ValueError(f"convention must be one of {', '.join(BUILTIN)} or a .toml / .json file; "
                             f"{spec!r} is neither")
        text = path.read_text()
        try:
            if path.suffix == ".json":
                data = json.loads(text)
            else:
                import tomllib
                data = tomllib.loads(text)
        except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
            raise ValueError(f"convention file {path}: {exc}") from None
        conv = _from_mapping(data, path.stem)
    return conv if op is None else conv.replace(op=op)
