"""Cron expressions for recurring runs, checked here and written as KFP's scheduler (robfig/cron) takes them."""

from __future__ import annotations

from typing import Optional

from pipeline.kubeflow.errors import UserError

CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
CRON_FIELDS = (("second", 0, 59, None), ("minute", 0, 59, None), ("hour", 0, 23, None),
               ("day-of-month", 1, 31, None), ("month", 1, 12, MONTHS), ("day-of-week", 0, 6, DAYS))


def normalize_cron(expression: str) -> str:
    """A cron expression as KFP's scheduler (robfig/cron, seconds first) takes it. The usual 5 fields (minute hour
    day-of-month month day-of-week) get a leading "0" seconds field; 6 fields are checked as they are."""
    text = " ".join(expression.split())
    usage = ('use 5 fields "minute hour day-of-month month day-of-week" (e.g. "0 3 * * 1": Mondays at 03:00), '
             f"6 with seconds first, or one of {', '.join(CRON_DESCRIPTORS)}")
    if not text:
        raise UserError(f"the cron expression is empty; {usage}.")
    if text.startswith("@"):
        if text.lower() in CRON_DESCRIPTORS:
            return text.lower()
        raise UserError(f"invalid cron expression {expression!r}: unknown descriptor; {usage}.")
    fields = text.split(" ")
    if len(fields) == 5:
        fields = ["0"] + fields
    elif len(fields) != 6:
        raise UserError(f"invalid cron expression {expression!r}: {len(fields)} fields; {usage}.")
    for value, (name, low, high, names) in zip(fields, CRON_FIELDS):
        problem = _cron_field_problem(value, low, high, names, name.startswith("day"))
        if problem:
            raise UserError(f"invalid cron expression {expression!r}: the {name} field {value!r} {problem}.")
    return " ".join(fields)


def _cron_field_problem(value: str, low: int, high: int, names, question_allowed: bool) -> Optional[str]:
    for part in value.split(","):
        base, slash, step = part.partition("/")
        if slash and (not step.isdigit() or int(step) == 0):
            return f"has the step {step!r}; a step is a positive number"
        if base in ("*", "?"):
            if base == "?" and not question_allowed:
                return "uses '?', which only day-of-month and day-of-week allow"
            continue
        start, dash, end = base.partition("-")
        numbers = []
        for token in ((start, end) if dash else (start,)):
            if token.isdigit():
                number = int(token)
            elif names and token.upper() in names:
                number = names.index(token.upper()) + (1 if names is MONTHS else 0)
            else:
                return (f"has {token!r}, which is not a number{' or name' if names else ''}" if token
                        else "has an empty item")
            if not low <= number <= high:
                hint = " (0 is Sunday)" if names is DAYS and number == 7 else ""
                return f"has {number}, outside {low}-{high}{hint}"
            numbers.append(number)
        if dash and numbers[0] > numbers[1]:
            return f"has the range {base!r}, which runs backwards"
    return None
