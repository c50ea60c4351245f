#!/usr/bin/env python3
"""Runs the README's three journeys as printed (issue 19, item 4).

Every ```sh block preceded by `<!-- journey: NAME STEP -->` is a block to run. Each journey
(auditor, operator, party) gets one fresh `bash -e` shell that lives for the whole test, so its
variables carry from block to block as in a terminal; the blocks run in the order of their STEP,
then of their place in the README (the parties wait for the operator's image before they grant,
the operator for their inputs before it runs). All shells share one scratch directory, HOME and
the checkout beside it as `cloister/` (the README's "beside your checkout"), the way files are
handed from one party to the other. PATH holds only the commands `cmake --install` put in a
temporary prefix, as the README's "On PATH" installs them.

Runs in a private network namespace (so the README's fixed ports, cloister-kms on 4000 and the
proxy on 8000, are free whatever else runs here), with a private vsock directory and enclave run
directory. At the end every process the shells started is stopped (their process groups, then
`cloister terminate-enclave --all`). Needs root (run-enclave); exits 77 (skipped) otherwise.

  readme_journeys_test.py CMAKE BUILD_DIR SOURCE_DIR
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
BLOCK_TIMEOUT = 120  # seconds for one block (build-enclave and run-enclave are the slow ones)
TOTAL_TIMEOUT = 240
MARK = re.compile(r"^<!-- journey: (auditor|operator|party) (\d+) -->\s*$")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def blocks(readme):
    """Returns [(step, position, journey, text)] of the marked ```sh blocks."""
    lines = open(readme, encoding="utf-8").read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = MARK.match(lines[i])
        i += 1
        if not m:
            continue
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines) or lines[i].strip() != "```sh":
            fail(f"README line {i}: a journey mark not followed by a ```sh block")
        i += 1
        start = i
        while i < len(lines) and lines[i].strip() != "```":
            i += 1
        out.append((int(m.group(2)), start, m.group(1), "\n".join(lines[start:i]) + "\n"))
    return sorted(out)


def main():
    if len(sys.argv) != 4:
        fail(__doc__)
    cmake, build, src = (os.path.abspath(a) for a in sys.argv[1:])
    if os.geteuid() != 0:
        print("SKIPPED: the operator's journey runs run-enclave, which needs root")
        sys.exit(SKIP)
    if os.environ.get("CLOISTER_JOURNEY_NETNS") != "1":
        # A private network namespace: the README's fixed ports are ours alone.
        env = dict(os.environ, CLOISTER_JOURNEY_NETNS="1")
        os.execvpe("unshare", ["unshare", "--net", "--", sys.executable] + sys.argv, env)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    found = blocks(os.path.join(src, "README.md"))
    journeys = sorted({j for _, _, j, _ in found})
    if journeys != ["auditor", "operator", "party"]:
        fail(f"README marks journeys {journeys}, expected auditor, operator and party")

    tmp = tempfile.mkdtemp(prefix="cloister-readme-")
    os.chmod(tmp, 0o700)
    prefix, work, home, logs = (os.path.join(tmp, d) for d in ("prefix", "work", "home", "logs"))
    for d in (work, home, logs, os.path.join(tmp, "xdg-run"), os.path.join(tmp, "blocks")):
        os.makedirs(d, mode=0o700)
    r = subprocess.run([cmake, "--install", build, "--prefix", prefix], capture_output=True,
                       text=True)
    if r.returncode != 0:
        fail("cmake --install: " + r.stdout + r.stderr)
    os.symlink(src, os.path.join(work, "cloister"))
    env = {
        "PATH": os.path.join(prefix, "bin") + ":/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": home,
        "XDG_RUNTIME_DIR": os.path.join(tmp, "xdg-run"),
        "CLOISTER_ENCLAVE_RUN_DIR": os.path.join(tmp, "run"),
        "LANG": "C.UTF-8",
        "TMPDIR": tmp,
    }

    shells = {}
    failed = None
    deadline = time.monotonic() + TOTAL_TIMEOUT
    try:
        for j in journeys:
            log = open(os.path.join(logs, j + ".log"), "w")
            shells[j] = (subprocess.Popen(["bash", "-e", "-s"], stdin=subprocess.PIPE, cwd=work,
                                          env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True, text=True), log)
        for n, (step, line, j, text) in enumerate(found):
            path = os.path.join(tmp, "blocks", f"{n:02d}-{j}.sh")
            done = path + ".done"
            with open(path, "w") as f:
                f.write(text)
            shell, log = shells[j]
            started = time.monotonic()
            print(f"[{j} {step}] README line {line}: {text.splitlines()[0]}", flush=True)
            try:
                shell.stdin.write(f"source {path}\ntouch {done}\n")
                shell.stdin.flush()
            except BrokenPipeError:
                pass
            while not os.path.exists(done):
                if shell.poll() is not None:
                    failed = (f"the {j} journey's shell stopped (exit {shell.returncode}) in the "
                              f"block at README line {line}:\n{text}")
                    break
                if time.monotonic() - started > BLOCK_TIMEOUT or time.monotonic() > deadline:
                    failed = f"the block at README line {line} ({j}) took too long:\n{text}"
                    break
                time.sleep(0.05)
            if failed:
                break
            print(f"    ok in {time.monotonic() - started:.1f} s", flush=True)
    finally:
        for j, (shell, log) in shells.items():
            try:
                shell.stdin.close()
            except OSError:
                pass
        for j, (shell, log) in shells.items():
            try:
                shell.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            # Background servers the README started (cloister-kms, cloister-proxy) stay in the
            # shell's process group.
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(shell.pid, sig)
                except ProcessLookupError:
                    break
                time.sleep(1)
            log.close()
        subprocess.run([os.path.join(prefix, "bin", "cloister"), "terminate-enclave", "--all"],
                       env=env, capture_output=True)
        # What each journey printed (ctest keeps it): the reader sees what the README promises.
        for j in journeys:
            text = open(os.path.join(logs, j + ".log"), errors="replace").read()
            print(f"--- {j} journey output (last 6000 characters) ---\n{text[-6000:]}",
                  file=sys.stderr if failed else sys.stdout)
        shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        fail(failed)
    print(f"the README's journeys ran as printed: {len(found)} blocks")


if __name__ == "__main__":
    main()
