"""Hypothesis fuzzing layer for the MoE routing kernels.

- :mod:`fuzz.settings`   profiles ``ci`` / ``dev`` / ``campaign``, chosen by ``MOE_FUZZ_PROFILE``;
- :mod:`fuzz.strategies` regime-first composite strategies and the ``*Case`` dataclasses;
- :mod:`fuzz.targets`    implementations under test (kernels, oracle) and the differential
  properties (poisoned outputs judged by the ``oracles`` checkers);
- :mod:`fuzz.planted`    the planted-bug corpus (one bug class per target, with its source and
  a knob-off control) for the quality suite (``tests/quality``);
- :mod:`fuzz.power`      ``python -m fuzz power``: recall, false positives and time to detection
  of the properties on that corpus;
- :mod:`fuzz.campaign`   ``python -m fuzz.campaign``: time-boxed fuzzing run;
- :mod:`fuzz.repro`      standalone reproducer + Markdown report for a shrunk failure.

Nothing here imports ``fused_moe`` at import time (the lane must be chosen first).
"""
