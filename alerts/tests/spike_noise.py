#!/usr/bin/env python3
"""How often WolkvoxInteractionSpike pages on noise, on a 2x bump and on a 4x spike.

A model of the rule, not of Prometheus: the exporter polls every 5 minutes and each poll
adds the interactions of its 5 minutes to the counter. A poll's count is Poisson around
the operation's rate times a working-day noise factor drawn uniformly from 0.6 to 1.4
(plus or minus 40% per 5 minutes), independently for every poll, this week and a week
earlier. The rule compares the last 3 polls (15 minutes) with the 12 polls of the hour
centred on the same 15 minutes a week earlier, divided by 4; it is true when the count
is more than FACTOR times that baseline and at least MIN_COUNT, and pages when it is
true at two polls in a row (`for: 5m`).

    python3 alerts/tests/spike_noise.py            # the table quoted in the rules file
    python3 alerts/tests/spike_noise.py 2.5 20     # another FACTOR and MIN_COUNT

Deterministic (fixed seed); pure Python, no packages. Takes about a minute.
"""

import math
import random
import sys

FACTOR = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
MIN_COUNT = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
NOISE = 0.4
POLLS_A_DAY = 120  # a 10-hour working day of 5-minute polls
DAYS = 1000
TRIALS = 2000
RATES = [20, 40, 80, 120, 240, 480, 1000, 3000]  # interactions an hour

rng = random.Random(20261201)


def poisson(mean):
    """Poisson sample; large means as sums of small ones (exp(-mean) stays representable)."""
    total = 0
    while mean > 0:
        part = min(mean, 30.0)
        mean -= part
        limit, k, p = math.exp(-part), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        total += k
    return total


def polls(rate_per_poll, n, factor=1.0, start=0):
    """Counts of n polls; from poll `start` on, the rate is multiplied by `factor`."""
    return [
        poisson(rate_per_poll * (factor if i >= start else 1.0)
                * rng.uniform(1 - NOISE, 1 + NOISE))
        for i in range(n)
    ]


def first_page(now, week_ago, first_state):
    """Index of the first poll at which the rule pages (true at it and the one before)."""
    before = False
    for k in range(first_state, len(now)):
        count = now[k] + now[k - 1] + now[k - 2]
        # The hour of the week before, centred on polls k-2..k: the polls of
        # (t - 37m30s, t + 22m30s], k-7 .. k+4.
        baseline = sum(week_ago[k - 7:k + 5]) / 4
        true = count > FACTOR * baseline and count >= MIN_COUNT
        if true and before:
            return k
        before = true
    return None


def main():
    print(f"FACTOR {FACTOR:g}, MIN_COUNT {MIN_COUNT:g}, noise +-{NOISE:.0%} per 5 minutes")
    print(f"{'rate/h':>7} {'noise: days paged':>18} {'2x for 1h: paged':>17} "
          f"{'4x: paged by +15m':>18} {'by +20m':>8} {'by +30m':>8}")
    for rate in RATES:
        per_poll = rate / 12
        n = POLLS_A_DAY + 12
        noise_days = 0
        for _ in range(DAYS):
            if first_page(polls(per_poll, n), polls(per_poll, n), 8) is not None:
                noise_days += 1
        bump = 0
        by = {3: 0, 4: 0, 6: 0}
        for _ in range(TRIALS):
            # 30 polls: the step at poll 10 is the first raised one ("the counters start
            # rising"); a 2x bump lasts 12 polls (an hour).
            week_ago = polls(per_poll, 36)
            now = polls(per_poll, 10) + polls(per_poll, 12, 2.0) + polls(per_poll, 14)
            if first_page(now, week_ago, 8) is not None:
                bump += 1
            now = polls(per_poll, 10) + polls(per_poll, 20, 4.0)
            k = first_page(now, week_ago, 8)
            for steps in by:
                if k is not None and k - 10 <= steps:
                    by[steps] += 1
        print(f"{rate:>7} {noise_days / DAYS:>18.3f} {bump / TRIALS:>17.3f} "
              f"{by[3] / TRIALS:>18.3f} {by[4] / TRIALS:>8.3f} {by[6] / TRIALS:>8.3f}")


if __name__ == "__main__":
    main()
