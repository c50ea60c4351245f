#!/usr/bin/env python3
"""Tests of examples/salary-survey/app/survey.py, run directly on the host in the layout
docs/apps.md promises an app (a read-only manifest and inputs directory, an empty outputs
directory, a scratch directory as the working directory, only the documented environment):
the figures on a hand-checked data set, k-suppression, the private outputs, malformed inputs
and manifests (a table of failing cases), lenient forms of a file, determinism, and the
generator.

    salary_survey_test.py SOURCE_DIR   (ctest: examples.salary_survey)
"""

import json
import os
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import unittest

SOURCE_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else
                             os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = os.path.join(SOURCE_DIR, "examples", "salary-survey")
APP = os.path.join(EXAMPLE, "app", "survey.py")
GEN = os.path.join(EXAMPLE, "gen_data.py")

# The hand-checked data set. A salary that appears nowhere else (987654) lets the failing cases
# check that no value reaches the error message.
HAND = {
    "employer-a": "job_level,gender,salary\nL1,F,100\nL1,F,200\nL1,M,300\nL2,M,1000\nL2,F,800\n",
    "employer-b": "job_level,gender,salary\nL1,F,300\nL1,M,400\nL1,M,500\n",
    "employer-c": "job_level,gender,salary\nL1,F,400\nL1,M,600\nL2,F,900\nL2,X,50\n",
}


def manifest(parties, parameters=None, outputs=None):
    app = {"command": "survey.py", "time_limit_seconds": 60,
           "outputs": [{"name": "pay-gap", "reader": "*"}] if outputs is None else outputs}
    if parameters is not None:
        app["parameters"] = parameters
    return {"computation": "salary-survey", "computation_id": "survey-test",
            "parties": [{"id": p, "key_arn": "arn:aws:kms:us-east-1:111122223333:key/x"}
                        for p in parties],
            "app": app}


