"""The security review's crash probe, repeated against a running server (not part of CI).

Sends guest scripts at the script size limit that once overflowed the stack or asked for
unbounded memory, checks each gets an answer, and that /api/health still answers after it.
Reports status, seconds and the server's resident memory (when --pid is given).

    python3 tests/probe/crash_probe.py --url http://127.0.0.1:8080 --pid $(pgrep -f 'skjold serve')
"""
import argparse
import json
import time
import urllib.request

LIMIT = 256 * 1024
PREFIX = "require demo:1 as db\ncreate-dataset p\nimport db/BEFOLKNING_KJOENN as sex\n"


def scripts():
    room = LIMIT - 200 - len(PREFIX)
    yield "100 000 nested parentheses", PREFIX + "tabulate sex if " + "(" * 100_000 + "1" + ")" * 100_000 + "\n"
    yield "256 KiB chain of +1", PREFIX + "generate x = 1" + "+1" * (room // 2 - 20) + "\n"
    yield "256 KiB chain of ^2", PREFIX + "generate x = 2" + "^2" * (room // 2 - 20) + "\n"
    yield "256 KiB of unary minus", PREFIX + "generate x = " + "-" * (room - 20) + "1\n"
    yield "a call with 130 000 arguments", PREFIX + "generate x = rowtotal(1" + ",1" * (room // 2 - 30) + ")\n"
    yield "21 000 nested for loops", PREFIX + "for i in 1\n" * (room // 12)
    yield "40 doubling let bindings", "let a = x\n" + "let a = $a ++ $a\n" * 40 + "help\n"
    yield "empty loops of 9000^3 steps", "for a in 1 : 9000\nfor b in 1 : 9000\nfor c in 1 : 9000\nend\nend\nend\n"


def rss_mib(pid):
    if not pid:
        return None
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--pid", type=int)
    parser.add_argument("--guests", type=int, default=0, help="fresh guests that fill a workspace")
    parser.add_argument("--columns", type=int, default=40, help="columns each guest imports")
    args = parser.parse_args()
    failures = 0
    for what, script in scripts():
        body = json.dumps({"script": script}).encode()
        request = urllib.request.Request(
            args.url + "/api/run", data=body, headers={"content-type": "application/json"}
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                answer = json.load(response)
                status = response.status
        except urllib.error.HTTPError as e:
            status, answer = e.code, json.load(e)
        seconds = time.monotonic() - started
        outputs = answer.get("outputs", [])
        first = next((o.get("message", "") for o in outputs if o.get("kind") == "error"), answer.get("error", ""))
        with urllib.request.urlopen(args.url + "/api/health", timeout=10) as health:
            alive = health.status == 200
        ok = alive and status in (200, 400) and all(o.get("kind") == "error" for o in outputs)
        failures += not ok
        memory = rss_mib(args.pid)
        print(f"{what:32} {len(body):7} B  HTTP {status}  {seconds:6.3f} s  "
              f"health {'ok' if alive else 'DOWN'}  rss {memory and round(memory)} MiB  {first[:70]}")
    # Guests who each drop the cookie and fill a workspace: memory must stop growing at the
    # guests' total budget (guest_workspaces_total_mb), not grow by a workspace per guest.
    imports = "".join(f"import db/INNTEKT_WLONN 2021-12-31 as w{i}\n" for i in range(args.columns))
    script = "require demo:1 as db\ncreate-dataset p\nimport db/BEFOLKNING_KJOENN as sex\n" + imports
    for guest in range(args.guests):
        request = urllib.request.Request(
            args.url + "/api/run",
            data=json.dumps({"script": script}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            answer = json.load(response)
        errors = [o["message"] for o in answer["outputs"] if o["kind"] == "error"]
        if guest % 5 == 4 or errors:
            print(f"guest {guest + 1:3}: rss {rss_mib(args.pid) and round(rss_mib(args.pid))} MiB {errors[:1]}")
    print(f"{8 - failures} passed, {failures} failed")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
