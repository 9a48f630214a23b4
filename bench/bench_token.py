"""Sign on a SoftHSM2 token four ways, side by side in one run:

- direct: python-pkcs11 calling libsofthsm2.so in the caller's process;
- p11-kit: the same token remoted by ``p11-kit server`` (callers load p11-kit-client.so);
- authd unary: ``authd.v1.TokenService/Sign`` over gRPC (insecure dev mode on loopback), one call
  per signature, loaded by h2load (a native client, as p11-kit's client is native code);
- authd stream: ``SignStream``, each caller's call carrying 32 signatures (h2load posts them as
  one request stream); and, for comparison, unary ``Sign`` from a Python gRPC client.

ECDSA P-256 (CKM_ECDSA over a SHA-256 digest) and RSA-2048 (CKM_RSA_PKCS over a SHA-256
DigestInfo - the mechanisms authd uses), at 1 and N concurrent callers. direct and p11-kit
callers are processes of their own (SoftHSM2 initialized by python-pkcs11 is single-threaded
per process); an authd caller is one connection with one call in flight. Every run is repeated
(``--repeat``): the median is printed with the spread, the CPU of the server (authd or p11-kit
server) and of the callers in cores, and the 1-minute load average. h2load counts gRPC errors
as successes, so authd's figures count only the calls the server answered OK (its metrics).
Run: ``python -m bench token [--seconds S] [--callers N] [--repeat R] [--front python|native]``
(``native``: authd-front serves the port and forwards every token call to the daemon).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import h2load  # noqa: E402
from bench.common import (  # noqa: E402
    load1,
    median_and_spread,
    proc_cpu_seconds,
    table,
    tree_cpu_seconds,
)

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
CLIENT_MODULES = (
    "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
    "/usr/lib/pkcs11/p11-kit-client.so",
)
LABEL = "bench-token"
PIN = "123456"
EC_ID = b"\xec\x01"
RSA_ID = b"\x45\x01"
DIGEST = hashlib.sha256(b"bench").digest()
DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420") + DIGEST
CKM_RSA_PKCS = 0x1
CKM_ECDSA = 0x1041
STREAM_FRAMES = 32  # signatures carried by one SignStream call
LEND_SIGNS = 8  # unary Signs that lend the login to authd-front first ([token] lend_after_signs: 4)


# ------------------------------------------------------------------------- workers


def _pkcs11_worker(module: str, key_id: bytes, seconds: float, start: Any, out: Any) -> None:
    try:
        _pkcs11_signer(module, key_id, seconds, start, out)
    except Exception as exc:  # say so instead of leaving the run waiting for this caller
        print(f"caller failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        out.put(None)  # counted as a failed caller, not as 0 signatures


START_ATTEMPTS = 50


def _pkcs11_signer(module: str, key_id: bytes, seconds: float, start: Any, out: Any) -> None:
    import pkcs11

    lib = pkcs11.lib(module)
    mech, data = (
        (pkcs11.Mechanism(CKM_ECDSA), DIGEST)
        if key_id == EC_ID
        else (pkcs11.Mechanism(CKM_RSA_PKCS), DIGEST_INFO)
    )
    # SoftHSM2 may read its token files while another process writes them: any step of the
    # start (the token, C_OpenSession + C_Login, the key, a first signature) may then fail
    # (NoSuchToken, GeneralError); the start begins again on a reinitialized module.
    for attempt in range(START_ATTEMPTS):
        step, session = "get_token", None
        try:
            token = lib.get_token(token_label=LABEL)
            step = "open and login"
            session = token.open(user_pin=PIN)
            step = "get_key"
            key = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, id=key_id)
            step = "first sign"
            key.sign(data, mechanism=mech)
            break
        except (pkcs11.NoSuchToken, pkcs11.GeneralError) as exc:
            failed = f"{step}: {type(exc).__name__}: {exc}"
            if session is not None:
                with contextlib.suppress(pkcs11.PKCS11Error):
                    session.close()
            if attempt == START_ATTEMPTS - 1:
                raise RuntimeError(f"{START_ATTEMPTS} starts failed, the last at {failed}") \
                    from exc
            print(f"caller starting again after {failed}", file=sys.stderr, flush=True)
            time.sleep(0.1)
            lib.reinitialize()
    assert session is not None
    try:
        start.wait()
        n, deadline = 0, time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            key.sign(data, mechanism=mech)
            n += 1
    finally:
        session.close()
    out.put(n)


def _grpc_worker(
    address: str, session_handle: str, key_id: bytes, seconds: float, start: Any, out: Any
) -> None:
    from authd.client import dev_channel
    from authd.v1 import token_pb2 as pb
    from authd.v1 import token_pb2_grpc

    channel = dev_channel(address, "bank-a", "branch", "bench")
    stub = token_pb2_grpc.TokenServiceStub(channel)
    request = pb.TokenSignRequest(session=session_handle, key_id=key_id, digest=DIGEST)
    stub.Sign(request)
    start.wait()
    n, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        stub.Sign(request)
        n += 1
    channel.close()
    out.put(n)


def _run(
    target: Any,
    args: tuple[Any, ...],
    callers: int,
    seconds: float,
    env: dict[str, str] | None = None,
    server_pid: int = 0,
) -> dict[str, float]:
    """Callers as processes of their own; signs/s, and the CPU of callers and server."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        procs = [
            ctx.Process(target=target, args=(*args, seconds, start, out)) for _ in range(callers)
        ]
        for p in procs:
            p.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    time.sleep(1.5)  # let every caller connect, log in and warm up
    ticks = [_worker_cpu(p.pid) for p in procs if p.pid is not None]
    server0 = tree_cpu_seconds(server_pid) if server_pid else 0.0
    t0 = time.perf_counter()
    start.set()
    # p11-kit server serves each connection in a child that ends with it: sample CPU while
    # the callers still run.
    time.sleep(max(0.0, seconds - 0.2))
    client_cpu = sum(_worker_cpu(p.pid) for p in procs if p.pid is not None) - sum(ticks)
    server_cpu = (tree_cpu_seconds(server_pid) - server0) if server_pid else 0.0
    wall = time.perf_counter() - t0
    signed = [out.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    failed = sum(n is None for n in signed)  # a caller that could not start: said, not 0
    return {"rate": sum(n for n in signed if n is not None) / seconds,
            "client_cpu": client_cpu / wall, "server_cpu": server_cpu / wall, "load": load1(),
            "failed_callers": failed}


def summary(runs: list[dict[str, float]]) -> tuple[float, str, dict[str, float]]:
    """The runs' median rate, its spread, and the run nearest the median. Runs in which a
    caller failed to start say so in the spread: their figure is from fewer callers."""
    rate, spread = median_and_spread([r["rate"] for r in runs])
    failed = [int(r["failed_callers"]) for r in runs if r.get("failed_callers")]
    if failed:
        spread += f"; FAILED: {sum(failed)} caller(s) in {len(failed)} of {len(runs)} run(s)"
    return rate, spread, min(runs, key=lambda r: abs(r["rate"] - rate))


def _worker_cpu(pid: int | None) -> float:
    try:
        return proc_cpu_seconds(pid) if pid else 0.0
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def _h2(url: str, body: bytes, callers: int, seconds: float, per_request: int,
        ok_calls: Any) -> dict[str, float]:
    """authd loaded by h2load: ``callers`` connections, one call in flight on each. The
    server's CPU is this process's and its native front end's, if it has one."""
    jobs = [(body, h2load.caller_headers("bank-a", "branch", "bench"))]
    daemon0 = proc_cpu_seconds(os.getpid())
    front0 = proc_cpu_seconds(FRONT_PID) if FRONT_PID else 0.0
    cpu0, t0 = _server_cpu(), time.perf_counter()
    run = h2load.run_counted(url, jobs, ok_calls, duration=seconds, connections=callers,
                             streams=1, per_request=per_request)
    wall = time.perf_counter() - t0
    daemon = proc_cpu_seconds(os.getpid()) - daemon0
    front = (proc_cpu_seconds(FRONT_PID) - front0) if FRONT_PID else float("nan")
    signed = run.rate * wall
    return {"rate": run.rate, "client_cpu": run.client_cpu / wall,
            "server_cpu": (_server_cpu() - cpu0) / wall, "load": load1(),
            "failed": run.failed,
            "daemon_us": daemon / signed * 1e6 if run.rate else float("nan"),
            "front_us": front / signed * 1e6 if run.rate else float("nan")}


FRONT_PID = 0  # authd-front serving the port ([server] front = "native"), 0: none


def _server_cpu() -> float:
    return proc_cpu_seconds(os.getpid()) + (proc_cpu_seconds(FRONT_PID) if FRONT_PID else 0.0)


# --------------------------------------------------------------------------- setup


def _setup_token(root: Path) -> Any:
    from simulators.token.softhsm import SoftHsmEnvironment

    env = SoftHsmEnvironment(root / "softhsm")
    env.activate()
    token = env.init_token(LABEL, PIN)
    import pkcs11
    from pkcs11 import Attribute, KeyType

    lib = pkcs11.lib(MODULE)
    with lib.get_token(token_label=LABEL).open(rw=True, user_pin=PIN) as s:
        priv = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True}
        params = s.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: bytes.fromhex("06082a8648ce3d030107")}, local=True
        )
        params.generate_keypair(id=EC_ID, label="bench-ec", store=True, private_template=priv)
        s.generate_keypair(
            KeyType.RSA, 2048, id=RSA_ID, label="bench-rsa", store=True, private_template=priv
        )
    pkcs11.unload(MODULE)  # this process does not use the token itself afterwards
    return env, token


