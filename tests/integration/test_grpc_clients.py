"""A second real client, python3-grpcio (grpc-core 1.51, not grpc-go), against krilld: concurrency on one
connection and across many, malformed and oversized input, health checking. The daemon must answer every
well-formed call and keep serving after every bad one.

Messages come from Debian's containerd .proto files, compiled with protoc --python_out at test time."""

import concurrent.futures
import importlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import pytest

grpc = pytest.importorskip("grpc")
pytest.importorskip("google.protobuf")

GOSRC = "/usr/share/gocode/src"
CTD = "github.com/containerd/containerd"
API = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "api"))
PROTOS = [CTD + "/api/services/version/v1/version.proto",
          CTD + "/api/services/namespaces/v1/namespace.proto",
          CTD + "/api/services/introspection/v1/introspection.proto",
          CTD + "/api/types/platform.proto",
          "gogoproto/gogo.proto",
          "google/rpc/status.proto"]
MAX = 16 << 20


@pytest.fixture(scope="session")
def pb():
    """Namespace of the generated modules: pb.version, pb.namespaces, pb.introspection, pb.health."""
    protoc = shutil.which("protoc")
    if not protoc:
        print("SKIP: protoc not installed")
        pytest.skip("protoc not installed")
    out = tempfile.mkdtemp(prefix="krill-pb-")
    inc = ["-I" + GOSRC, "-I" + GOSRC + "/github.com/gogo/protobuf", "-I" + GOSRC + "/github.com/gogo/googleapis",
           "-I/usr/include", "-I" + API]
    try:
        subprocess.run([protoc] + inc + ["--python_out=" + out] + PROTOS + ["health.proto"], check=True)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    # protoc writes "github.com/x.proto" as github/com/x_pb2.py, importable as github.com.x_pb2
    sys.path.insert(0, out)

    class NS:
        pass

    ns = NS()
    base = "github.com.containerd.containerd.api.services."
    ns.version = importlib.import_module(base + "version.v1.version_pb2")
    ns.namespaces = importlib.import_module(base + "namespaces.v1.namespace_pb2")
    ns.introspection = importlib.import_module(base + "introspection.v1.introspection_pb2")
    ns.health = importlib.import_module("health_pb2")
    from google.protobuf import empty_pb2
    ns.empty = empty_pb2
    yield ns
    sys.path.remove(out)
    shutil.rmtree(out, ignore_errors=True)


