"""Side-by-side measurements of prodready: `make bench` runs `python -m benchmarks`.

`validate` times the offline checker against kube-score, kube-linter and Polaris (built
from Go modules by `peers`) on one generated corpus; `operator` times convergence, idle
writes, memory and webhook latency on a fresh local control plane; every figure is
measured in the same run and printed as a ratio. `RESULTS.md` holds the last figures.
"""
