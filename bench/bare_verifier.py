"""The login's floor, its back half: a gRPC server whose one method verifies a password with argon2id and
does nothing else (no proto, no interceptor, no database, no token).

    python bench/bare_verifier.py --port P      (the password it accepts: $KASEUM_BENCH_PASSWORD)

bench/bare_app.py forwards POST /api/v1/sessions here, so a login through the two bare servers costs one
verify plus this machine's two hops and nothing of ours; bench/run.py times it beside the real login.
"""

from __future__ import annotations

import argparse
import os
from concurrent import futures

import grpc
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from identity.config import IdentitySettings

SERVICE = "kaseum.bench.BareVerifier"
METHOD = f"/{SERVICE}/Verify"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = IdentitySettings()  # identity's argon2id parameters, environment included
    hasher = PasswordHasher(memory_cost=settings.argon2_memory_kib, time_cost=settings.argon2_time_cost,
                            parallelism=settings.argon2_parallelism)
    stored = hasher.hash(os.environ["KASEUM_BENCH_PASSWORD"])

    def verify(password: bytes, _context: grpc.ServicerContext) -> bytes:
        try:
            return b"1" if hasher.verify(stored, password) else b"0"
        except VerificationError:
            return b"0"

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        SERVICE, {"Verify": grpc.unary_unary_rpc_method_handler(verify)}),))
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
