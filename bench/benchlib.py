"""Shared helpers for bench/run and bench/memory: build cinnabar-server, start it and a real
redis-server side by side on free loopback ports, read their CPU time and memory from /proc, and
always stop them again (normal exit, error, Ctrl-C or SIGTERM)."""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")  # what `getconf CLK_TCK` prints
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

_servers = []


def server_group_options():
    """How a server process is detached from the terminal, for subprocess.Popen.

    A process group of its own, so that a Ctrl-C in the terminal reaches only the bench script,
    which then stops the servers in order. Not a session of its own: with the kernel's
    scheduler autogroups (`/proc/sys/kernel/sched_autogroup_enabled`, on by default) every
    session is one scheduling group, and a loaded machine splits its CPU time evenly between
    groups, not between threads. A server in a session of its own would be held to half of
    this 2-core machine while the load generator (in the script's session) is busy: no cost to
    a single-threaded redis-server, which never uses more than one core, but a cap on a
    multi-threaded server that no real deployment (clients on other machines) has. Setting
    CINNABAR_BENCH_OWN_SESSION=1 restores the separate sessions, to compare.
    """
    if os.environ.get("CINNABAR_BENCH_OWN_SESSION") == "1":
        return {"start_new_session": True}
    return {"process_group": 0}


def log(message):
    print(message, file=sys.stderr, flush=True)


def die(message):
    log(f"error: {message}")
    sys.exit(1)


def _on_signal(number, _frame):
    # Turned into an exception so `finally` blocks and atexit run and the servers are stopped.
    raise KeyboardInterrupt(f"signal {number}")


def install_cleanup():
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    atexit.register(stop_all)


def stop_all():
    while _servers:
        _servers.pop().stop()


def git_description():
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_cinnabar(binary=None, build=True):
    """Builds cinnabar-server in release mode (honouring CARGO_TARGET_DIR) and returns its path."""
    if binary:
        if not os.access(binary, os.X_OK):
            die(f"{binary} is not an executable")
        return binary
    metadata = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                              cwd=REPO, capture_output=True, text=True, check=True)
    target = json.loads(metadata.stdout)["target_directory"]
    if build:
        log("building cinnabar-server (release)...")
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "cinnabar-server"],
                       cwd=REPO, check=True)
    path = os.path.join(target, "release", "cinnabar-server")
    if not os.access(path, os.X_OK):
        die(f"{path} not found (build it or pass --cinnabar)")
    return path


def reference_binary(explicit=None):
    path = explicit or os.environ.get("CINNABAR_REFERENCE_SERVER") or shutil.which("redis-server")
    if not path or not os.access(path, os.X_OK):
        die("redis-server not found (apt-get install redis-server, or set CINNABAR_REFERENCE_SERVER)")
    return path


def require_tool(name):
    path = shutil.which(name)
    if not path:
        die(f"{name} not found (apt-get install redis-tools)")
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One server process on a free loopback port, with persistence off."""

    def __init__(self, name, binary, extra=()):
        self.name = name
        self.binary = binary
        self.extra = list(extra)
        self.process = None
        self.port = None
        self.directory = tempfile.mkdtemp(prefix=f"cinnabar-bench-{name}-")

    def start(self, timeout_s=20.0):
        for _attempt in range(5):
            self.port = free_port()
            arguments = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                         "--save", "", "--appendonly", "no", "--dir", self.directory,
                         *self.extra]
            log_file = open(os.path.join(self.directory, "server.log"), "wb")
            self.process = subprocess.Popen(arguments, stdout=log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, **server_group_options())
            log_file.close()
            _servers.append(self)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    if self.command("PING") == b"+PONG\r\n":
                        # Still alive a moment later: the PONG came from this process, not from
                        # another server that took the port first (ours would exit on bind).
                        time.sleep(0.1)
                        if self.process.poll() is None:
                            return self
                        break
                except OSError:
                    pass
                time.sleep(0.02)
            self.stop()
        with open(os.path.join(self.directory, "server.log"), "rb") as handle:
            tail = handle.read()[-2000:].decode(errors="replace")
        die(f"{self.name} did not start: {' '.join(arguments)}\n{tail}")

    def command(self, *words, timeout_s=5.0):
        """Sends one command and returns its raw reply (first read only; for short replies)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s) as sock:
            sock.sendall(encode(words))
            return sock.recv(65536)

    def info_field(self, section, field):
        """A field of INFO <section> as text, or None when the server does not report it."""
        try:
            reply = read_reply_bytes(self.port, encode(["INFO", section]))
        except OSError:
            return None
        for line in reply.split(b"\r\n"):
            if line.startswith(field.encode() + b":"):
                return line.split(b":", 1)[1].decode()
        return None

    def cpu_ticks(self):
        """utime + stime of the whole process (every thread), in clock ticks."""
        with open(f"/proc/{self.process.pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        # After the command name: state is field 3, so utime (14) and stime (15) are 11 and 12.
        return int(fields[11]) + int(fields[12])

    def rss_bytes(self):
        with open(f"/proc/{self.process.pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return None

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self in _servers:
            _servers.remove(self)
        shutil.rmtree(self.directory, ignore_errors=True)


def encode(words):
    out = [b"*%d\r\n" % len(words)]
    for word in words:
        if isinstance(word, str):
            word = word.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(word), word))
    return b"".join(out)


def read_reply_bytes(port, request, timeout_s=10.0):
    """Sends `request` and reads one bulk-or-line reply completely."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        header, rest = data.split(b"\r\n", 1)
        if header.startswith(b"$") and int(header[1:]) >= 0:
            needed = int(header[1:]) + 2
            while len(rest) < needed:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            return rest[:needed - 2]
        return header


def load_average():
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "?"


def write_results(text, name):
    directory = os.path.join(REPO, "bench", "results")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w") as handle:
        handle.write(text)
    return path