class _Namespace(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Sends containerd-namespace on every call, as ctr and the containerd client do (containerd fails a
    namespace write without it: the event cannot be published)."""

    def __init__(self, ns):
        self.md = ("containerd-namespace", ns)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(_Details(details, list(details.metadata or []) + [self.md]), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(_Details(details, list(details.metadata or []) + [self.md]), request)


class _Details(grpc.ClientCallDetails):
    def __init__(self, d, md):
        self.method, self.timeout, self.metadata = d.method, d.timeout, md
        self.credentials = d.credentials
        self.wait_for_ready = getattr(d, "wait_for_ready", None)
        self.compression = getattr(d, "compression", None)


class _Channel:
    """A channel with the namespace interceptor that still closes its underlying channel."""

    def __init__(self, raw, ns):
        self.raw = raw
        self.ch = grpc.intercept_channel(raw, _Namespace(ns))

    def __getattr__(self, name):
        return getattr(self.ch, name)

    def close(self):
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def channel(krilld, ns="default", **opts):
    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    options += list(opts.items())
    return _Channel(grpc.insecure_channel("unix://" + krilld.address, options=options), ns)


def method(ch, path, req_cls, resp_cls):
    return ch.unary_unary(path, request_serializer=req_cls.SerializeToString,
                          response_deserializer=resp_cls.FromString)


def version_call(ch, pb):
    return method(ch, "/containerd.services.version.v1.Version/Version", pb.empty.Empty,
                  pb.version.VersionResponse)


def still_serving(krilld):
    r = krilld.ctr("version", timeout=30)
    assert r.returncode == 0, "krilld stopped serving: %s\n%s" % (r.stderr, krilld.log_text()[-3000:])


def test_grpc_version_and_namespaces_roundtrip(krilld, pb):
    with channel(krilld) as ch:
        v = version_call(ch, pb)(pb.empty.Empty(), timeout=10)
        assert v.version and v.revision
        create = method(ch, "/containerd.services.namespaces.v1.Namespaces/Create",
                        pb.namespaces.CreateNamespaceRequest, pb.namespaces.CreateNamespaceResponse)
        resp = create(pb.namespaces.CreateNamespaceRequest(
            namespace=pb.namespaces.Namespace(name="py", labels={"a": "1", "b": "2"})), timeout=10)
        assert resp.namespace.name == "py" and dict(resp.namespace.labels) == {"a": "1", "b": "2"}
        get = method(ch, "/containerd.services.namespaces.v1.Namespaces/Get",
                     pb.namespaces.GetNamespaceRequest, pb.namespaces.GetNamespaceResponse)
        assert dict(get(pb.namespaces.GetNamespaceRequest(name="py"), timeout=10).namespace.labels) == \
            {"a": "1", "b": "2"}
        # containerd answers Get of a missing namespace with empty labels, not NotFound
        missing = get(pb.namespaces.GetNamespaceRequest(name="nothere"), timeout=10)
        assert missing.namespace.name == "nothere" and not missing.namespace.labels
        update = method(ch, "/containerd.services.namespaces.v1.Namespaces/Update",
                        pb.namespaces.UpdateNamespaceRequest, pb.namespaces.UpdateNamespaceResponse)
        update(pb.namespaces.UpdateNamespaceRequest(namespace=pb.namespaces.Namespace(name="py", labels={"c": "3"})),
               timeout=10)
        assert dict(get(pb.namespaces.GetNamespaceRequest(name="py"), timeout=10).namespace.labels) == {"c": "3"}
        with pytest.raises(grpc.RpcError) as e:
            update(pb.namespaces.UpdateNamespaceRequest(namespace=pb.namespaces.Namespace(name="py"),
                                                        update_mask={"paths": ["name"]}), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details() == 'cannot update "name" field: invalid argument'
        delete = method(ch, "/containerd.services.namespaces.v1.Namespaces/Delete",
                        pb.namespaces.DeleteNamespaceRequest, pb.empty.Empty)
        delete(pb.namespaces.DeleteNamespaceRequest(name="py"), timeout=10)
        with pytest.raises(grpc.RpcError) as e:
            delete(pb.namespaces.DeleteNamespaceRequest(name="py"), timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        assert e.value.details() == 'namespace "py": not found'


def test_grpc_health_check(krilld, pb):
    with channel(krilld) as ch:
        check = method(ch, "/grpc.health.v1.Health/Check", pb.health.HealthCheckRequest,
                       pb.health.HealthCheckResponse)
        assert check(pb.health.HealthCheckRequest(), timeout=10).status == pb.health.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as e:
            check(pb.health.HealthCheckRequest(service="nope"), timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        watch = ch.unary_stream("/grpc.health.v1.Health/Watch",
                                request_serializer=pb.health.HealthCheckRequest.SerializeToString,
                                response_deserializer=pb.health.HealthCheckResponse.FromString)
        it = watch(pb.health.HealthCheckRequest(), timeout=10)
        assert next(it).status == pb.health.HealthCheckResponse.SERVING
        it.cancel()


def test_grpc_introspection_plugins_and_filters(krilld, pb):
    with channel(krilld) as ch:
        plugins = method(ch, "/containerd.services.introspection.v1.Introspection/Plugins",
                         pb.introspection.PluginsRequest, pb.introspection.PluginsResponse)
        allp = plugins(pb.introspection.PluginsRequest(), timeout=10).plugins
        ids = {(p.type, p.id) for p in allp}
        for want in [("io.containerd.grpc.v1", "version"), ("io.containerd.grpc.v1", "namespaces"),
                     ("io.containerd.grpc.v1", "introspection"), ("io.containerd.grpc.v1", "healthcheck"),
                     ("io.containerd.metadata.v1", "lmdb")]:
            assert want in ids
        assert all(not p.HasField("init_err") for p in allp if p.type == "io.containerd.grpc.v1")
        some = plugins(pb.introspection.PluginsRequest(filters=["type==io.containerd.grpc.v1,id==version"]),
                       timeout=10).plugins
        assert [(p.type, p.id) for p in some] == [("io.containerd.grpc.v1", "version")]
        with pytest.raises(grpc.RpcError) as e:
            plugins(pb.introspection.PluginsRequest(filters=["id=="]), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        server = method(ch, "/containerd.services.introspection.v1.Introspection/Server", pb.empty.Empty,
                        pb.introspection.ServerResponse)
        assert len(server(pb.empty.Empty(), timeout=10).uuid) == 36


def test_grpc_200_concurrent_calls_on_one_channel(krilld, pb):
    with channel(krilld) as ch:
        call = version_call(ch, pb)
        futures = [call.future(pb.empty.Empty(), timeout=30) for _ in range(200)]
        results = [f.result() for f in futures]
        assert len(results) == 200 and all(r.version for r in results)
        # mixed reads and writes in flight together
        create = method(ch, "/containerd.services.namespaces.v1.Namespaces/Create",
                        pb.namespaces.CreateNamespaceRequest, pb.namespaces.CreateNamespaceResponse)
        futures = [create.future(pb.namespaces.CreateNamespaceRequest(
            namespace=pb.namespaces.Namespace(name="c%03d" % i)), timeout=60) for i in range(100)]
        futures += [call.future(pb.empty.Empty(), timeout=60) for _ in range(100)]
        for f in futures:
            f.result()
    names = krilld.ctr("namespaces", "ls", "-q").stdout.split()
    assert names == ["c%03d" % i for i in range(100)]
    # the fixture's teardown visits every namespace: leave none behind
    assert krilld.ctr("namespaces", "rm", *names).returncode == 0


def test_grpc_50_channels_in_parallel(krilld, pb):
    chans = [channel(krilld, **{"grpc.use_local_subchannel_pool": 1}) for _ in range(50)]
    try:
        def work(ch):
            call = version_call(ch, pb)
            return [call(pb.empty.Empty(), timeout=30).version for _ in range(10)]

        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as ex:
            out = list(ex.map(work, chans))
        assert len(out) == 50 and all(len(v) == 10 and all(v) for v in out)
    finally:
        for ch in chans:
            ch.close()
    still_serving(krilld)


def test_grpc_unknown_method_is_unimplemented(krilld, pb):
    with channel(krilld) as ch:
        m = method(ch, "/containerd.services.nothing.v1.Nothing/Call", pb.empty.Empty, pb.empty.Empty)
        with pytest.raises(grpc.RpcError) as e:
            m(pb.empty.Empty(), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    still_serving(krilld)


def test_grpc_oversized_request_is_refused_cleanly(krilld, pb):
    """A request over 16 MiB gets RESOURCE_EXHAUSTED and the connection stays usable."""
    with channel(krilld) as ch:
        create = method(ch, "/containerd.services.namespaces.v1.Namespaces/Create",
                        pb.namespaces.CreateNamespaceRequest, pb.namespaces.CreateNamespaceResponse)
        big = pb.namespaces.CreateNamespaceRequest(namespace=pb.namespaces.Namespace(
            name="big", labels={"k": "x" * (MAX + 1024)}))
        with pytest.raises(grpc.RpcError) as e:
            create(big, timeout=60)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert version_call(ch, pb)(pb.empty.Empty(), timeout=10).version
    assert "big" not in krilld.ctr("namespaces", "ls", "-q").stdout.split()
    still_serving(krilld)


def test_grpc_undecodable_request_is_a_clean_error(krilld):
    """A message that is not valid protobuf for the method's input gets an error status, not a crash."""
    with grpc.insecure_channel("unix://" + krilld.address) as ch:
        raw = ch.unary_unary("/containerd.services.namespaces.v1.Namespaces/Create",
                             request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as e:
            raw(b"\x0a\xff\xff\xff\xff\x0f garbage", timeout=10)
        assert e.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL)
    still_serving(krilld)


def _answered(data):
    """True once the server sent GOAWAY, or ended stream 1 (HEADERS with END_STREAM, or RST_STREAM)."""
    return any(f[0] == GOAWAY or (f[2] == 1 and (f[0] == 3 or (f[0] == 1 and f[1] & 1))) for f in frames(data))


def raw_exchange(path, payload, read_for=1.0):
    """Sends payload on a fresh connection and returns what the server sent until it closed, answered
    (see _answered) or read_for passed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(read_for)
    s.connect(path)
    got = b""
    try:
        s.sendall(payload)
        deadline = time.monotonic() + read_for
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
            if _answered(got):
                break
    finally:
        s.close()
    return got


def frames(data):
    """[(type, flags, stream, payload)] parsed from raw HTTP/2 bytes (server side: no preface)."""
    out = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        ftype, flags = data[3], data[4]
        stream = int.from_bytes(data[5:9], "big") & 0x7fffffff
        out.append((ftype, flags, stream, data[9:9 + length]))
        data = data[9 + length:]
    return out


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
GOAWAY = 7


def test_grpc_garbage_bytes_and_bad_preface(krilld):
    for payload in [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00" * 100, os.urandom(4096),
                    b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SETTINGS, b"PRI"]:
        raw_exchange(krilld.address, payload, read_for=0.5)
        still_serving(krilld)


def test_grpc_malformed_frames_get_goaway(krilld):
    cases = [
        # DATA on stream 0 is a connection error
        b"\x00\x00\x05\x00\x01\x00\x00\x00\x00hello",
        # a frame header announcing 16 MiB (over the default max frame size)
        b"\xff\xff\xff\x00\x00\x00\x00\x00\x01",
        # HEADERS with an undecodable HPACK block
        b"\x00\x00\x04\x01\x05\x00\x00\x00\x01\xff\xff\xff\xff",
        # SETTINGS with a length that is not a multiple of 6
        b"\x00\x00\x05\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    ]
    for bad in cases:
        got = raw_exchange(krilld.address, PREFACE + SETTINGS + bad, read_for=2.0)
        types = [f[0] for f in frames(got)]
        assert types and types[0] == 4, "the server's first frame must be SETTINGS: %r" % types
        assert GOAWAY in types, "no GOAWAY for %r: %r" % (bad, types)
        still_serving(krilld)


def test_grpc_bad_message_framing_on_a_stream(krilld, pb):
    """Valid HTTP/2, broken gRPC framing: a compressed flag with no grpc-encoding, and a length prefix
    that promises more than the stream carries."""
    hdrs = _hpack_request("/containerd.services.version.v1.Version/Version")
    for body in [b"\x01\x00\x00\x00\x00", b"\x00\x00\x00\x10\x00abc", b"\x00\xff\xff\xff\xff"]:
        payload = (PREFACE + SETTINGS +
                   struct.pack(">I", len(hdrs))[1:] + b"\x01\x04" + struct.pack(">I", 1) + hdrs +
                   struct.pack(">I", len(body))[1:] + b"\x00\x01" + struct.pack(">I", 1) + body)
        got = raw_exchange(krilld.address, payload, read_for=2.0)
        fs = frames(got)
        # some reply for stream 1 (trailers with a non-zero grpc-status, or RST_STREAM), or a GOAWAY
        assert any(f[2] == 1 and f[0] in (1, 3) for f in fs) or any(f[0] == GOAWAY for f in fs), fs
        still_serving(krilld)


def _hpack_request(path):
    """A HEADERS block in HPACK with literal fields without indexing (no Huffman): enough for any server."""
    def lit(name, value):
        n, v = name.encode(), value.encode()
        assert len(n) < 127 and len(v) < 127
        return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v
    return (lit(":method", "POST") + lit(":scheme", "http") + lit(":path", path) +
            lit(":authority", "localhost") + lit("content-type", "application/grpc") + lit("te", "trailers"))


def test_grpc_namespace_write_without_namespace_header_matches_containerd(krilld, containerd, pb):
    """Without containerd-namespace the namespace is created but its event cannot be published: containerd
    answers Unknown, and so must krilld."""
    seen = []
    for d in (containerd, krilld):
        with grpc.insecure_channel("unix://" + d.address) as ch:
            create = method(ch, "/containerd.services.namespaces.v1.Namespaces/Create",
                            pb.namespaces.CreateNamespaceRequest, pb.namespaces.CreateNamespaceResponse)
            with pytest.raises(grpc.RpcError) as e:
                create(pb.namespaces.CreateNamespaceRequest(namespace=pb.namespaces.Namespace(name="nohdr")),
                       timeout=10)
            seen.append((e.value.code(), e.value.details(), d.ctr("namespaces", "ls", "-q").stdout))
    assert seen[0] == seen[1]
    assert seen[1][0] == grpc.StatusCode.UNKNOWN
