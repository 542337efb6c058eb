#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Host side of the np guest run's fault tests (tests/guest/run.sh).

Follows the guest's serial log and, for each line

    NP-GUEST-QMP inject <id> <fault>     qom-set <id> inject-fault <fault>
    NP-GUEST-QMP device_del <id>         device_del <id>

sends the command to QEMU's QMP socket (<id> is an np-card's -device id).
The guest cannot read the answer; it learns of the effect from the card
(a fault strikes where it names, a removed card leaves sysfs). Each
command and QEMU's answer are logged on stderr. Exits when QEMU closes the
socket or the log holds the result line.

    qmp-helper.py QMP_SOCKET SERIAL_LOG
"""
import json
import socket
import sys
import time

MARK = "NP-GUEST-QMP "


def log(msg):
    print(f"np-guest: qmp: {msg}", file=sys.stderr, flush=True)


class Qmp:
    def __init__(self, path):
        deadline = time.monotonic() + 60
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.buf = b""
        self.read()  # greeting
        self.call("qmp_capabilities")

    def read(self):
        """The next message that is not an event."""
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("QEMU closed the QMP socket")
                self.buf += data
            line, self.buf = self.buf.split(b"\n", 1)
            msg = json.loads(line)
            if "event" in msg:
                log(f"event {msg['event']} {msg.get('data', {})}")
                continue
            return msg

    def call(self, cmd, **args):
        req = {"execute": cmd}
        if args:
            req["arguments"] = args
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        return self.read()


def command(qmp, words):
    if len(words) == 3 and words[0] == "inject":
        return qmp.call("qom-set", path=f"/machine/peripheral/{words[1]}",
                        property="inject-fault", value=words[2])
    if len(words) == 2 and words[0] == "device_del":
        return qmp.call("device_del", id=words[1])
    return {"error": {"desc": "not a command of this helper"}}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    qmp = Qmp(sys.argv[1])
    with open(sys.argv[2], "rb") as serial:
        pending = b""
        while True:
            data = serial.read()
            if not data:
                time.sleep(0.02)
                continue
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace").strip("\r")
                if line.startswith("NP-GUEST-RESULT:"):
                    return
                at = line.find(MARK)
                if at < 0:
                    continue
                words = line[at + len(MARK):].split()
                answer = command(qmp, words)
                log(f"{' '.join(words)} -> "
                    f"{answer.get('error', {}).get('desc', 'ok')}")


if __name__ == "__main__":
    try:
        main()
    except (EOFError, ConnectionError) as e:
        log(str(e))
    except OSError as e:
        log(f"cannot talk to QEMU: {e}")
        sys.exit(1)
