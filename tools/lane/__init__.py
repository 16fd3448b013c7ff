"""The compile lane's parts (``tools/compile_lane.py`` is the command):

- ``capture``: record the launches the host code makes, as Triton would specialise them;
- ``sources``: the calls that reach every production variant (seed models, fuzz draws,
  the runtime-loop constructs);
- ``targets``: the architectures, their limits and the occupancy formulas;
- ``build``: compile one variant for one architecture and read its resources;
- ``policy``: the hot kernels and what fails the lane;
- ``report``: the Markdown and JSON tables.
"""
