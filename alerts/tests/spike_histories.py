#!/usr/bin/env python3
"""Writes alerts/tests/spike_history.test.yml: two weeks and a day of counters, polled
the way the exporter polls, for the WolkvoxInteractionSpike cases that need a history.

    python3 alerts/tests/spike_histories.py           # rewrite the file
    python3 alerts/tests/spike_histories.py --check   # exit 1 if the file is out of date

The model. Time 0 is the test's start (1970-01-01 00:00 UTC, a Thursday); the operation
is on UTC. The exporter polls agent_13 every 5 minutes and Prometheus scrapes right
after each poll, so every sample is one poll. A poll at t fetches every record dated up
to t - 60 s (--poll.delay) since the last successful poll and counts, in the late
counters too, those dated more than two intervals plus the delay (660 s) before t: of a
catch-up, all but the last 10 minutes. The interaction counters are persisted (a restart
keeps them); the late counters are modelled as reset by a restart, the harder case for
the rules. While the API fails, the counters and the watermark stand still; while the
exporter is down there are no samples at all, and the first scrape after its restart
comes before its first poll (old counters, late counters at 0, the old watermark).

Deterministic: the noise comes from a fixed seed.
"""

import random
import sys
from pathlib import Path

STEP = 300  # seconds: a poll and a scrape
DAY = 86400 // STEP  # samples a day
END = 15 * DAY + 6 * 12  # two weeks, a day and 6 hours of samples
OUT = Path(__file__).with_name("spike_history.test.yml")
LABELS = 'job="wolkvox", instance="e:9798"'
RUNBOOK = ("https://github.com/wolkvox-exporter/wolkvox-exporter/blob/main/docs/"
           "runbook.md#wolkvoxinteractionspike")


def at(day, hour, minute=0):
    """Sample index of a day and time."""
    return day * DAY + (hour * 60 + minute) // 5


def stamp(index):
    """promtool's duration for a sample index: 14d10h5m."""
    minutes = index * 5
    d, rest = divmod(minutes, 1440)
    h, m = divmod(rest, 60)
    return (f"{d}d" if d else "") + (f"{h}h" if h else "") + (f"{m}m" if m else "") or "0m"


class Operation:
    """One operation's agent_13 polls and the series Prometheus scraped from them."""

    def __init__(self, name, transfers, conferences=None, api_down=(), exporter_down=()):
        self.name = name
        # Records per 5-minute slot: slot j holds those dated in (t_j - 360 s, t_j - 60 s].
        self.slots = {"transfer": transfers}
        if conferences is not None:
            self.slots["conference"] = conferences
        self.api_down = set(api_down)
        self.exporter_down = set(exporter_down)
        self.series = self._poll()

    def _poll(self):
        kinds = list(self.slots)
        total = {k: 0 for k in kinds}
        late = {k: 0 for k in kinds}
        records_late = 0
        fetched = -1  # the last slot fetched
        out = {key: [] for key in
               [("total", k) for k in kinds] + [("late", k) for k in kinds]
               + [("records_late",), ("watermark",), ("interval",)]}
        restarting = False
        for t in range(END):
            if t in self.exporter_down:
                for values in out.values():
                    values.append(None)
                restarting = True
                continue
            if restarting:
                # The restarted exporter: persisted counters, fresh late counters, the
                # watermark of its state; scraped before its first poll.
                restarting = False
                late = {k: 0 for k in kinds}
                records_late = 0
            elif t not in self.api_down:
                for slot in range(fetched + 1, t + 1):
                    for k in kinds:
                        n = self.slots[k][slot]
                        total[k] += n
                        if t - slot >= 2:
                            late[k] += n
                            records_late += n
                fetched = t
            for k in kinds:
                out[("total", k)].append(total[k])
                out[("late", k)].append(late[k])
            out[("records_late",)].append(records_late)
            out[("watermark",)].append(fetched * STEP - 60)
            out[("interval",)].append(STEP)
        return out

    def input_series(self):
        op = f'operation="{self.name}"'
        lines = []
        for key, values in self.series.items():
            if key[0] == "total":
                name = (f'wolkvox_agent_interactions_total{{{LABELS}, {op}, '
                        f'agent_id="1001", interaction="{key[1]}"}}')
            elif key[0] == "late":
                name = (f'wolkvox_agent_interactions_late_total{{{LABELS}, {op}, '
                        f'interaction="{key[1]}"}}')
            elif key[0] == "records_late":
                name = f'wolkvox_records_late_total{{{LABELS}, {op}, report="agent_13"}}'
            elif key[0] == "watermark":
                name = (f'wolkvox_ingested_until_timestamp_seconds{{{LABELS}, {op}, '
                        f'report="agent_13"}}')
            else:
                name = f'wolkvox_poll_interval_seconds{{{LABELS}, {op}, report="agent_13"}}'
            lines.append(f"      - series: '{name}'\n        values: '{expand(values)}'")
        return "\n".join(lines)

    def ontime15m(self, t, kind="transfer"):
        """What the on-time recording rule gives at sample t (the rule's own arithmetic)."""
        s = self.series
        d_total = s[("total", kind)][t] - s[("total", kind)][t - 3]
        d_late = s[("late", kind)][t] - s[("late", kind)][t - 3]
        return d_total - (d_late if d_late >= 0 else s[("late", kind)][t])


