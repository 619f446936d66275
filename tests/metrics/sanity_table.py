"""Print the sanity-contract table of docs/metrics/sanity.md (issue 15).

    OMP_NUM_THREADS=1 .venv/bin/python tests/metrics/sanity_table.py [n] [seed]

Defaults: n = 16 grids / digits, seed = 0; the grid classifier is the zoo's mnist_allconv.
"""

import sys
import time

import torch

import faithmap as fm
from faithmap.metrics import sanity

if __name__ == "__main__":
    torch.set_num_threads(1)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    start = time.perf_counter()
    bench = sanity.sanity_bench(fm.zoo.load("mnist_allconv"), n=n, seed=seed)
    print(sanity.table(bench))
    print(f"\nn = {n}, seed = {seed}, predicted target fraction on the grids (prediction = "
          f"the explained cell's label): {bench.info['predicted_fraction_grid']:.3f}; "
          f"{time.perf_counter() - start:.0f} s")
