"""Bearer token flow against Debian's docker-registry configured with `auth: token:` (realm, service,
issuer, rootcertbundle), with a token server written here: it checks Basic credentials and issues RS256
JWTs signed by a self-signed certificate (x5c header) that the registry trusts. krill pulls with
credentials, and fails with the registry's message without them."""

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
        self.requests = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                want = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
                if self.headers.get("Authorization") != want:
                    body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}).encode()
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                access = []
                for s in q.get("scope", []):
                    typ, name, actions = s.split(":")
                    access.append({"type": typ, "name": name, "actions": actions.split(",")})
                body = json.dumps({"token": outer.sign(access), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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
    assert issued and all("service=krill-registry" in p and "scope=repository%3Atest%2Fbusybox%3Apull" in p
                          for p in issued)
    # one token serves the whole pull (cached per host and scope)
    assert len(issued) == 1, issued