def expand(values):
    """promtool's expanding notation: runs of equal steps as `a+bxn`, gaps as `_xn`."""
    parts = []
    i = 0
    while i < len(values):
        if values[i] is None:
            j = i
            while j < len(values) and values[j] is None:
                j += 1
            parts.append(f"_x{j - i}")
            i = j
            continue
        j = i + 1
        if j < len(values) and values[j] is not None:
            step = values[j] - values[i]
            while j + 1 < len(values) and values[j + 1] is not None \
                    and values[j + 1] - values[j] == step:
                j += 1
            if j - i >= 2:
                sign = "+" if step >= 0 else "-"
                parts.append(f"{values[i]}{sign}{abs(step)}x{j - i}")
                i = j + 1
                continue
        parts.append(str(values[i]))
        i += 1
    return " ".join(parts)


def steady(per_poll, changes=()):
    """Records per slot: per_poll, then each (from_slot, until_slot, per_poll) of changes."""
    slots = [per_poll] * END
    for start, stop, n in changes:
        for j in range(start, stop):
            slots[j] = n
    return slots


def working_days(seed):
    """A contact centre's week: no one at night, a morning ramp from 7 to 8, 240
    transfers an hour until noon, 60% over lunch, the afternoon, an evening ramp from 17
    to 19; Saturday and Sunday at a third. Each 5 minutes multiplied by a factor drawn
    uniformly from 0.6 to 1.4."""
    rng = random.Random(seed)
    slots = []
    for t in range(END):
        day, minute = divmod(t * 5, 1440)
        hour = minute / 60
        if hour < 7 or hour >= 19:
            level = 0.0
        elif hour < 8:
            level = hour - 7
        elif 12 <= hour < 13.5:
            level = 0.6
        elif hour < 17:
            level = 1.0
        else:
            level = (19 - hour) / 2
        weekday = (3 + day) % 7  # 1970-01-01 was a Thursday (Monday = 0)
        if weekday >= 5:
            level /= 3
        slots.append(round(20 * level * rng.uniform(0.6, 1.4)))
    return slots


def silent(op, from_day, to_day, state="firing"):
    """A promql_expr_test: the alert was never in `state` for op from from_day to to_day."""
    return f"""      - expr: count_over_time(ALERTS{{alertname="WolkvoxInteractionSpike", operation="{op}", alertstate="{state}"}}[{to_day - from_day}d])
        eval_time: {to_day}d
        exp_samples: []"""


def firing(op, when, *alerts):
    """An alert_rule_test: at `when`, op fires for each (interaction, count, baseline)."""
    text = f"""      - eval_time: {when}
        alertname: WolkvoxInteractionSpike
        exp_alerts:"""
    for interaction, count, baseline in alerts:
        text += f"""
          - exp_labels:
              severity: warning
              job: wolkvox
              operation: {op}
              interaction: {interaction}
            exp_annotations:
              summary: Transfers or conferences are well above their usual level.
              description: >-
                Operation {op} counted {count} {interaction}s in the last 15 minutes,
                catch-ups left out, more than 3 times its baseline of {baseline} (the same
                time a week earlier; two weeks or a day earlier where the exporter was
                not current then).
              runbook_url: {RUNBOOK}"""
    return text