def _start_p11kit(env: Any, root: Path) -> tuple[subprocess.Popen[str], str]:
    sock = root / f"p11kit-{time.monotonic_ns()}.sock"
    proc = subprocess.Popen(
        [
            "p11-kit",
            "server",
            "-f",
            "-s",
            "-n",
            str(sock),
            "--provider",
            MODULE,
            f"pkcs11:token={LABEL}",
        ],
        env={**os.environ, **env.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"P11_KIT_SERVER_ADDRESS=([^;]+);", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"p11-kit server did not start: {line!r}")
    return proc, match.group(1)


def _client_module() -> str:
    for path in CLIENT_MODULES:
        if os.path.exists(path):
            return path
    raise RuntimeError("p11-kit-client.so not found (Debian package p11-kit-modules)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--callers", type=int, default=4, help="the concurrent case")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (spread)")
    parser.add_argument("--front", choices=["python", "native"], default="python",
                        help="who serves authd's port ([server] front)")
    parser.add_argument("--paths", default="",
                        help="only these paths, comma-separated (e.g. 'p11-kit,authd stream')")
    parser.add_argument("--keys", default="", help="only these keys: ec, rsa (comma-separated)")
    args = parser.parse_args(argv)
    if not h2load.available():
        raise SystemExit("h2load not found: install Debian's nghttp2-client (scripts/setup.sh)")

    root = Path(tempfile.mkdtemp(prefix="authd-bench-tokens-"))
    p11kit: subprocess.Popen[str] | None = None
    srv: Any = None
    try:
        env, token = _setup_token(root)
        client = _client_module()

        from authd import config as configmod
        from authd.server import BackgroundServer
        from authd.v1 import token_pb2 as pb
        from authd.v1 import token_pb2_grpc
        from bench.common import scrape

        cfg = configmod.load(
            None,
            environ={},
            overrides={
                "data_dir": str(root / "authd"),
                "server": {"listen": "127.0.0.1:0", "insecure": True, "grace_seconds": 1.0,
                           "metrics_listen": "127.0.0.1:0", "front": args.front},
                "kek": {"kind": "file"},
                "token": {"modules": [MODULE]},
            },
        )
        if args.front == "native":
            from bench.bench_otp import native_front_binary

            native_front_binary()
        srv = BackgroundServer(cfg)
        global FRONT_PID
        FRONT_PID = srv.running.front.pid() if srv.running.front is not None else 0
        authd_address = f"127.0.0.1:{srv.port}"
        metrics_port = srv.running.metrics.port
        from authd.client import dev_channel

        ch = dev_channel(authd_address, "bank-a", "branch", "bench")
        stub = token_pb2_grpc.TokenServiceStub(ch)
        handle = stub.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=PIN)).session
        if args.front == "native":
            # The login lent to authd-front before any path runs, as a caller's first unary
            # Signs lend it ([token] lend_after_signs): the stream paths alone run lent too.
            for _ in range(LEND_SIGNS):
                stub.Sign(pb.TokenSignRequest(session=handle, key_id=EC_ID, digest=DIGEST))

        def ok(method: str, per_call: int = 1) -> Any:
            """Signatures answered: OK calls (a SignStream call answers all or fails)."""
            name = f"/authd.v1.TokenService/{method}"
            return lambda: per_call * int(
                scrape(metrics_port, "authd_rpcs_total", method=name, code="OK"))

        def streamed() -> int:
            """Stream signatures answered: the daemon's OK SignStream calls, and the requests of
            lent streams authd-front answered (a lent stream never reaches the daemon)."""
            name = "/authd.v1.TokenService/SignStream"
            return STREAM_FRAMES * int(
                scrape(metrics_port, "authd_rpcs_total", method=name, code="OK")) + int(
                scrape(metrics_port, "authd_lent_stream_requests_total", method=name))

        def figures(fn: Any, *fn_args: Any) -> tuple[float, str, dict[str, float]]:
            return summary([fn(*fn_args) for _ in range(args.repeat)])

        def remote(key_id: bytes, callers: int) -> dict[str, float]:
            server, address = _start_p11kit(env, root)  # a fresh server per run
            try:
                return _run(_pkcs11_worker, (client, key_id), callers, args.seconds,
                            {"P11_KIT_SERVER_ADDRESS": address}, server.pid)
            finally:
                server.terminate()
                server.wait(timeout=10)

        url = f"http://{authd_address}/authd.v1.TokenService/"
        rows: list[list[object]] = []
        wanted = {p.strip() for p in args.paths.split(",") if p.strip()}
        keys = {k.strip() for k in args.keys.split(",") if k.strip()}
        for short, name, key_id in (("ec", "ECDSA P-256", EC_ID), ("rsa", "RSA-2048", RSA_ID)):
            if keys and short not in keys:
                continue
            sign = pb.TokenSignRequest(session=handle, key_id=key_id, digest=DIGEST)
            one = h2load.frame(sign.SerializeToString())
            for callers in (1, args.callers):
                paths: dict[str, tuple[Any, ...]] = {
                    "direct": (_run, _pkcs11_worker, (MODULE, key_id), callers, args.seconds,
                               env.env),
                    "p11-kit": (remote, key_id, callers),
                    "authd unary": (_h2, url + "Sign", one, callers, args.seconds, 1,
                                    ok("Sign")),
                    "authd stream": (_h2, url + "SignStream", one * STREAM_FRAMES, callers,
                                     args.seconds, STREAM_FRAMES,
                                     streamed),
                    "authd unary, Python client": (_run, _grpc_worker,
                                                   (authd_address, handle, key_id), callers,
                                                   args.seconds, None, os.getpid()),
                }
                results: dict[str, tuple[float, str, dict[str, float]]] = {
                    path: figures(*spec) for path, spec in paths.items()
                    if not wanted or path in wanted}
                p11 = results["p11-kit"][0] if "p11-kit" in results else 0.0
                direct = results["direct"][0] if "direct" in results else 0.0
                for path, (rate, spread, mid) in results.items():
                    daemon_us = mid.get("daemon_us")
                    front_us = mid.get("front_us")
                    rows.append([name, callers, path, rate, spread,
                                 rate / p11 if p11 else float("nan"),
                                 rate / direct if direct else float("nan"),
                                 f"{mid['server_cpu']:.2f}" if path != "direct" else "-",
                                 f"{daemon_us:.0f}" if daemon_us is not None else "-",
                                 f"{front_us:.0f}" if front_us is not None else "-",
                                 f"{mid['client_cpu']:.2f}", f"{mid['load']:.2f}"])
                print(f"{name}, {callers} caller(s): "
                      + ", ".join(f"{k} {v[0]:,.0f}/s" for k, v in results.items()), flush=True)
        print()
        print(f"SoftHSM2 token {LABEL!r}, {args.seconds:.0f} s per run, median of {args.repeat}"
              f" runs (spread min-max), {os.cpu_count()} CPUs shared by callers and server; "
              "CPU in cores; load1 = 1-minute load average")
        print(table(["key", "callers", "path", "signs/s", "spread", "/ p11-kit", "/ direct",
                     "server CPU", "daemon µs/sig", "front µs/sig", "caller CPU",
                     "load1"], rows))
        print(f"authd stream: one SignStream call per caller at a time, {STREAM_FRAMES} "
              "signatures each. authd's server CPU is the whole daemon process and authd-front; "
              "daemon µs/sig, front µs/sig: the daemon process's and authd-front's CPU per "
              "signature (h2load paths).")
        ch.close()
    finally:
        if srv is not None:
            srv.stop()
        if p11kit is not None:
            p11kit.terminate()
            p11kit.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
