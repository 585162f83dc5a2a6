"""A ROS node under test in its own process (``python -m MODULE --ros-args --params-file
config/X.yaml -p ... -r ...``), its output collected line by line for assertions."""
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class NodeProcess:
    def __init__(self, module: str, config: str, params: dict, remaps: dict | None = None):
        args = [sys.executable, "-m", module, "--ros-args", "--params-file", str(REPO / "config" / config)]
        for old, new in (remaps or {}).items():
            args += ["-r", f"{old}:={new}"]
        for k, v in params.items():
            args += ["-p", f"{k}:={v}"]
        self.lines: list[str] = []
        self.proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for_log(self, text, timeout=5.0, after=0):
        """Wait until a line from index ``after`` on contains ``text``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in line for line in self.lines[after:]):
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged:\n{self.log()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        return self.proc.returncode
