#!/usr/bin/python3.11 -IBS
"""The salary survey: a Cloister app (docs/apps.md) that computes pay statistics over several
employers' payrolls without any employer, or the operator, seeing another's rows.

Each employer (a manifest party) hands in a CSV file (format: examples/salary-survey/README.md):

    job_level,gender,salary
    L3,F,61000
    L3,M,64500

The public outcome ($CLOISTER_OUTPUTS/outcome.json) holds, for every (job level, gender) group,
the number of contributing employers and of employees, the mean, the median and the first and
third quartiles - but only for groups to which at least k employers contribute (k from the
manifest's app.parameters.k, default 3); a smaller group is listed as suppressed, without a
figure. Each employer privately receives ($CLOISTER_OUTPUTS/private/<employer>/pay-gap) its own
pay gap and where it sits among all employers' gaps.

Runs with Python 3.11's standard library only. Fails closed: any malformed input or manifest
writes a message naming the party and the line (never a salary or any other field's value) to
$CLOISTER_OUTPUTS/error and exits 1, having written no outcome.
"""

import csv
import json
import os
import re
import statistics
import sys

# The private output this app produces (the manifest's app.outputs must declare it).
OUTPUT_NAME = "pay-gap"
DEFAULT_K = 3
HEADER = ("job_level", "gender", "salary")
GENDERS = ("F", "M", "X")
LEVEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
# 1 .. 999,999,999 in whole currency units: digits only, no sign, no leading zero.
SALARY_RE = re.compile(r"[1-9][0-9]{0,8}")
MAX_ROWS_PER_EMPLOYER = 1_000_000
# Job levels are a scale the employers share; a few hundred at most. Bounds the outcome, which
# the runtime takes only up to 1 MiB (docs/apps.md).
MAX_LEVELS_PER_EMPLOYER = 500
MAX_OUTCOME_BYTES = 1 << 20
MAX_INPUT_BYTES = 64 << 20
MAX_MANIFEST_BYTES = 1 << 20
# The runtime reports at most this much of the error file (docs/apps.md).
MAX_ERROR_BYTES = 512
PARTY_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# One data line in its canonical form (the fast path of parse_payroll): "level,gender" and salary.
CANONICAL_ROW_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]{0,31},[FMX]),([1-9][0-9]{0,8})\r?$",
                              re.MULTILINE)


class SurveyError(Exception):
    """A reason the run fails; its text goes to the parties and the operator, so it never holds
    a value from an input file."""


def fail(outputs_dir, message):
    """Writes `message` (printable ASCII, bounded) to outputs/error and exits 1."""
    text = "".join(c if " " <= c <= "~" else "?" for c in message)[:MAX_ERROR_BYTES]
    if outputs_dir:
        try:
            with open(os.path.join(outputs_dir, "error"), "w", encoding="ascii") as f:
                f.write(text + "\n")
        except OSError:
            pass
    sys.exit(1)