class Layout:
    """The directories and environment docs/apps.md describes, in a temporary directory."""

    def __init__(self, test, inputs, manifest_value):
        self.root = tempfile.mkdtemp(prefix="survey-test-")
        test.addCleanup(self.remove)
        self.inputs = os.path.join(self.root, "inputs")
        self.outputs = os.path.join(self.root, "outputs")
        self.scratch = os.path.join(self.root, "scratch")
        for d in (self.inputs, self.outputs, self.scratch):
            os.mkdir(d)
        for party, data in inputs.items():
            path = os.path.join(self.inputs, party)
            with open(path, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
            os.chmod(path, 0o444)
        os.chmod(self.inputs, 0o555)
        self.manifest = os.path.join(self.root, "manifest.json")
        with open(self.manifest, "w") as f:
            f.write(manifest_value if isinstance(manifest_value, str)
                    else json.dumps(manifest_value))
        os.chmod(self.manifest, 0o444)

    def remove(self):
        os.chmod(self.inputs, 0o755)
        shutil.rmtree(self.root)

    def run(self):
        env = {"CLOISTER_MANIFEST": self.manifest, "CLOISTER_INPUTS": self.inputs,
               "CLOISTER_OUTPUTS": self.outputs, "CLOISTER_SCRATCH": self.scratch,
               "TMPDIR": self.scratch, "HOME": self.scratch,
               "PATH": "/app:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1"}
        return subprocess.run([APP], env=env, cwd=self.scratch, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60).returncode

    def files(self):
        """Every file under outputs, relative path -> bytes."""
        out = {}
        for d, _, names in os.walk(self.outputs):
            for n in names:
                p = os.path.join(d, n)
                with open(p, "rb") as f:
                    out[os.path.relpath(p, self.outputs)] = f.read()
        return out

    def outcome(self):
        with open(os.path.join(self.outputs, "outcome.json")) as f:
            return json.load(f)

    def private(self, party):
        with open(os.path.join(self.outputs, "private", party, "pay-gap")) as f:
            return json.load(f)

    def error(self):
        with open(os.path.join(self.outputs, "error")) as f:
            return f.read().rstrip("\n")


def run_ok(test, inputs, manifest_value):
    layout = Layout(test, inputs, manifest_value)
    code = layout.run()
    test.assertEqual(code, 0, layout.files().get("error", b"").decode())
    test.assertNotIn("error", layout.files())
    return layout


def group(outcome, level, gender):
    found = [g for g in outcome["groups"] if g["level"] == level and g["gender"] == gender]
    assert len(found) == 1, (level, gender)
    return found[0]


class FiguresTest(unittest.TestCase):
    def test_hand_checked_figures_with_default_k(self):
        layout = run_ok(self, HAND, manifest(list(HAND)))  # no parameters: k = 3
        outcome = layout.outcome()
        self.assertEqual(outcome["computation"], "salary-survey")
        self.assertEqual(outcome["k"], 3)
        self.assertEqual(outcome["employers"], 3)
        # Sorted by level, then gender; every group that appears in any file is listed.
        self.assertEqual([(g["level"], g["gender"]) for g in outcome["groups"]],
                         [("L1", "F"), ("L1", "M"), ("L2", "F"), ("L2", "M"), ("L2", "X")])
        # L1 F: 100 200 300 400 (three employers). Inclusive quartiles: positions 0.75, 1.5, 2.25.
        self.assertEqual(group(outcome, "L1", "F"), {
            "level": "L1", "gender": "F", "suppressed": False, "employers": 3, "employees": 4,
            "mean": 250.0, "median": 250.0, "q1": 175.0, "q3": 325.0})
        # L1 M: 300 400 500 600.
        self.assertEqual(group(outcome, "L1", "M"), {
            "level": "L1", "gender": "M", "suppressed": False, "employers": 3, "employees": 4,
            "mean": 450.0, "median": 450.0, "q1": 375.0, "q3": 525.0})

    def test_odd_counts_and_fractional_means(self):
        inputs = {
            "p1": "job_level,gender,salary\nA,F,10\nA,F,11\n",
            "p2": "job_level,gender,salary\nA,F,20\n",
            "p3": "job_level,gender,salary\nA,F,50\nA,F,13\n",
        }
        g = group(run_ok(self, inputs, manifest(list(inputs))).outcome(), "A", "F")
        # 10 11 13 20 50: mean 20.8, median 13, q1 at position 1 = 11, q3 at position 3 = 20.
        self.assertEqual((g["employees"], g["mean"], g["median"], g["q1"], g["q3"]),
                         (5, 20.8, 13.0, 11.0, 20.0))
        inputs["p2"] = "job_level,gender,salary\nA,F,20\nA,F,21\n"
        g = group(run_ok(self, inputs, manifest(list(inputs))).outcome(), "A", "F")
        # 10 11 13 20 21 50: mean 20.833.. -> 20.83; median 16.5; q1 at 1.25 = 11.5; q3 at 3.75 = 20.75
        self.assertEqual((g["mean"], g["median"], g["q1"], g["q3"]), (20.83, 16.5, 11.5, 20.75))

    def test_figures_match_a_plain_computation_on_generated_data(self):
        gen = tempfile.mkdtemp(prefix="survey-gen-")
        self.addCleanup(shutil.rmtree, gen)
        subprocess.run([sys.executable, GEN, "--employers", "12", "--rows", "3000", "--seed",
                        "7", "--out", gen], check=True, timeout=60)
        inputs, pooled = {}, {}
        for i in range(1, 13):
            with open(os.path.join(gen, f"employer-{i}.csv")) as f:
                text = f.read()
            inputs[f"employer-{i}"] = text
            for line in text.splitlines()[1:]:
                level, gender, salary = line.split(",")
                e = pooled.setdefault((level, gender), ([], set()))
                e[0].append(int(salary))
                e[1].add(i)
        outcome = run_ok(self, inputs, manifest(list(inputs), {"k": 5})).outcome()
        self.assertEqual(len(outcome["groups"]), len(pooled))
        suppressed = 0
        for (level, gender), (values, employers) in pooled.items():
            g = group(outcome, level, gender)
            if len(employers) < 5:
                self.assertEqual(g, {"level": level, "gender": gender, "suppressed": True})
                suppressed += 1
                continue
            q = statistics.quantiles(values, n=4, method="inclusive")
            self.assertEqual(g["employers"], len(employers))
            self.assertEqual(g["employees"], len(values))
            self.assertAlmostEqual(g["mean"], statistics.mean(values), delta=0.005)
            self.assertAlmostEqual(g["median"], statistics.median(values), delta=0.005)
            self.assertAlmostEqual(g["q1"], q[0], delta=0.005)
            self.assertAlmostEqual(g["q3"], q[2], delta=0.005)
        # L6 exists only at employers 1, 4, 7, 10: four employers, under k = 5.
        self.assertEqual(suppressed, 3)


class SuppressionTest(unittest.TestCase):
    def test_groups_under_k_employers_carry_no_figures(self):
        outcome = run_ok(self, HAND, manifest(list(HAND), {"k": 3})).outcome()
        for level, gender in (("L2", "F"), ("L2", "M"), ("L2", "X")):
            self.assertEqual(group(outcome, level, gender),
                             {"level": level, "gender": gender, "suppressed": True})
        # No totals that would give a suppressed group's size away by subtraction.
        self.assertEqual(set(outcome), {"computation", "employers", "k", "groups"})

    def test_k_two_publishes_a_two_employer_group(self):
        outcome = run_ok(self, HAND, manifest(list(HAND), {"k": 2})).outcome()
        # L2 F: employer-a 800, employer-c 900.
        self.assertEqual(group(outcome, "L2", "F"), {
            "level": "L2", "gender": "F", "suppressed": False, "employers": 2, "employees": 2,
            "mean": 850.0, "median": 850.0, "q1": 825.0, "q3": 875.0})
        self.assertTrue(group(outcome, "L2", "M")["suppressed"])
        self.assertTrue(group(outcome, "L2", "X")["suppressed"])

    def test_many_employees_of_one_employer_do_not_count_as_employers(self):
        inputs = {"big": "job_level,gender,salary\n" + "L1,F,1000\n" * 500,
                  "small": "job_level,gender,salary\nL1,F,2000\nL2,M,5\n",
                  "other": "job_level,gender,salary\nL2,M,6\n"}
        outcome = run_ok(self, inputs, manifest(list(inputs), {"k": 3})).outcome()
        self.assertTrue(group(outcome, "L1", "F")["suppressed"])

    def test_k_above_the_employers_suppresses_everything_and_every_rank(self):
        layout = run_ok(self, HAND, manifest(list(HAND), {"k": 4}))
        self.assertTrue(all(g["suppressed"] for g in layout.outcome()["groups"]))
        for party in HAND:
            report = layout.private(party)
            self.assertIsNone(report["percentile_rank"])
            self.assertEqual(report["note"], "fewer than k employers have a gap: no rank")
            self.assertIsNotNone(report["pay_gap"])  # its own gap is its own business


class PrivateOutputTest(unittest.TestCase):
    def test_each_employer_gets_its_gap_and_rank(self):
        layout = run_ok(self, HAND, manifest(list(HAND)))
        self.assertEqual(sorted(layout.files()),
                         ["outcome.json", "private/employer-a/pay-gap",
                          "private/employer-b/pay-gap", "private/employer-c/pay-gap"])
        a, b, c = (layout.private(p) for p in HAND)
        # a: L1 F median 150, M 300: gap 0.5 (headcount 3); L2 F 800, M 1000: 0.2 (headcount 2);
        # weighted (0.5 * 3 + 0.2 * 2) / 5 = 0.38.
        self.assertEqual(a, {
            "employer": "employer-a", "pay_gap": 0.38, "percentile_rank": 83.3,
            "employers": 3, "employers_with_gap": 3, "k": 3, "note": None,
            "levels": [
                {"level": "L1", "median_f": 150.0, "median_m": 300.0, "gap": 0.5, "headcount": 3},
                {"level": "L2", "median_f": 800.0, "median_m": 1000.0, "gap": 0.2,
                 "headcount": 2}]})
        # b: L1 F 300, M median 450: 1/3. c: L1 F 400, M 600: 1/3; L2 has no M. Tied below a:
        # each ranks (0 below + half of 2 equal) / 3 = 33.3.
        self.assertEqual((b["pay_gap"], b["percentile_rank"]), (0.3333, 33.3))
        self.assertEqual((c["pay_gap"], c["percentile_rank"]), (0.3333, 33.3))
        self.assertEqual([l["level"] for l in c["levels"]], ["L1"])

    def test_output_only_for_named_readers(self):
        layout = run_ok(self, HAND, manifest(list(HAND), outputs=[
            {"name": "pay-gap", "reader": "employer-b"}]))
        self.assertEqual(sorted(layout.files()), ["outcome.json", "private/employer-b/pay-gap"])
        self.assertEqual(layout.private("employer-b")["employer"], "employer-b")

    def test_no_outputs_declared_no_private_files(self):
        layout = run_ok(self, HAND, manifest(list(HAND), outputs=[]))
        self.assertEqual(sorted(layout.files()), ["outcome.json"])

    def test_an_employer_without_both_genders_at_a_level_has_no_gap(self):
        inputs = dict(HAND)
        inputs["employer-d"] = "job_level,gender,salary\nL1,F,100\nL2,M,200\nL1,X,300\n"
        layout = run_ok(self, inputs, manifest(list(inputs)))
        d = layout.private("employer-d")
        self.assertIsNone(d["pay_gap"])
        self.assertIsNone(d["percentile_rank"])
        self.assertEqual(d["levels"], [])
        self.assertIn("no job level with both F and M", d["note"])
        # The others are ranked among the three employers that have a gap.
        self.assertEqual(layout.private("employer-a")["employers_with_gap"], 3)
        self.assertEqual(layout.private("employer-a")["employers"], 4)


def with_b(text):
    inputs = dict(HAND)
    inputs["employer-b"] = text
    return inputs


H = "job_level,gender,salary\n"
# (name, inputs, expected error). Every failing file holds the salary 987654 somewhere.
INPUT_FAILURES = [
    ("empty file", with_b(""),
     "employer-b: line 1: the file is empty; the header 'job_level,gender,salary' is required"),
    ("only blank lines", with_b("\n\n"),
     "employer-b: line 1: the file is empty; the header 'job_level,gender,salary' is required"),
    ("no header", with_b("L1,F,987654\nL1,M,5\n"),
     "employer-b: line 1: the header must be 'job_level,gender,salary'"),
    ("header in another order", with_b("gender,job_level,salary\nF,L1,987654\n"),
     "employer-b: line 1: the header must be 'job_level,gender,salary'"),
    ("header only", with_b(H), "employer-b: no rows after the header"),
    ("two fields", with_b(H + "L1,F,5\nL1,987654\n"),
     "employer-b: line 3: expected 3 fields (job_level,gender,salary), found 2"),
    ("four fields", with_b(H + "L1,F,987654,1\n"),
     "employer-b: line 2: expected 3 fields (job_level,gender,salary), found 4"),
    ("thousands separator", with_b(H + "L1,F,987,654\n"),
     "employer-b: line 2: expected 3 fields (job_level,gender,salary), found 4"),
    ("level with a space", with_b(H + "L 1,F,987654\n"),
     "employer-b: line 2: job_level must be 1-32 letters, digits, '.', '_' or '-', starting "
     "with a letter or digit"),
    ("empty level", with_b(H + ",F,987654\n"), "employer-b: line 2: job_level must be"),
    ("level too long", with_b(H + "L" * 33 + ",F,987654\n"), "employer-b: line 2: job_level must be"),
    ("level starting with a dot", with_b(H + ".L1,F,987654\n"), "employer-b: line 2: job_level must be"),
    ("unknown gender", with_b(H + "L1,W,987654\n"), "employer-b: line 2: gender must be F, M or X"),
    ("empty gender", with_b(H + "L1,,987654\n"), "employer-b: line 2: gender must be F, M or X"),
    ("zero salary", with_b(H + "L1,F,987654\nL1,F,0\n"),
     "employer-b: line 3: salary must be a whole number from 1 to 999999999 (digits only)"),
    ("negative salary", with_b(H + "L1,F,-987654\n"), "employer-b: line 2: salary must be"),
    ("decimal salary", with_b(H + "L1,F,987654.50\n"), "employer-b: line 2: salary must be"),
    ("leading zero", with_b(H + "L1,F,0987654\n"), "employer-b: line 2: salary must be"),
    ("salary too large", with_b(H + "L1,F,9876540000\n"), "employer-b: line 2: salary must be"),
    ("salary with a currency sign", with_b(H + "L1,F,$987654\n"), "employer-b: line 2: salary must be"),
    ("empty salary", with_b(H + "L1,F,987654\nL1,F,\n"), "employer-b: line 3: salary must be"),
    ("NUL in a salary", with_b(H + "L1,F,9876\x0054\n"), "employer-b: line 2: salary must be"),
    ("exponent", with_b(H + "L1,F,9.87654e5\n"), "employer-b: line 2: salary must be"),
    ("line numbers count blank lines", with_b("\n" + H + "L1,F,5\n\n\nL1,F,x987654\n"),
     "employer-b: line 6: salary must be"),
    ("not UTF-8", with_b(H.encode() + b"L1,F,987654\nL\xff1,M,5\n"),
     "employer-b: line 3: not UTF-8 text"),
    ("quotes", with_b(H + 'L1,F,987654\n"L1",M,5\n'), "employer-b: line 3: quotes are not accepted"),
    ("carriage return inside a line", with_b(H + "L1,F\r,987654\n"),
     "employer-b: line 2: not a CSV record (a carriage return inside the line?)"),
    ("the first bad file in manifest order is named", {
        "employer-a": "nope\n", "employer-b": H + "L1,Q,987654\n", "employer-c": HAND["employer-c"]},
     "employer-a: line 1: the header must be 'job_level,gender,salary'"),
    ("too many levels", with_b(H + "".join(f"L{i},F,{1000 + i}\n" for i in range(501))),
     "employer-b: more than 500 distinct job levels (levels are a scale all employers share)"),
    ("too many levels, lenient form", with_b(H + "".join(f" L{i},f,{1000 + i}\n"
                                                        for i in range(501))),
     "employer-b: more than 500 distinct job levels"),
    ("an input is missing", {"employer-a": HAND["employer-a"], "employer-b": H + "L1,F,987654\n"},
     "employer-c: cannot read its input (No such file or directory)"),
]

MANIFEST_FAILURES = [
    ("k zero", manifest(list(HAND), {"k": 0}),
     "manifest: app.parameters.k must be an integer from 1 to 1000"),
    ("k a string", manifest(list(HAND), {"k": "3"}),
     "manifest: app.parameters.k must be an integer from 1 to 1000"),
    ("k a boolean", manifest(list(HAND), {"k": True}),
     "manifest: app.parameters.k must be an integer from 1 to 1000"),
    ("k a float", manifest(list(HAND), {"k": 3.5}),
     "manifest: app.parameters.k must be an integer from 1 to 1000"),
    ("unknown parameter", manifest(list(HAND), {"k": 3, "kk": 1}),
     "manifest: app.parameters has unknown field 'kk'"),
    ("parameters not an object", manifest(list(HAND), [3]),
     "manifest: app.parameters is not an object"),
    ("another output name", manifest(list(HAND), outputs=[{"name": "ranks", "reader": "*"}]),
     "manifest: app.outputs declares 'ranks'; this app writes only 'pay-gap'"),
    ("a reader that is no party", manifest(list(HAND), outputs=[
        {"name": "pay-gap", "reader": "auditor"}]),
     "manifest: app.outputs names a reader that is not a party"),
    ("party id ..", manifest(["employer-a", ".."]), "manifest: a party id is missing or invalid"),
    ("party listed twice", manifest(["employer-a", "employer-b", "employer-a"]),
     "manifest: party employer-a is listed twice"),
    ("no app section", {"computation": "salary-survey", "parties": [{"id": "employer-a"}]},
     "manifest: the app section is missing"),
    ("not JSON", "{", "manifest: not UTF-8 JSON"),
]


class FailureTest(unittest.TestCase):
    def check_fails(self, inputs, manifest_value, expected):
        layout = Layout(self, inputs, manifest_value)
        self.assertEqual(layout.run(), 1)
        error = layout.error()
        self.assertTrue(error.startswith(expected), f"{error!r} does not start with {expected!r}")
        self.assertNotIn("987654", error)
        self.assertNotIn("9876", error)
        self.assertLessEqual(len(error), 512)
        self.assertTrue(all(" " <= ch <= "~" for ch in error))
        # Fails closed: nothing but the error.
        self.assertEqual(sorted(layout.files()), ["error"])

    def test_malformed_inputs(self):
        for name, inputs, expected in INPUT_FAILURES:
            with self.subTest(name):
                self.check_fails(inputs, manifest(["employer-a", "employer-b", "employer-c"]),
                                 expected)

    def test_malformed_manifests(self):
        for name, manifest_value, expected in MANIFEST_FAILURES:
            with self.subTest(name):
                self.check_fails(HAND, manifest_value, expected)

    def test_unset_environment(self):
        r = subprocess.run([APP], env={}, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 1)


class OutcomeSizeTest(unittest.TestCase):
    def test_an_outcome_over_1_mib_fails_the_run(self):
        # 30 employers, each with 700 (level, gender) groups of its own (within the 500 levels
        # an employer may have): 21,000 suppressed groups of ~70 bytes, over 1 MiB.
        inputs = {}
        for p in range(30):
            rows = "".join(f"{p:02d}{'L' * 28}{i:02d},{g},5\n" for i in range(100)
                           for g in "FMX")
            rows += "".join(f"{p:02d}{'M' * 27}{i:03d},F,5\n" for i in range(100, 500))
            inputs[f"p{p}"] = H + rows
        layout = Layout(self, inputs, manifest(list(inputs)))
        self.assertEqual(layout.run(), 1)
        self.assertEqual(layout.error(), "the outcome would exceed 1 MiB: too many (job level, "
                         "gender) groups across the employers")
        self.assertEqual(sorted(layout.files()), ["error"])


class LenientFormsTest(unittest.TestCase):
    def test_accepted_variants_give_the_same_results(self):
        base = run_ok(self, HAND, manifest(list(HAND)))
        variant = dict(HAND)
        variant["employer-a"] = ("\ufeffJOB_LEVEL, Gender ,salary\r\n\r\n L1 ,f,100\r\nL1,F,\t200\r\n"
                                 "\nL1,m,300\r\nL2,M,1000\r\nL2,F,800")  # no final newline
        variant["employer-b"] = "\n\njob_level,gender,salary\nL1,F,300\n\nL1,M,400\nL1,M,500\n\n"
        other = run_ok(self, variant, manifest(list(HAND)))
        self.assertEqual(base.files(), other.files())


class DeterminismTest(unittest.TestCase):
    def generate(self, seed, employers=5, rows=400):
        out = tempfile.mkdtemp(prefix="survey-gen-")
        self.addCleanup(shutil.rmtree, out)
        subprocess.run([sys.executable, GEN, "--employers", str(employers), "--rows", str(rows),
                        "--seed", str(seed), "--out", out], check=True, timeout=60)
        data = {}
        for name in sorted(os.listdir(out)):
            with open(os.path.join(out, name), "rb") as f:
                data[name] = f.read()
        return data

    def test_generator_is_deterministic(self):
        first = self.generate(3)
        self.assertEqual(sorted(first), [f"employer-{i}.csv" for i in range(1, 6)])
        self.assertEqual(first, self.generate(3))
        self.assertNotEqual(first, self.generate(4))
        lines = first["employer-1.csv"].decode().split("\n")
        self.assertEqual(lines[0], "job_level,gender,salary")
        self.assertEqual(len(lines), 1 + 400 + 1)  # header, rows, final newline

    def test_same_inputs_same_bytes_whatever_the_party_order(self):
        data = self.generate(5)
        inputs = {name[:-4]: text for name, text in data.items()}
        first = run_ok(self, inputs, manifest(list(inputs)))
        second = run_ok(self, inputs, manifest(list(inputs)))
        reordered = run_ok(self, inputs, manifest(list(reversed(list(inputs)))))
        self.assertEqual(first.files(), second.files())
        self.assertEqual(first.files(), reordered.files())
        # With five generated employers and k = 3, L6 (at employers 1 and 4 only) is suppressed.
        outcome = first.outcome()
        self.assertTrue(all(g["suppressed"] for g in outcome["groups"] if g["level"] == "L6"))
        self.assertTrue(any(not g["suppressed"] for g in outcome["groups"]))


class LayoutTest(unittest.TestCase):
    def test_runs_with_read_only_inputs_and_writes_only_outputs(self):
        layout = run_ok(self, HAND, manifest(list(HAND)))
        self.assertEqual(os.listdir(layout.scratch), [])
        self.assertEqual(sorted(os.listdir(layout.inputs)), sorted(HAND))
        mode = os.stat(layout.inputs).st_mode
        self.assertFalse(mode & stat.S_IWUSR)

    def test_the_interpreter_line_names_debians_python(self):
        with open(APP) as f:
            self.assertEqual(f.readline(), "#!/usr/bin/python3.11 -IBS\n")
        self.assertTrue(os.access(APP, os.X_OK))


if __name__ == "__main__":
    unittest.main(verbosity=1)
