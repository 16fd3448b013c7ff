"""Hypothesis fuzzing layer for MoE routing kernels: ours and anyone's.

- :mod:`fuzz.cases`       inputs as data (no Hypothesis), saved as case.npz + case.json;
- :mod:`fuzz.settings`    profiles ``quick`` / ``ci`` / ``dev`` / ``campaign``, chosen by ``MOE_FUZZ_PROFILE``;
- :mod:`fuzz.conventions` what a target declares: layout, order, ties, selection, weights,
  capacity rule, tail, domain;
- :mod:`fuzz.strategies`  regime-first composite strategies, drawn inside a target's domain;
- :mod:`fuzz.buffers`     the one canary builder (production-length views, guards on both sides);
- :mod:`fuzz.properties`  the one harness: poison, call, snapshot, judge (``Target``, ``TargetFailure``);
- :mod:`fuzz.targets`     implementations under test by name (ours, the oracle, the PyTorch
  reference, planted bugs, external adapters in :mod:`fuzz.adapters`, ``module:function``);
- :mod:`fuzz.planted`     the planted-bug corpus (one bug class per target, with its source and
  a knob-off control) for the quality suite (``tests/quality``);
- :mod:`fuzz.power`       ``python -m fuzz power``: recall, false positives and time to detection;
- :mod:`fuzz.campaign`, :mod:`fuzz.cli`  ``python -m fuzz run`` (``moe-fuzz run``): time-bounded campaigns;
  :mod:`fuzz.live` their progress (a refreshing table, or a plain line); :mod:`fuzz.steering`
  ``hypothesis.target`` toward the boundaries a target declares;
- :mod:`fuzz.bundles`, :mod:`fuzz.repro`, :mod:`fuzz.ledger`  bug-report bundles, their
  ``repro.py``, ``python -m fuzz replay``, and the known findings.

Nothing here imports ``fused_moe`` at import time (the lane must be chosen first).
"""
