"""Adaptive practice end to end in the shell: practise, rate, get a reminder, review, see skills by topic."""

from __future__ import annotations

import re

from tests.shell_helpers import Terminal, open_terminal


def button(out: str, label: str) -> str:
    found = re.findall(rf"\[(\d+)\] {re.escape(label)}", out)
    assert found, f"no [{label}] button in:\n{out}"
    return found[-1]


async def rate(t: Terminal, line: str, verdict: str) -> str:
    shown = await t.type(line)
    answer = await t.type(f"/click {button(shown, 'Show answer')}")
    return shown + "\n" + await t.type(f"/click {button(answer, verdict)}")


async def test_practice_reminder_and_review_in_the_shell(sqlite_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    t = await open_terminal(sqlite_url, bank, clock, runtimes)
    out = await rate(t, "/quiz practice cnn", "Missed it")
    assert "Schedule: New" in out and "comes back for review in 1 day (Tue 24 Nov 08:00 UTC)" in out
    out = await rate(t, "/quiz practice cnn", "Got it")
    assert "comes back for review in 2 days" in out
    review = await t.type("/quiz review")
    assert "Due now: 0. Due over the next 7 days: 2 more." in review and "Tue 24 Nov 08:00 UTC" in review
    out = await t.type("/quiz remind time=09:30 timezone=Europe/Paris")
    assert "Reminder set" in out and "Mon 23 Nov 09:30 Europe/Paris" in out

    await t.type("/wait 25h")  # Monday 09:30 Paris had nothing due; Tuesday 09:30 Paris has the missed one
    dms = [m.plain for user, m in t.platform.direct if user == "host"]
    assert len(dms) == 1 and "1 practice question due for review (Convolutional" in dms[0]
    assert "[direct message to host]" in "\n".join(t.out)

    served = await t.type("/quiz practice")
    assert "Schedule: Review: due since Tue 24 Nov 09:00 Europe/Paris" in served  # shown in the reminder's zone
    answer = await t.type(f"/click {button(served, 'Show answer')}")
    again = await t.type(f"/click {button(answer, 'Partly')}")
    assert "Noted: partly" in again
    stats = await t.type("/quiz stats")
    assert "Skills by topic (weakest first):" in stats and "Convolutional" in stats
    assert "50% over 3 reviews of 2 questions (1 well · 1 partly · 1 missed), no trend yet" in stats
    assert "Practise next: Convolutional" in stats and "/quiz practice cnn" in stats
    assert "Reminder off" in await t.type("/quiz remind off")
    await t.type("/wait 48h")
    assert len([u for u, _ in t.platform.direct]) == 1


async def test_reminder_input_mistakes_in_the_shell(sqlite_url, bank, clock, runtimes) -> None:  # type: ignore[no-untyped-def]
    t = await open_terminal(sqlite_url, bank, clock, runtimes)
    assert "not an IANA timezone such as Europe/Berlin. Did you mean Europe/Berlin?" in await t.type(
        "/quiz remind time=08:00 timezone=Europe/Berln"
    )
    assert "'24:00' is not a time of day" in await t.type("/quiz remind 24:00")
    assert "`tone` is not an option" in await t.type("/quiz remind tone=loud")
    assert "off. `/quiz remind time=" in await t.type("/quiz remind")
    help_text = await t.type("/quiz help")
    assert "/quiz review" in help_text and "/quiz remind" in help_text