def not_firing(op, when):
    return f"""      - eval_time: {when}
        alertname: WolkvoxInteractionSpike
        exp_alerts: []"""


def value(expr, when, labels, v):
    selector = labels[labels.index("{"):]
    return f"""      - expr: {expr}{selector}
        eval_time: {when}
        exp_samples:
          - labels: '{labels}'
            value: {v}"""


def case(title, ops, alert_tests, expr_tests):
    """One case: its operations and assertions, with a title for the comments."""
    return title, ops, alert_tests, expr_tests


def one_group(cases):
    """Every case in one test group: promtool evaluates every rule at every step from 0
    for each group, and two weeks of steps cost far more than a few more series."""
    series, alerts, exprs = [], [], []
    for title, ops, alert_tests, expr_tests in cases:
        comment = f"      # {title}"
        series.append(comment + "\n" + "\n".join(op.input_series() for op in ops))
        alerts.append(comment + "\n" + "\n".join(alert_tests))
        exprs.append(comment + "\n" + "\n".join(expr_tests))
    return f"""  - name: the cases that need two weeks of history, one operation each
    interval: 5m
    input_series:
{chr(10).join(series)}
    promql_expr_test:
{chr(10).join(exprs)}
    alert_rule_test:
{chr(10).join(alerts)}
"""


