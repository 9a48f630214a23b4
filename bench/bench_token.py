"""Sign on a SoftHSM2 token three ways, side by side in one run:

- direct: python-pkcs11 calling libsofthsm2.so in the caller's process;
- p11-kit: the same token remoted by ``p11-kit server`` (callers load p11-kit-client.so);
- authd: ``authd.v1.TokenService/Sign`` over gRPC (insecure dev mode on loopback).

ECDSA P-256 (CKM_ECDSA over a SHA-256 digest) and RSA-2048 (CKM_RSA_PKCS over a SHA-256
DigestInfo - the mechanisms authd uses), at 1 and N concurrent callers. Each caller is its own
process (SoftHSM2 initialized by python-pkcs11 is single-threaded per process), so the three
paths pay the same process cost; the client processes share this machine's cores with the
server. Run: ``python -m bench token [--seconds S] [--callers N]`` or
``python bench/bench_token.py``.
"""

from __future__ import annotations

import argparse
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


# ------------------------------------------------------------------------- workers


def _pkcs11_worker(module: str, key_id: bytes, seconds: float, start: Any, out: Any) -> None:
    import pkcs11

    lib = pkcs11.lib(module)
    for attempt in range(50):  # SoftHSM2 may read token files while another process writes them
        try:
            token = lib.get_token(token_label=LABEL)
            break
        except pkcs11.NoSuchToken:
            if attempt == 49:
                raise
            time.sleep(0.1)
            lib.reinitialize()
    with token.open(user_pin=PIN) as session:
        key = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, id=key_id)
        mech, data = (
            (pkcs11.Mechanism(CKM_ECDSA), DIGEST)
            if key_id == EC_ID
            else (pkcs11.Mechanism(CKM_RSA_PKCS), DIGEST_INFO)
        )
        key.sign(data, mechanism=mech)
        start.wait()
        n, deadline = 0, time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            key.sign(data, mechanism=mech)
            n += 1
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


def _grpc_stream_worker(
    address: str, session_handle: str, key_id: bytes, seconds: float, start: Any, out: Any
) -> None:
    import threading

    from authd.client import dev_channel
    from authd.v1 import token_pb2 as pb
    from authd.v1 import token_pb2_grpc

    channel = dev_channel(address, "bank-a", "branch", "bench")
    stub = token_pb2_grpc.TokenServiceStub(channel)
    request = pb.TokenSignRequest(session=session_handle, key_id=key_id, digest=DIGEST)
    stop = threading.Event()
    window = threading.Semaphore(32)  # requests in flight on the stream

    def requests() -> Any:
        while not stop.is_set():
            window.acquire()
            yield request

    stub.Sign(request)
    start.wait()
    n, deadline = 0, time.perf_counter() + seconds
    responses = stub.SignStream(requests())
    for _ in responses:
        window.release()
        n += 1
        if time.perf_counter() >= deadline:
            break
    stop.set()
    window.release()
    responses.cancel()
    channel.close()
    out.put(n)


def _run(
    target: Any,
    args: tuple[Any, ...],
    callers: int,
    seconds: float,
    env: dict[str, str] | None = None,
) -> float:
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
    start.set()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for p in procs:
        p.join(timeout=10)
    return total / seconds


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
    args = parser.parse_args(argv)

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

        cfg = configmod.load(
            None,
            environ={},
            overrides={
                "data_dir": str(root / "authd"),
                "server": {"listen": "127.0.0.1:0", "insecure": True, "grace_seconds": 1.0},
                "kek": {"kind": "file"},
                "token": {"modules": [MODULE]},
            },
        )
        srv = BackgroundServer(cfg)
        authd_address = f"127.0.0.1:{srv.port}"
        from authd.client import dev_channel

        ch = dev_channel(authd_address, "bank-a", "branch", "bench")
        handle = (
            token_pb2_grpc.TokenServiceStub(ch)
            .Login(pb.TokenLoginRequest(token_serial=token.serial, pin=PIN))
            .session
        )

        print(
            f"SoftHSM2 token {LABEL!r}, {args.seconds:.0f} s per figure, "
            f"{os.cpu_count()} CPUs; callers are separate processes"
        )
        header = (
            f"{'key':<12}{'callers':>8}{'direct':>9}{'p11-kit':>9}{'authd':>9}{'stream':>9}"
            f"{'authd/p11kit':>14}{'stream/p11kit':>15}{'stream/direct':>15}"
        )
        print(header)
        print("-" * len(header))
        for name, key_id in (("ECDSA P-256", EC_ID), ("RSA-2048", RSA_ID)):
            for callers in (1, args.callers):
                direct = _run(_pkcs11_worker, (MODULE, key_id), callers, args.seconds, env.env)
                p11kit, address = _start_p11kit(env, root)  # a fresh server per figure
                try:
                    remote = _run(
                        _pkcs11_worker,
                        (client, key_id),
                        callers,
                        args.seconds,
                        {"P11_KIT_SERVER_ADDRESS": address},
                    )
                finally:
                    p11kit.terminate()
                    p11kit.wait(timeout=10)
                    p11kit = None
                target = (authd_address, handle, key_id)
                via = _run(_grpc_worker, target, callers, args.seconds)
                streamed = _run(_grpc_stream_worker, target, callers, args.seconds)
                print(
                    f"{name:<12}{callers:>8}{direct:>9.0f}{remote:>9.0f}{via:>9.0f}"
                    f"{streamed:>9.0f}{via / remote:>14.2f}{streamed / remote:>15.2f}"
                    f"{streamed / direct:>15.2f}",
                    flush=True,
                )
        print(
            "signs/s. authd: one unary Sign call per signature; stream: SignStream, one stream "
            "per caller, up to 32 requests in flight. Ratios above 1.00: authd is faster."
        )
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
