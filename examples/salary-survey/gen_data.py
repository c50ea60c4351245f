#!/usr/bin/env python3
"""Writes deterministic synthetic payrolls for the salary survey (README.md): one CSV per
employer, `job_level,gender,salary`, the same bytes for the same arguments on any machine.

    gen_data.py --employers 5 --rows 200 --seed 1 --out DIR   # DIR/employer-1.csv ...

Levels L1..L6 with rising pay; each employer has its own pay level and its own gap between
women and men (0 to 15%); about 45% F, 50% M, 5% X. Level L6 exists only at every third
employer (employer-1, employer-4, ...), so with five employers and k = 3 its groups are
suppressed. Only random.Random(seed).random() is used, whose sequence Python keeps stable.
"""

import argparse
import math
import os
import random
import sys

LEVELS = [("L1", 42000), ("L2", 51000), ("L3", 63000), ("L4", 78000), ("L5", 97000),
          ("L6", 140000)]


def employer_id(i):
    return f"employer-{i}"


def payroll(index, rows, rng):
    """CSV text of employer `index` (1-based), `rows` employees."""
    pay_level = 0.9 + 0.2 * rng.random()
    gap = 0.15 * rng.random()
    levels = LEVELS if index % 3 == 1 else LEVELS[:-1]
    lines = ["job_level,gender,salary"]
    for _ in range(rows):
        # Fewer people the higher the level: weights 1, 1/2, 1/3, ...
        u = rng.random() * sum(1 / (n + 1) for n in range(len(levels)))
        n = 0
        while n < len(levels) - 1 and u >= 1 / (n + 1):
            u -= 1 / (n + 1)
            n += 1
        level, base = levels[n]
        g = rng.random()
        gender = "F" if g < 0.45 else ("M" if g < 0.95 else "X")
        # A normal variate from two uniforms (Box-Muller), 8% spread.
        z = math.sqrt(-2 * math.log(1 - rng.random())) * math.cos(2 * math.pi * rng.random())
        salary = base * pay_level * (1 + 0.08 * z) * (1 - gap if gender == "F" else 1)
        lines.append(f"{level},{gender},{max(1, round(salary))}")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--employers", type=int, required=True, help="number of employers (1..1000)")
    p.add_argument("--rows", type=int, required=True, help="employees per employer (1..1000000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--out", required=True, help="directory to write <employer>.csv files into")
    a = p.parse_args()
    if not 1 <= a.employers <= 1000 or not 1 <= a.rows <= 1_000_000:
        p.error("--employers must be 1..1000 and --rows 1..1000000")
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    for i in range(1, a.employers + 1):
        with open(os.path.join(a.out, employer_id(i) + ".csv"), "w", encoding="ascii",
                  newline="\n") as f:
            f.write(payroll(i, a.rows, rng))
    return 0


if __name__ == "__main__":
    sys.exit(main())