def main():
    cases = []
    ontime = "operation_interaction:wolkvox_agent_interactions:ontime_increase15m"
    baseline = "operation_interaction:wolkvox_agent_interactions:increase15m_baseline"

    # 1. A sustained 4x spike and a 2x bump, each for an hour, on a steady 120 transfers
    # an hour (10 a poll) and 48 conferences an hour. The counters start rising with the
    # sample of 14d10h. (Every case is in one test group and an alert test lists every
    # firing alert: the spikes of the cases do not overlap.)
    rise = at(14, 10)
    spike = Operation("spike", steady(10, [(rise, rise + 12, 40)]),
                      steady(4, [(rise, rise + 12, 16)]))
    bump = Operation("bump", steady(10, [(rise, rise + 24, 20)]))
    flat = Operation("flat", steady(10))
    cases.append(case(
        "a sustained 4x spike pages 15 minutes after the counters start rising; a 2x "
        "bump and a steady level do not",
        [spike, bump, flat],
        [
            # The third raised poll (14d10h10m) takes the 15 minutes to 4 times the
            # baseline; `for: 5m` then pages at 14d10h15m.
            not_firing("spike", "14d10h10m"),
            firing("spike", "14d10h15m", ("transfer", 120, 30), ("conference", 48, 12)),
            firing("spike", "14d10h20m", ("transfer", 120, 30), ("conference", 48, 12)),
            # The hour over, the last raised polls leave the 15 minutes: silent again.
            not_firing("spike", "14d11h15m"),
        ],
        [
            value(ontime, stamp(rise + 1), f'{ontime}{{job="wolkvox", operation="spike", '
                  f'interaction="transfer"}}', 90),
            value(baseline, stamp(rise + 1), f'{baseline}{{job="wolkvox", '
                  f'operation="spike", interaction="transfer"}}', 30),
            silent("spike", 0, 14, "pending"),
            silent("bump", 0, 15, "pending"),
            silent("flat", 0, 15, "pending"),
        ],
    ))

    # 2. The API unreachable for 3 hours (14d10h to 14d13h): the counters stand still,
    # then one poll adds the 37 polls missed, 35 of them late. And the exporter itself
    # down for 3 hours (no samples), restarted: first scraped with its old counters,
    # then its catch-up.
    outage = Operation("outage", steady(10), api_down=range(at(14, 10), at(14, 13)))
    down = Operation("down", steady(10), exporter_down=range(at(14, 10), at(14, 13)))
    catch_up = at(14, 13)
    assert outage.ontime15m(catch_up) == 20, outage.ontime15m(catch_up)
    assert down.ontime15m(catch_up + 3) == 40, down.ontime15m(catch_up + 3)
    cases.append(case(
        "an API outage of 3 hours and an exporter down for 3 hours: the catch-up pages "
        "nobody, before, during or after",
        [outage, down],
        [not_firing("outage", "14d13h5m"), not_firing("down", "14d13h20m")],
        [
            # The catch-up poll: 370 transfers, 350 late; 20 on time.
            value(ontime, "14d13h", f'{ontime}{{job="wolkvox", operation="outage", '
                  f'interaction="transfer"}}', 20),
            # After the restart: 370 + 10 + 10 counted, 350 late (the reset late
            # counter counts from 0).
            value(ontime, "14d13h15m", f'{ontime}{{job="wolkvox", operation="down", '
                  f'interaction="transfer"}}', 40),
            silent("outage", 0, 15, "pending"),
            silent("down", 0, 15, "pending"),
        ],
    ))

    # 3. The week after: the same outages a week earlier (7d10h to 7d13h) leave the
    # week-old hours without a usable baseline; the hour two weeks earlier stands in.
    # A normal level pages nobody; a 4x spike from 14d11h30m to 14d12h30m still pages.
    ago = range(at(7, 10), at(7, 13))
    after_api = Operation("after_api", steady(10), api_down=ago)
    after_down = Operation("after_down", steady(10), exporter_down=ago)
    after_spike = Operation("after_spike", steady(10, [(at(14, 11, 30), at(14, 12, 30), 40)]),
                            api_down=ago)
    cases.append(case(
        "the week after an outage the baseline neither pages on a normal level nor hides "
        "a real spike",
        [after_api, after_down, after_spike],
        [
            not_firing("after_spike", "14d11h40m"),
            firing("after_spike", "14d11h45m", ("transfer", 120, 30)),
        ],
        [
            # Within the week-old outage (its catch-up came at 7d13h): the baseline is
            # the hour two weeks earlier, 30 in 15 minutes.
            value(baseline, "14d12h50m", f'{baseline}{{job="wolkvox", operation="after_api", '
                  f'interaction="transfer"}}', 30),
            value(baseline, "14d12h50m", f'{baseline}{{job="wolkvox", '
                  f'operation="after_down", interaction="transfer"}}', 30),
            silent("after_api", 0, 15, "pending"),
            silent("after_down", 0, 15, "pending"),
            silent("after_spike", 0, 14, "pending"),
        ],
    ))

    # 4. Two weeks of working days with +-40% noise per 5 minutes: never a page once
    # there is a week of history. (In the first week the previous day is the baseline,
    # and the first Monday, against a Sunday at a third, pages: see the runbook.)
    workday = Operation("workday", working_days(seed=19))
    cases.append(case(
        "working days with +-40% noise per 5 minutes page nobody once a week of history exists",
        [workday],
        [not_firing("workday", "14d10h")],
        [
            value(ontime, "14d10h", f'{ontime}{{job="wolkvox", operation="workday", '
                  f'interaction="transfer"}}', workday.ontime15m(at(14, 10))),
            silent("workday", 7, 15),
        ],
    ))

    text = f"""# GENERATED by alerts/tests/spike_histories.py: do not edit; change the script and
# rerun it (tests/rules.rs fails when they differ). Two weeks of agent_13 polls, one
# sample per 5-minute poll, for WolkvoxInteractionSpike; the script says how the
# histories are made.
rule_files:
  - ../wolkvox.rules.yml

evaluation_interval: 5m

# Recording rules first at every step, as a real Prometheus sees them after its first
# evaluation; without an order promtool evaluates the groups in random order.
group_eval_order:
  - wolkvox.recording
  - wolkvox.alerts

tests:
{one_group(cases)}"""
    if sys.argv[1:] == ["--check"]:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run python3 alerts/tests/spike_histories.py",
                  file=sys.stderr)
            sys.exit(1)
    elif sys.argv[1:]:
        print("usage: spike_histories.py [--check]", file=sys.stderr)
        sys.exit(2)
    else:
        OUT.write_text(text)
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
