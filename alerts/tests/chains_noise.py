#!/usr/bin/env python3
"""The guards of WolkvoxRepeatedTransfersHigh against chance, exactly (binomial counts).

An hour's settled chains: n, of which a share p was transferred twice or more; the same
hour a week earlier: n0 chains at p0. The alert needs p > p0 + MARGIN and the arcsine
test 2 (asin(sqrt(p)) - asin(sqrt(p0))) / sqrt(1/n + 1/n0) >= Z (and n, n0 >= MIN).

Prints, by chains an hour (n = n0), the share needed to fire over a baseline of 15%;
the probability that an hour fires with no real change (both hours drawn at the same
share), for shares of 5%, 15% and 30%: the rule's false alarms per evaluated hour; and
the probability that it fires when the share rose from 15% to 30% or to 40%.
"""
import math

MARGIN, Z, MIN_CHAINS = 0.1, 3.5, 30


def fires(x, n, y, n0):
    p, p0 = x / n, y / n0
    z = 2 * (math.asin(math.sqrt(p)) - math.asin(math.sqrt(p0))) / math.sqrt(1 / n + 1 / n0)
    return n >= MIN_CHAINS and n0 >= MIN_CHAINS and p > p0 + MARGIN and z >= Z


def pmf(n, p):
    logs = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + (k * math.log(p) if k else 0) + ((n - k) * math.log1p(-p) if n - k else 0)
            for k in range(n + 1)]
    return [math.exp(v) for v in logs]


def firing(n, p, p0):
    """P(fire) with this hour's chains at share p and the week earlier's at p0."""
    now, before = pmf(n, p), pmf(n, p0)
    tail = [0.0] * (n + 2)
    for k in range(n, -1, -1):
        tail[k] = tail[k + 1] + now[k]
    total = 0.0
    for y in range(n + 1):
        x = next((x for x in range(y, n + 1) if fires(x, n, y, n)), None)
        if x is not None:
            total += before[y] * tail[x]
    return total


def needed(n, p0):
    y = round(p0 * n)
    x = next((x for x in range(y, n + 1) if fires(x, n, y, n)), n)
    return x / n


print("chains/h  needed over 15%  false alarms at 5%, 15%, 30%  fires 15%->30%, ->40%")
for n in (30, 50, 100, 300, 1000, 3000):
    alarms = ", ".join(f"{firing(n, p, p):.4f}" for p in (0.05, 0.15, 0.30))
    power = ", ".join(f"{firing(n, p, 0.15):.3f}" for p in (0.30, 0.40))
    print(f"{n:8}  {needed(n, 0.15):15.3f}  {alarms:28}  {power}")
