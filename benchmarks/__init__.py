"""Side-by-side speed and memory comparisons of fif against the libraries people use: `python benchmarks/run.py`."""
