#!/usr/bin/env python3
"""Golden protobuf fixtures for RustDeskProtocol, made by an independent encoder.

Regenerate (from the repository root):

    python3 scripts/gen-fixtures.py

Needs `protoc` (Debian's 3.21.12 works; override with $PROTOC) and PyPI
`protobuf` whose runtime accepts that protoc's Python gencode
(`pip install 'protobuf>=4.21,<5'`; 4.25.9 verified).

What it does: compiles proto/rendezvous.proto with protoc into a temporary
directory, imports the generated module, and writes one
`Tests/RustDeskProtocolTests/Fixtures/<name>.bin` per fixture below (the
serialised RendezvousMessage, or IdPk for `id_pk.bin`), the `*.canonical.bin`
twin of every unknown-fields fixture, and `Fixtures/README.md` describing each
file. Stale `.bin` files are removed. Output is deterministic: a rerun writes
identical bytes.

Why a separate encoder: the Swift codec is hand-written; these bytes come from
Google's protobuf runtime driven by a schema written from the spec's field
tables, so agreement between the two is evidence that both read the spec the
same way. GoldenFixtureTests.swift rebuilds every message below with the same
values in Swift; keep the two in step when changing a value here.

Value conventions shared with the Swift test: `h("…")` is bytes from hex (Swift:
`hex("…")` in TestSupport.swift), `seq(start, count)` is `count` bytes counting up
from `start` modulo 256 (Swift: `GoldenFixtures.seq`).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
FIXTURES = ROOT / "Tests" / "RustDeskProtocolTests" / "Fixtures"


def compile_schema(out_dir: Path):
    protoc = os.environ.get("PROTOC") or shutil.which("protoc")
    if not protoc:
        sys.exit("protoc not found: apt-get install protobuf-compiler, or set $PROTOC")
    subprocess.run(
        [protoc, f"-I{PROTO_DIR}", f"--python_out={out_dir}", "rendezvous.proto"],
        check=True,
    )
    sys.path.insert(0, str(out_dir))
    return importlib.import_module("rendezvous_pb2")


# ----------------------------------------------------------------- raw wire helpers
# Used only to splice unknown fields into otherwise canonical bytes; the normal
# fixtures are serialised by the protobuf runtime alone.

def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32/int64 → two's complement, 10 bytes
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def length_delimited(field: int, payload: bytes) -> bytes:
    return key(field, 2) + varint(len(payload)) + payload


def h(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


def seq(start: int, count: int) -> bytes:
    return bytes((start + i) & 0xFF for i in range(count))


# One unknown field of every wire type. Field numbers are far from any the
# schema uses; the largest legal number (2^29 - 1) exercises a 5-byte key.
UNKNOWN_VARINT = key(100, 0) + varint(-2)                      # 10-byte varint
UNKNOWN_FIXED64 = key(101, 1) + h("0123456789abcdef")
UNKNOWN_LENGTH_DELIMITED = length_delimited(102, "unknown ü".encode())
UNKNOWN_FIXED32 = key(536870911, 5) + h("deadbeef")
# A group holding a varint, a length-delimited field and a nested empty group.
UNKNOWN_GROUP = (
    key(103, 3)
    + key(1, 0) + varint(150)
    + length_delimited(2, b"in-group")
    + key(104, 3) + key(104, 4)
    + key(103, 4)
)
ALL_UNKNOWN = (
    UNKNOWN_VARINT + UNKNOWN_FIXED64 + UNKNOWN_LENGTH_DELIMITED + UNKNOWN_FIXED32 + UNKNOWN_GROUP
)


# ----------------------------------------------------------------------- fixtures

V6_A = h("20010db8000000000000000000000001e5f4")   # AddrMangle-sized IPv6 endpoint (18 bytes)
V6_B = h("fe800000000000000211223344556677fffe")
SOCKET_ADDR = h("f4a8f0ac682470fe8964")            # the AddrMangle example of §A.1
SIGNED_PK = seq(0x40, 109)                          # shaped like signature ‖ IdPk


def fixtures(pb):
    """(file stem, description, message) for every RendezvousMessage fixture."""
    R = pb.RendezvousMessage
    out = []

    def add(name, description, **member):
        out.append((name, description, R(**member)))

    add("register_peer", "RegisterPeer; serial -1 (10-byte varint)",
        register_peer=pb.RegisterPeer(id="987654321", serial=-1))
    add("register_peer_response", "RegisterPeerResponse{request_pk: true}",
        register_peer_response=pb.RegisterPeerResponse(request_pk=True))
    add("punch_hole_request",
        "PunchHoleRequest, all 11 fields; upnp_port = Int32.min, conn_type TERMINAL",
        punch_hole_request=pb.PunchHoleRequest(
            id="123456789", nat_type=pb.SYMMETRIC,
            licence_key="OeVuKk5nlHiXp+APNn0Y3pC1Iwpwn44JGqrQCsWqmBw=",
            conn_type=pb.TERMINAL, token="tok-ABC", version="1.4.2", udp_port=40000,
            force_relay=True, upnp_port=-2147483648, socket_addr_v6=V6_A,
            switch_code="c3dpdGNoLWNvZGU="))
    add("punch_hole",
        "PunchHole, all 9 fields; nat_type 7 (unknown enum number), permissions 0xFEDCBA9876543210",
        punch_hole=pb.PunchHole(
            socket_addr=SOCKET_ADDR, relay_server="r.example.com:21117", nat_type=7,
            udp_port=65535, force_relay=True, upnp_port=1, socket_addr_v6=V6_B,
            control_permissions=pb.ControlPermissions(permissions=0xFEDCBA9876543210),
            controlled_context=pb.ControlledContext(conn_audit_ref="audit-Ω-001")))
    add("punch_hole_sent", "PunchHoleSent, all 7 fields",
        punch_hole_sent=pb.PunchHoleSent(
            socket_addr=SOCKET_ADDR, id="555666777", relay_server="relay.example.org",
            nat_type=pb.ASYMMETRIC, version="1.3.9", upnp_port=21116, socket_addr_v6=V6_A))
    response_fields = dict(
        socket_addr=h("0102030405060708090a"), pk=SIGNED_PK,
        failure=pb.PunchHoleResponse.LICENSE_OVERUSE, relay_server="hbbr.example.net",
        other_failure="licence expired ✗", feedback=-1, is_udp=True, upnp_port=12345,
        socket_addr_v6=V6_B)
    add("punch_hole_response_nat_type",
        "PunchHoleResponse, all fields, union = nat_type SYMMETRIC; feedback -1",
        punch_hole_response=pb.PunchHoleResponse(nat_type=pb.SYMMETRIC, **response_fields))
    add("punch_hole_response_is_local",
        "PunchHoleResponse, all fields, union = is_local true",
        punch_hole_response=pb.PunchHoleResponse(is_local=True, **response_fields))
    add("fetch_local_addr", "FetchLocalAddr, all 5 fields; permissions = UInt64.max",
        fetch_local_addr=pb.FetchLocalAddr(
            socket_addr=SOCKET_ADDR, relay_server="r2.example.com", socket_addr_v6=V6_A,
            control_permissions=pb.ControlPermissions(permissions=0xFFFFFFFFFFFFFFFF),
            controlled_context=pb.ControlledContext(conn_audit_ref="ctx-fetch")))
    add("local_addr", "LocalAddr, all 6 fields",
        local_addr=pb.LocalAddr(
            socket_addr=SOCKET_ADDR, local_addr=h("c0a801055b7c"), relay_server="LOCAL-IP",
            id="123456789", version="1.4.0", socket_addr_v6=V6_B))
    add("configure_update", "ConfigUpdate; serial Int32.max, 3 rendezvous servers",
        configure_update=pb.ConfigUpdate(
            serial=2147483647,
            rendezvous_servers=["a.example.com", "b.example.com:21116", "[2001:db8::1]:21116"]))
    add("register_pk", "RegisterPk, all 5 fields (16-byte uuid, 32-byte pk)",
        register_pk=pb.RegisterPk(
            id="new-id-1", uuid=seq(0xF0, 16), pk=seq(0x11, 32), old_id="123456789",
            no_register_device=True))
    add("register_pk_response", "RegisterPkResponse{NOT_DEPLOYED, keep_alive 120}",
        register_pk_response=pb.RegisterPkResponse(
            result=pb.RegisterPkResponse.NOT_DEPLOYED, keep_alive=120))
    add("software_update", "SoftwareUpdate with a non-ASCII url",
        software_update=pb.SoftwareUpdate(url="https://example.com/rustdesk-1.4.2.exe?lang=ü"))
    add("request_relay",
        "RequestRelay, all 11 fields; conn_type 7 (unknown), permissions 0x8000000000000001",
        request_relay=pb.RequestRelay(
            id="123456789", uuid="3f2a9c1e-7b4d-4e8a-9c2f-1a2b3c4d5e6f", socket_addr=SOCKET_ADDR,
            relay_server="relay.example.org:21117", secure=True, licence_key="key==",
            conn_type=7, token="pro-token",
            control_permissions=pb.ControlPermissions(permissions=0x8000000000000001),
            controlled_context=pb.ControlledContext(conn_audit_ref="audit-relay"),
            switch_code="sw"))
    relay_fields = dict(
        socket_addr=SOCKET_ADDR, uuid="uuid-1", relay_server="r.example.com",
        refuse_reason="refused — busy", version="1.4.2", feedback=-7, socket_addr_v6=V6_A,
        upnp_port=21117)
    add("relay_response_id", "RelayResponse, all fields, union = id; feedback -7",
        relay_response=pb.RelayResponse(id="123456789", **relay_fields))
    add("relay_response_pk", "RelayResponse, all fields, union = pk (109 bytes)",
        relay_response=pb.RelayResponse(pk=SIGNED_PK, **relay_fields))
    add("test_nat_request", "TestNatRequest{serial: 1000000}",
        test_nat_request=pb.TestNatRequest(serial=1000000))
    add("test_nat_response", "TestNatResponse with cu (2 servers)",
        test_nat_response=pb.TestNatResponse(
            port=54321,
            cu=pb.ConfigUpdate(serial=5, rendezvous_servers=["a.example.com", "b.example.com"])))
    add("peer_discovery", "PeerDiscovery, all 7 strings, several non-ASCII (2-, 3-, 4-byte UTF-8)",
        peer_discovery=pb.PeerDiscovery(
            cmd="ping", mac="00:1a:2b:3c:4d:5e", id="123456789", username="Zoë Ångström",
            hostname="日本-pc", platform="Linux 🐧", misc='{"k":1}'))
    add("online_request", "OnlineRequest with 3 peers",
        online_request=pb.OnlineRequest(
            id="111111111", peers=["123456789", "987654321", "555666777"]))
    add("online_response", "OnlineResponse{states: a0 40 ff 00}",
        online_response=pb.OnlineResponse(states=h("a040ff00")))
    add("key_exchange", "KeyExchange with 3 keys (96, 32, 48 bytes)",
        key_exchange=pb.KeyExchange(keys=[seq(0, 96), seq(0xAB, 32), seq(0xE0, 48)]))
    add("hc", "HealthCheck with a non-ASCII token",
        hc=pb.HealthCheck(token="health-token-🔑"))
    add("http_proxy_request", "HttpProxyRequest, 2 headers, body with 00 and ff",
        http_proxy_request=pb.HttpProxyRequest(
            method="POST", path="/api/heartbeat?x=1&y=ä",
            headers=[pb.HeaderEntry(name="Content-Type", value="application/json"),
                     pb.HeaderEntry(name="X-Trace", value="abc123")],
            body=b'{"id":"123"}' + h("00ff")))
    add("http_proxy_response", "HttpProxyResponse, 2 headers, status 502, error",
        http_proxy_response=pb.HttpProxyResponse(
            status=502,
            headers=[pb.HeaderEntry(name="Server", value="ringdesk"),
                     pb.HeaderEntry(name="Retry-After", value="5")],
            body=h("fffe00"), error="upstream timeout"))

    # Presence and default-value edge cases.
    out.append(("empty", "empty input: RendezvousMessage with no union set (0 bytes)", R()))
    add("register_peer_response_default",
        "RegisterPeerResponse{} — member set, empty body (`3a 00`)",
        register_peer_response=pb.RegisterPeerResponse())
    add("punch_hole_response_nat_type_default",
        "PunchHoleResponse{nat_type: UNKNOWN_NAT} — a set oneof member is written even at 0",
        punch_hole_response=pb.PunchHoleResponse(nat_type=pb.UNKNOWN_NAT))
    add("relay_response_pk_empty",
        "RelayResponse{pk: empty} — oneof member set to empty bytes is still written",
        relay_response=pb.RelayResponse(pk=b""))
    add("test_nat_response_empty_cu",
        "TestNatResponse{cu: ConfigUpdate{}} — present-but-empty nested message is written",
        test_nat_response=pb.TestNatResponse(cu=pb.ConfigUpdate()))
    return out


def unknown_field_fixtures(pb):
    """(stem, description, bytes with unknown fields, expected message)."""
    out = []

    # 1. Unknown fields around the oneof member, at the envelope level; numbers
    #    1-5 are unused by the envelope's oneof, so they are unknown too.
    member = pb.RendezvousMessage(register_peer=pb.RegisterPeer(id="123456789", serial=3))
    raw = (
        key(1, 0) + varint(1)
        + length_delimited(5, b"\x00\x01")
        + ALL_UNKNOWN
        + member.SerializeToString(deterministic=True)
        + ALL_UNKNOWN
    )
    out.append(("unknown_fields_envelope",
                "RegisterPeer{id 123456789, serial 3} with unknown fields (all wire types, "
                "fields 1 and 5 too) before and after the member", raw, member))

    # 2. Inside RegisterPeer: before, between and after its known fields.
    inner = (
        ALL_UNKNOWN
        + length_delimited(1, b"123456789")
        + UNKNOWN_GROUP + UNKNOWN_FIXED32
        + key(2, 0) + varint(3)
        + UNKNOWN_VARINT + UNKNOWN_LENGTH_DELIMITED + UNKNOWN_FIXED64
    )
    out.append(("unknown_fields_register_peer",
                "RegisterPeer{id 123456789, serial 3} with unknown fields interleaved "
                "with its own", length_delimited(6, inner), member))

    # 3. Two levels deep: inside PunchHole and inside its nested ControlPermissions
    #    and ControlledContext.
    permissions = ALL_UNKNOWN + key(1, 0) + varint(0xFEDCBA9876543210) + UNKNOWN_GROUP
    context = UNKNOWN_FIXED64 + length_delimited(1, "audit-Ω-001".encode()) + UNKNOWN_VARINT
    punch = (
        length_delimited(1, SOCKET_ADDR)
        + UNKNOWN_GROUP
        + length_delimited(2, b"r.example.com")
        + key(3, 0) + varint(pb.ASYMMETRIC)
        + length_delimited(8, permissions)
        + ALL_UNKNOWN
        + length_delimited(9, context)
    )
    expected = pb.RendezvousMessage(punch_hole=pb.PunchHole(
        socket_addr=SOCKET_ADDR, relay_server="r.example.com", nat_type=pb.ASYMMETRIC,
        control_permissions=pb.ControlPermissions(permissions=0xFEDCBA9876543210),
        controlled_context=pb.ControlledContext(conn_audit_ref="audit-Ω-001")))
    out.append(("unknown_fields_nested",
                "PunchHole with unknown fields in it and in its ControlPermissions and "
                "ControlledContext", length_delimited(9, punch), expected))

    # 4. Between the entries of a repeated field: order of entries must survive.
    online = (
        length_delimited(1, b"111111111")
        + length_delimited(2, b"123456789")
        + ALL_UNKNOWN
        + length_delimited(2, b"987654321")
    )
    expected = pb.RendezvousMessage(online_request=pb.OnlineRequest(
        id="111111111", peers=["123456789", "987654321"]))
    out.append(("unknown_fields_repeated",
                "OnlineRequest with unknown fields between two `peers` entries",
                length_delimited(23, online), expected))
    return out


# ------------------------------------------------------------------------ checks

# Appendix A.1 of PROTOCOL.md, rebuilt with this schema: proves the schema's
# numbers and types before any fixture is trusted.
def check_appendix_a1(pb):
    R = pb.RendezvousMessage
    PHR = pb.PunchHoleResponse
    RPR = pb.RegisterPkResponse
    vectors = [
        (R(register_peer_response=pb.RegisterPeerResponse(request_pk=True)), "3a021001"),
        (R(register_peer_response=pb.RegisterPeerResponse()), "3a00"),
        (R(register_pk_response=RPR(result=RPR.OK)), "820100"),
        (R(register_pk_response=RPR(result=RPR.UUID_MISMATCH)), "8201020802"),
        (R(register_pk_response=RPR(result=RPR.TOO_FREQUENT)), "8201020804"),
        (R(register_pk_response=RPR(result=RPR.NOT_SUPPORT)), "8201020806"),
        (R(punch_hole_response=PHR()), "5a00"),
        (R(punch_hole_response=PHR(failure=PHR.OFFLINE)), "5a021802"),
        (R(punch_hole_response=PHR(failure=PHR.LICENSE_MISMATCH)), "5a021803"),
        (R(punch_hole_response=PHR(socket_addr=h("0102"), relay_server="r",
                                   nat_type=pb.UNKNOWN_NAT)), "5a090a02010222017228 00"),
        (R(punch_hole_response=PHR(socket_addr=h("0102"), is_local=True)), "5a060a0201023001"),
        (R(register_peer=pb.RegisterPeer(id="123456789", serial=3)),
         "320d0a0931323334353637383910 03"),
        (R(register_peer=pb.RegisterPeer(id="(:test_hbbs:)")),
         "320f0a0d283a746573745f68626273 3a29"),
        (R(register_pk=pb.RegisterPk(id="123456789", uuid=h("01020304"), pk=h("1111"))),
         "7a150a093132333435363738391204010203041a021111"),
        (R(punch_hole=pb.PunchHole(socket_addr=SOCKET_ADDR, relay_server="r.example.com",
                                   nat_type=pb.ASYMMETRIC)),
         "4a1d0a0af4a8f0ac682470fe8964120d722e6578616d706c652e636f6d1801"),
        (R(fetch_local_addr=pb.FetchLocalAddr(socket_addr=SOCKET_ADDR,
                                              relay_server="r.example.com")),
         "621b0a0af4a8f0ac682470fe8964120d722e6578616d706c652e636f6d"),
        (R(request_relay=pb.RequestRelay(id="123456789", uuid="u", licence_key="k")),
         "9201110a0931323334353637383912017532016b"),
        (R(relay_response=pb.RelayResponse(uuid="u", relay_server="r", pk=b"")),
         "9a01081201751a01722a00"),
        (R(test_nat_request=pb.TestNatRequest(serial=3)), "a201020803"),
        (R(test_nat_response=pb.TestNatResponse(port=54321)), "aa010408b1a803"),
        (R(online_request=pb.OnlineRequest(id="111111111", peers=["123456789", "987654321"])),
         "ba01210a09313131313131313131120931323334353637383912093938373635343332 31"),
        (R(online_response=pb.OnlineResponse(states=h("a040"))), "c201040a02a040"),
        (R(configure_update=pb.ConfigUpdate(serial=5, rendezvous_servers=["a.example.com"]))
         , "7211080512 0d612e6578616d706c652e636f6d"),
        (R(hc=pb.HealthCheck(token="t")), "d20103 0a0174"),
    ]
    for message, expected_hex in vectors:
        got = message.SerializeToString(deterministic=True)
        want = h(expected_hex.replace(" ", ""))
        if got != want:
            sys.exit(f"schema disagrees with Appendix A.1: {message!r}\n got {got.hex()}\nwant {want.hex()}")
    id_pk = pb.IdPk(id="123456789", pk=b"\x11" * 32).SerializeToString(deterministic=True)
    if id_pk != h("0a09313233343536373839 1220".replace(" ", "")) + b"\x11" * 32:
        sys.exit("schema disagrees with Appendix A.3 IdPk")


def every_field_is_set(message, path="") -> list[str]:
    """Names of fields left at their default anywhere in `message` (oneof members excepted)."""
    missing = []
    for field in message.DESCRIPTOR.fields:
        if field.containing_oneof is not None:
            continue
        name = path + field.name
        if field.label == field.LABEL_REPEATED:
            values = getattr(message, field.name)
            if len(values) < 2:
                missing.append(name + " (fewer than 2 entries)")
            if field.message_type is not None:
                for i, value in enumerate(values):
                    missing += every_field_is_set(value, f"{name}[{i}].")
        elif field.message_type is not None:
            if not message.HasField(field.name):
                missing.append(name)
            else:
                missing += every_field_is_set(getattr(message, field.name), name + ".")
        elif getattr(message, field.name) == field.default_value:
            missing.append(name)
    return missing


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ringdesk-fixtures-") as tmp:
        pb = compile_schema(Path(tmp))
        check_appendix_a1(pb)

        written: dict[str, bytes] = {}
        readme_rows = []
        full = fixtures(pb)

        # Every envelope member must have a fully populated fixture.
        covered = set()
        for stem, _, message in full:
            member = message.WhichOneof("union")
            if member is None:
                continue
            body = getattr(message, member)
            if stem.startswith(member) and not stem.endswith(("_default", "_empty", "_empty_cu")):
                covered.add(member)
                missing = every_field_is_set(body)
                if missing:
                    sys.exit(f"{stem}: fields left at default: {', '.join(missing)}")
        all_members = {f.name for f in pb.RendezvousMessage.DESCRIPTOR.oneofs_by_name["union"].fields}
        if covered != all_members:
            sys.exit(f"members without a full fixture: {sorted(all_members - covered)}")

        for stem, description, message in full:
            data = message.SerializeToString(deterministic=True)
            if pb.RendezvousMessage.FromString(data) != message:
                sys.exit(f"{stem}: does not round-trip")
            written[f"{stem}.bin"] = data
            readme_rows.append((f"{stem}.bin", "RendezvousMessage", description))

        id_pk = pb.IdPk(id="123456789", pk=b"\x11" * 32)
        written["id_pk.bin"] = id_pk.SerializeToString(deterministic=True)
        readme_rows.append(("id_pk.bin", "IdPk",
                            "IdPk{id 123456789, pk 32 × 11} — the 45-byte example of Appendix A.3"))

        for stem, description, raw, expected in unknown_field_fixtures(pb):
            parsed = pb.RendezvousMessage.FromString(raw)
            # Python's equality counts unknown fields, so drop them first.
            parsed.DiscardUnknownFields()
            if parsed != expected:
                sys.exit(f"{stem}: does not parse to the expected message")
            canonical = expected.SerializeToString(deterministic=True)
            if parsed.SerializeToString(deterministic=True) != canonical:
                sys.exit(f"{stem}: canonical form differs")
            written[f"{stem}.bin"] = raw
            written[f"{stem}.canonical.bin"] = canonical
            readme_rows.append((f"{stem}.bin", "RendezvousMessage + unknown fields", description))
            readme_rows.append((f"{stem}.canonical.bin", "RendezvousMessage",
                                f"`{stem}.bin` with its unknown fields dropped (canonical)"))

    FIXTURES.mkdir(parents=True, exist_ok=True)
    for stale in FIXTURES.glob("*.bin"):
        if stale.name not in written:
            stale.unlink()
    for name, data in sorted(written.items()):
        (FIXTURES / name).write_bytes(data)
    (FIXTURES / "README.md").write_text(readme(readme_rows), encoding="utf-8")
    print(f"wrote {len(written)} fixtures to {FIXTURES.relative_to(ROOT)}")


def readme(rows) -> str:
    lines = [
        "# Golden protobuf fixtures",
        "",
        "Generated by `python3 scripts/gen-fixtures.py` (do not edit by hand) from",
        "`proto/rendezvous.proto` with Google's Python protobuf runtime: an encoder independent",
        "of `Sources/RustDeskProtocol`. Each `.bin` is one serialised message, no framing.",
        "`GoldenFixtureTests.swift` rebuilds each message in Swift with the same values, checks",
        "that decoding the file gives it and that encoding it gives the file's bytes (for",
        "`unknown_fields_*`, the `.canonical.bin` twin's bytes).",
        "",
        "Unknown fields used in `unknown_fields_*`: varint (field 100, value -2 as a 10-byte",
        "varint), fixed64 (101), length-delimited (102), fixed32 (536870911, the largest field",
        "number), and a start/end group (103) holding a varint, a length-delimited field and an",
        "empty nested group (104).",
        "",
        "Values: all fields of each member are non-default; one `.bin` per member of",
        "`RendezvousMessage.union` (two for each `oneof` inside PunchHoleResponse and",
        "RelayResponse), plus edge cases of presence and default values.",
        "",
        "| file | message | content |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{name}` | {kind} | {description} |" for name, kind, description in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
