"""Bearer token flow against Debian's docker-registry configured with `auth: token:` (realm, service,
issuer, rootcertbundle), with a token server written here: it issues RS256 JWTs signed by a self-signed
certificate (x5c header) that the registry trusts, from docker's OAuth POST endpoint (grant_type=password,
form-encoded) and from the GET endpoint with Basic credentials. With credentials krill uses the POST first,
as containerd does, and falls back to the GET when the realm has no POST (404); without credentials it
fails with the registry's message."""

import base64
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.request

import pytest

import daemons
from conftest import build_dir, require_binary

USER, PASSWORD = "krill", "token-secret"


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class TokenServer:
    def __init__(self, d, service, issuer):
        self.key = os.path.join(d, "token.key")
        self.cert = os.path.join(d, "token.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                        "-out", self.cert, "-days", "2", "-subj", "/CN=krill token issuer"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"], check=True,
                             stdout=subprocess.PIPE).stdout
        self.x5c = base64.b64encode(der).decode()
        self.service, self.issuer = service, issuer
        self.requests = []  # (method, {param: [values]})
        self.post_status = None  # e.g. 404: a realm without the OAuth POST endpoint
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def access(self, q):
                access = []
                for s in q.get("scope", []):
                    for one in s.split(" "):
                        typ, name, actions = one.split(":")
                        access.append({"type": typ, "name": name, "actions": actions.split(",")})
                return access

            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                outer.requests.append(("GET", q))
                want = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
                if self.headers.get("Authorization") != want:
                    return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                self.reply(200, {"token": outer.sign(self.access(q)), "expires_in": 300})

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                q = urllib.parse.parse_qs(self.rfile.read(n).decode())
                outer.requests.append(("POST", q))
                if outer.post_status:
                    return self.reply(outer.post_status, {"errors": [{"code": "NOT_FOUND", "message": "no"}]})
                ok = (self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded") and
                      q.get("grant_type") == ["password"] and q.get("username") == [USER] and
                      q.get("password") == [PASSWORD] and q.get("client_id") == ["containerd-client"])
                if not ok:
                    return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                self.reply(200, {"access_token": outer.sign(self.access(q)), "expires_in": 300,
                                 "refresh_token": "refresh-" + USER})

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.realm = "http://127.0.0.1:%d/token" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def sign(self, access):
        now = int(time.time())
        head = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.issuer, "sub": USER, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": "%d" % time.time_ns(), "access": access}
        signing = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing.encode(),
                             check=True, stdout=subprocess.PIPE).stdout
        return signing + "." + b64url(sig)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def token_registry():
    require_binary(daemons.REGISTRY)
    require_binary(daemons.SKOPEO)
    require_binary("openssl")
    reg = daemons.Registry()
    ts = TokenServer(reg.dir, "krill-registry", "krill-issuer")
    with open(reg.config, "a") as f:
        f.write("auth:\n  token:\n    realm: %s\n    service: krill-registry\n    issuer: krill-issuer\n"
                "    rootcertbundle: %s\n" % (ts.realm, ts.cert))
    reg.auth = {USER: PASSWORD}
    logf = open(reg.log, "ab")
    reg.proc = subprocess.Popen([daemons.REGISTRY, "serve", reg.config], stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=logf, start_new_session=True)
    logf.close()

    def up():
        if reg.proc.poll() is not None:
            raise RuntimeError("docker-registry exited: " + open(reg.log).read()[-2000:])
        try:
            urllib.request.urlopen("http://%s/v2/" % reg.host, timeout=1)
        except urllib.error.HTTPError as e:
            return e.code == 401
        except OSError:
            return False
        return False

    daemons.wait_until(up, 20, 0.02, "docker-registry on " + reg.host)
    try:
        yield reg, ts
    finally:
        reg.close()
        ts.close()


def test_pull_bearer_token_registry(token_registry, image_archive, tmp_path):
    reg, ts = token_registry
    tool = require_binary(os.path.join(build_dir(), "src", "image", "krill-image-pull-tool"),
                          "krill-image-pull-tool")
    ref = reg.push(image_archive("busybox"), "test/busybox:token")

    r = subprocess.run([tool, "--root", str(tmp_path / "anon"), "--plain-http", "--no-unpack", ref],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 1
    assert 'failed to resolve reference "%s"' % ref in r.stderr
    assert "401 Unauthorized" in r.stderr and "bad credentials" in r.stderr

    n = len(ts.requests)
    r = subprocess.run([tool, "--root", str(tmp_path / "auth"), "--plain-http", "--user",
                        "%s:%s" % (USER, PASSWORD), ref],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["chain_id"].startswith("sha256:")
    issued = ts.requests[n:]
    # the OAuth POST, with the challenge's service and scope; one token serves the whole pull (cached per
    # host and scope)
    assert [m for m, _ in issued] == ["POST"], issued
    assert issued[0][1]["service"] == ["krill-registry"]
    assert issued[0][1]["scope"] == ["repository:test/busybox:pull"]


def test_pull_bearer_oauth_post_unsupported_falls_back_to_get(token_registry, image_archive, tmp_path):
    reg, ts = token_registry
    tool = require_binary(os.path.join(build_dir(), "src", "image", "krill-image-pull-tool"),
                          "krill-image-pull-tool")
    ref = reg.push(image_archive("busybox"), "test/busybox:token")
    ts.post_status = 404
    n = len(ts.requests)
    r = subprocess.run([tool, "--root", str(tmp_path / "auth"), "--plain-http", "--no-unpack", "--user",
                        "%s:%s" % (USER, PASSWORD), ref],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    issued = ts.requests[n:]
    assert [m for m, _ in issued] == ["POST", "GET"], issued
    assert issued[1][1]["service"] == ["krill-registry"]


def test_krill_cli_pull_with_token_auth(token_registry, image_archive, krilld):
    reg, ts = token_registry
    ref = reg.push(image_archive("busybox"), "test/busybox:token")
    r = krilld.krill("images", "pull", "--plain-http", ref)
    assert r.returncode == 1
    assert "401 Unauthorized" in r.stderr and "bad credentials" in r.stderr
    n = len(ts.requests)
    r = krilld.krill("images", "pull", "--plain-http", "--user", "%s:%s" % (USER, PASSWORD), ref)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [m for m, _ in ts.requests[n:]] == ["POST"]
    assert ref in krilld.ctr("images", "ls", "-q").stdout.split()
