"""`make bench`: each benchmarks/bench_<area>.py exposes run() -> dict of figures (ratios against a
baseline measured in the same run; absolute times only where the device is named)."""