def read_manifest(path):
    """Returns (party ids in manifest order, k, readers of the pay-gap output)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as e:
        raise SurveyError(f"manifest: cannot read $CLOISTER_MANIFEST ({e.strerror})") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise SurveyError("manifest: larger than 1 MiB")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SurveyError("manifest: not UTF-8 JSON") from None
    if not isinstance(manifest, dict):
        raise SurveyError("manifest: not a JSON object")

    parties = manifest.get("parties")
    if not isinstance(parties, list) or not parties:
        raise SurveyError("manifest: parties is missing or empty")
    ids = []
    for p in parties:
        pid = p.get("id") if isinstance(p, dict) else None
        # A party id names a file and a directory: "." and ".." would name others.
        if not isinstance(pid, str) or not PARTY_ID_RE.fullmatch(pid) or pid in (".", ".."):
            raise SurveyError("manifest: a party id is missing or invalid")
        if pid in ids:
            raise SurveyError(f"manifest: party {pid} is listed twice")
        ids.append(pid)

    app = manifest.get("app")
    if not isinstance(app, dict):
        raise SurveyError("manifest: the app section is missing")
    params = app.get("parameters", {})
    if not isinstance(params, dict):
        raise SurveyError("manifest: app.parameters is not an object")
    for key in params:
        if key != "k":
            raise SurveyError(f"manifest: app.parameters has unknown field '{key[:64]}'")
    k = params.get("k", DEFAULT_K)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
        raise SurveyError("manifest: app.parameters.k must be an integer from 1 to 1000")

    readers = []
    outputs = app.get("outputs", [])
    if not isinstance(outputs, list):
        raise SurveyError("manifest: app.outputs is not an array")
    for o in outputs:
        if not isinstance(o, dict):
            raise SurveyError("manifest: an app.outputs entry is not an object")
        name, reader = o.get("name"), o.get("reader")
        if name != OUTPUT_NAME:
            shown = name[:64] if isinstance(name, str) else "?"
            raise SurveyError(f"manifest: app.outputs declares '{shown}'; this app writes only "
                              f"'{OUTPUT_NAME}'")
        if reader == "*":
            readers.extend(ids)
        elif reader in ids:
            readers.append(reader)
        else:
            raise SurveyError(f"manifest: app.outputs names a reader that is not a party")
    return ids, k, sorted(set(readers), key=ids.index)


def parse_payroll(party, data):
    """Parses one employer's CSV (bytes). Returns {(level, gender): [salary, ...]} in file
    order. Raises SurveyError naming the party and the line."""
    if len(data) > MAX_INPUT_BYTES:
        raise SurveyError(f"{party}: input larger than {MAX_INPUT_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise SurveyError(f"{party}: line {line}: not UTF-8 text") from None
    if text.startswith("\ufeff"):  # a byte-order mark, as spreadsheet exports write
        text = text[1:]
    if '"' in text:
        line = text.count("\n", 0, text.index('"')) + 1
        raise SurveyError(f"{party}: line {line}: quotes are not accepted")
    groups = _parse_canonical(text)
    if groups is not None:
        return _check_levels(party, groups)
    lines = text.split("\n")
    groups = {}
    count = 0
    known_levels = set()  # validated once each: most lines repeat a level
    header_seen = False
    for number, fields in _records(party, lines):
        if not header_seen:
            if tuple(f.strip().lower() for f in fields) != HEADER:
                raise SurveyError(f"{party}: line {number}: the header must be "
                                  f"'job_level,gender,salary'")
            header_seen = True
            continue
        if len(fields) != 3:
            raise SurveyError(f"{party}: line {number}: expected 3 fields "
                              f"(job_level,gender,salary), found {len(fields)}")
        level, gender, salary = (f.strip(" \t") for f in fields)
        if level not in known_levels and not LEVEL_RE.fullmatch(level):
            raise SurveyError(f"{party}: line {number}: job_level must be 1-32 letters, digits, "
                              f"'.', '_' or '-', starting with a letter or digit")
        gender = gender.upper()
        if gender not in GENDERS:
            raise SurveyError(f"{party}: line {number}: gender must be F, M or X")
        if not SALARY_RE.fullmatch(salary):
            raise SurveyError(f"{party}: line {number}: salary must be a whole number from 1 to "
                              f"999999999 (digits only)")
        if count == MAX_ROWS_PER_EMPLOYER:
            raise SurveyError(f"{party}: more than {MAX_ROWS_PER_EMPLOYER} rows")
        known_levels.add(level)
        salaries = groups.get((level, gender))
        if salaries is None:
            salaries = groups[(level, gender)] = []
        salaries.append(int(salary))
        count += 1
    if not header_seen:
        raise SurveyError(f"{party}: line 1: the file is empty; the header "
                          f"'job_level,gender,salary' is required")
    if not count:
        raise SurveyError(f"{party}: no rows after the header")
    return _check_levels(party, groups)


def _parse_canonical(text):
    """The fast path: when the header is exactly HEADER and every non-empty line after it is in
    the canonical form (CANONICAL_ROW_RE), returns what parse_payroll would; else None (the
    caller then checks every line and names the first bad one)."""
    header, _, body = text.partition("\n")
    if header.rstrip("\r") != ",".join(HEADER):
        return None
    rows = CANONICAL_ROW_RE.findall(body)
    lines = body.split("\n")
    non_empty = len(lines) - lines.count("") - lines.count("\r")
    if not rows or len(rows) != non_empty or len(rows) > MAX_ROWS_PER_EMPLOYER:
        return None  # each match is one whole line, so equal counts mean every line matched
    by_key = {}
    for key, salary in rows:
        salaries = by_key.get(key)
        if salaries is None:
            salaries = by_key[key] = []
        salaries.append(int(salary))
    return {tuple(key.split(",")): salaries for key, salaries in by_key.items()}


def _check_levels(party, groups):
    """Returns `groups` if they hold at most MAX_LEVELS_PER_EMPLOYER levels."""
    if len({level for level, _ in groups}) > MAX_LEVELS_PER_EMPLOYER:
        raise SurveyError(f"{party}: more than {MAX_LEVELS_PER_EMPLOYER} distinct job levels "
                          f"(levels are a scale all employers share)")
    return groups


def _records(party, lines):
    """Yields (line number, fields) for every non-empty line. A record is one line: the caller
    refused quotes, so the csv module never joins lines and its line count is the file's."""
    reader = csv.reader((l[:-1] if l.endswith("\r") else l for l in lines), strict=True)
    try:
        for fields in reader:
            if not fields or fields == [""]:
                continue
            yield reader.line_num, fields
    except csv.Error:
        raise SurveyError(f"{party}: line {reader.line_num}: not a CSV record (a carriage "
                          f"return inside the line?)") from None


