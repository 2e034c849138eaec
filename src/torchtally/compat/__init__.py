"""Drop-in replacements for torchsummary, thop, torchstat and torchinfo: change one import,
keep your code, get the same kind of output with torchtally's numbers.

```python
from torchtally.compat.torchsummary import summary   # was: from torchsummary import summary
from torchtally.compat.thop import profile, clever_format  # was: from thop import ...
from torchtally.compat.torchstat import stat          # was: from torchstat import stat
from torchtally.compat.torchinfo import summary       # was: from torchinfo import summary
```

Each function takes the original's arguments and prints the original's layout (column
widths, rules, footer labels), but the numbers are counted the torchtally way: every aten
operator that runs, parameters counted once by identity, bytes from real dtypes, on fake
tensors (no real compute, no GPU needed) unless real values are needed. Where the numbers
differ from the original's, the module docstrings say why. Each returns something useful:
thop's ``profile`` its ``(macs, params)`` tuple, the others the `ModelReport`, whose own
view (``print(report)``, a notebook cell's value) is torchtally's table with matching
columns. In a notebook the table is shown once per call: the returned report does not show
it again as the value of the cell that printed it.
"""

from __future__ import annotations

__all__ = ["thop", "torchinfo", "torchstat", "torchsummary"]
