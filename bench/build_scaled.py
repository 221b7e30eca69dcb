"""Build (once) the scaled demo database used by the benchmarks:

    python -m bench.build_scaled 200000 [--lite]
"""

import sys

from bench.common import scaled_demo

if __name__ == "__main__":
    print(scaled_demo(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000,
                      units="--lite" not in sys.argv))