def quartiles(values):
    """(q1, median, q3) of sorted `values`, by the inclusive method (statistics.quantiles
    method='inclusive': linear interpolation between closest ranks, as spreadsheets'
    QUARTILE.INC)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def money(x):
    return round(float(x), 2)


def public_outcome(payrolls, k):
    """The public outcome: per (level, gender) group, figures only with at least k employers."""
    groups = {}
    for party, payroll in payrolls.items():
        for key, salaries in payroll.items():
            g = groups.setdefault(key, ([], set()))
            g[0].extend(salaries)
            g[1].add(party)
    out = []
    for (level, gender) in sorted(groups):
        salaries, employers = groups[(level, gender)]
        if len(employers) < k:
            out.append({"level": level, "gender": gender, "suppressed": True})
            continue
        salaries.sort()
        q1, median, q3 = quartiles(salaries)
        out.append({
            "level": level,
            "gender": gender,
            "suppressed": False,
            "employers": len(employers),
            "employees": len(salaries),
            "mean": money(sum(salaries) / len(salaries)),
            "median": money(median),
            "q1": money(q1),
            "q3": money(q3),
        })
    return {
        "computation": "salary-survey",
        "k": k,
        "employers": len(payrolls),
        "groups": out,
    }


def employer_gap(payroll):
    """An employer's pay gap: for every job level where it employs both women (F) and men (M),
    gap = (median M - median F) / median M; the employer's gap is the mean of those, weighted
    by its F+M headcount at each level. Returns (gap or None, per-level details)."""
    levels = []
    weighted, weight = 0.0, 0
    for level in sorted({level for level, _ in payroll}):
        f, m = payroll.get((level, "F")), payroll.get((level, "M"))
        if not f or not m:
            continue
        median_f, median_m = statistics.median(f), statistics.median(m)
        gap = (median_m - median_f) / median_m
        headcount = len(f) + len(m)
        weighted += gap * headcount
        weight += headcount
        levels.append({"level": level, "median_f": money(median_f), "median_m": money(median_m),
                       "gap": round(gap, 4), "headcount": headcount})
    return (weighted / weight if weight else None), levels


def percentile_rank(value, values):
    """Percentage of `values` below `value`, ties counting half (the mid-rank percentile)."""
    below = sum(1 for v in values if v < value)
    equal = sum(1 for v in values if v == value)
    return 100.0 * (below + 0.5 * equal) / len(values)


def private_outputs(payrolls, k):
    """Returns {party: report}: its own gap and its percentile rank among the employers' gaps."""
    gaps = {party: employer_gap(payroll) for party, payroll in payrolls.items()}
    defined = [g for g, _ in gaps.values() if g is not None]
    reports = {}
    for party, (gap, levels) in gaps.items():
        report = {
            "employer": party,
            "pay_gap": None if gap is None else round(gap, 4),
            "levels": levels,
            "employers": len(payrolls),
            "employers_with_gap": len(defined),
            "k": k,
            "percentile_rank": None,
            "note": None,
        }
        if gap is None:
            report["note"] = "no job level with both F and M employees: no gap, no rank"
        elif len(defined) < k:
            # Ranking among fewer than k employers would tell each much about the others.
            report["note"] = "fewer than k employers have a gap: no rank"
        else:
            report["percentile_rank"] = round(percentile_rank(gap, defined), 1)
        reports[party] = report
    return reports


def dump(value):
    return (json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                       allow_nan=False) + "\n").encode("ascii")


def write_new(path, data):
    with open(path, "xb") as f:
        f.write(data)


def main():
    outputs_dir = os.environ.get("CLOISTER_OUTPUTS", "")
    try:
        inputs_dir = os.environ.get("CLOISTER_INPUTS", "")
        manifest_path = os.environ.get("CLOISTER_MANIFEST", "")
        if not outputs_dir or not inputs_dir or not manifest_path:
            raise SurveyError("CLOISTER_MANIFEST, CLOISTER_INPUTS and CLOISTER_OUTPUTS must be "
                              "set (docs/apps.md)")
        parties, k, readers = read_manifest(manifest_path)
        payrolls = {}
        for party in parties:
            try:
                with open(os.path.join(inputs_dir, party), "rb") as f:
                    data = f.read(MAX_INPUT_BYTES + 1)
            except OSError as e:
                raise SurveyError(f"{party}: cannot read its input ({e.strerror})") from None
            payrolls[party] = parse_payroll(party, data)
        outcome = dump(public_outcome(payrolls, k))
        if len(outcome) > MAX_OUTCOME_BYTES:
            raise SurveyError("the outcome would exceed 1 MiB: too many (job level, gender) "
                              "groups across the employers")
        reports = private_outputs(payrolls, k)
        # Everything is computed before anything is written: a failure leaves no outcome.
        for reader in readers:
            directory = os.path.join(outputs_dir, "private", reader)
            os.makedirs(directory, exist_ok=True)
            write_new(os.path.join(directory, OUTPUT_NAME), dump(reports[reader]))
        write_new(os.path.join(outputs_dir, "outcome.json"), outcome)
    except SurveyError as e:
        fail(outputs_dir, str(e))
    except MemoryError:
        fail(outputs_dir, "out of memory (raise app.memory_mib)")
    except Exception as e:  # never echo the exception's text: it may quote an input
        fail(outputs_dir, f"internal error ({type(e).__name__})")


if __name__ == "__main__":
    main()
