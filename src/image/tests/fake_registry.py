#!/usr/bin/python3
"""A small OCI distribution (registry v2) server for the C unit tests of src/image (registry, resolver,
pull). It builds its own content (a multi-platform index, gzip and zstd-less plain tar layers), serves
/v2/, manifests (HEAD/GET, Accept-agnostic), blobs (Range) and an optional auth mode:
  --auth none | basic | bearer   (user "u", password "p"; bearer issues tokens from /token)
Special repositories: "test/flaky" cuts the first GET of each blob in half (resume tests), "test/bad" serves a
layer whose bytes do not match its digest, "test/redirect" answers blob GETs with a 307 to /_blob/.
Prints one JSON line on stdout with the port and the digests, then serves until stdin closes."""

import argparse
import urllib.parse
import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import sys
import tarfile
import threading


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def tar_layer(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files:
            if data is None:
                ti = tarfile.TarInfo(name)
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
                continue
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = 1600000000
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


BLOBS = {}
MANIFESTS = {}  # digest -> (media type, bytes)
TAGS = {}       # (repo, tag) -> digest


def add_blob(b):
    BLOBS[sha(b)] = b
    return sha(b)


def image(arch, variant, payload):
    l1 = tar_layer([("etc", None), ("etc/hostname", b"krill\n")])
    l2 = tar_layer([("bin", None), ("bin/hello", payload * 4096)])
    g1 = gzip.compress(l1, mtime=0)
    layers = [(g1, l1, "application/vnd.oci.image.layer.v1.tar+gzip"),
              (l2, l2, "application/vnd.oci.image.layer.v1.tar")]
    cfg = {"architecture": arch, "os": "linux",
           "rootfs": {"type": "layers", "diff_ids": [sha(u) for _, u, _ in layers]},
           "config": {"Cmd": ["/bin/hello"]}}
    if variant:
        cfg["variant"] = variant
    cb = json.dumps(cfg).encode()
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": add_blob(cb),
                    "size": len(cb)},
         "layers": [{"mediaType": mt, "digest": add_blob(c), "size": len(c)} for c, _, mt in layers]}
    mb = json.dumps(m).encode()
    MANIFESTS[sha(mb)] = ("application/vnd.oci.image.manifest.v1+json", mb)
    return sha(mb), len(mb), [sha(u) for _, u, _ in layers]


def build():
    amd, amd_n, amd_diff = image("amd64", "", b"A")
    arm, arm_n, _ = image("arm64", "v8", b"R")
    idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [
               {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": arm_n,
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
               {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": amd_n,
                "platform": {"os": "linux", "architecture": "amd64"}}]}
    ib = json.dumps(idx).encode()
    MANIFESTS[sha(ib)] = ("application/vnd.oci.image.index.v1+json", ib)
    s390 = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm,
                           "size": arm_n, "platform": {"os": "linux", "architecture": "s390x"}}]}
    sb = json.dumps(s390).encode()
    MANIFESTS[sha(sb)] = ("application/vnd.oci.image.index.v1+json", sb)
    for repo in ("test/img", "test/flaky", "test/bad", "test/redirect"):
        TAGS[(repo, "1")] = sha(ib)
        TAGS[(repo, "single")] = amd
        TAGS[(repo, "s390")] = sha(sb)
    return {"index": sha(ib), "amd64": amd, "arm64": arm, "amd64_diff_ids": amd_diff}


FLAKY_SEEN = set()
LOCK = threading.Lock()
TOKENS = set()


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    auth = "none"

    def log_message(self, *a):
        pass

    def send(self, code, body=b"", headers=None, head=False):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def err(self, code, ecode, msg, headers=None, head=False):
        body = json.dumps({"errors": [{"code": ecode, "message": msg}]}).encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        self.send(code, body, h, head)

    def authorized(self, head):
        a = self.headers.get("Authorization", "")
        if self.auth == "none":
            return True
        if self.auth == "basic":
            if a == "Basic " + base64.b64encode(b"u:p").decode():
                return True
            self.err(401, "UNAUTHORIZED", "authentication required",
                     {"WWW-Authenticate": 'Basic realm="fake"'}, head)
            return False
        if a.startswith("Bearer ") and a[7:] in TOKENS:
            return True
        port = self.server.server_address[1]
        repo = self.path.split("/")[2:4]
        self.err(401, "UNAUTHORIZED", "authentication required",
                 {"WWW-Authenticate": 'Bearer realm="http://127.0.0.1:%d/token",service="fake",scope="repository:%s:pull"'
                  % (port, "/".join(repo))}, head)
        return False

    def do_HEAD(self):
        self.handle_req(True)

    def do_GET(self):
        self.handle_req(False)

    def do_POST(self):
        # OAuth token endpoint (docker's /token with grant_type=password): only in --auth bearer-oauth;
        # plain bearer registries answer 404 like GCR, and clients fall back to GET
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        if self.path.split("?")[0] != "/token" or self.auth != "bearer-oauth":
            return self.err(404, "NOT_FOUND", "not found")
        want = {"grant_type": ["password"], "username": ["u"], "password": ["p"], "service": ["fake"],
                "client_id": ["containerd-client"]}
        if any(form.get(k) != v for k, v in want.items()) or not form.get("scope", [""])[0].startswith("repository:"):
            return self.err(401, "UNAUTHORIZED", "invalid credentials")
        if self.headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            return self.err(400, "BAD_REQUEST", "bad content type")
        tok = "oauth%d" % len(TOKENS)
        TOKENS.add(tok)
        return self.send(200, json.dumps({"access_token": tok, "expires_in": 300, "refresh_token": "r"}).encode(),
                         {"Content-Type": "application/json"})

    def handle_req(self, head):
        path = self.path.split("?")[0]
        if path == "/token":
            a = self.headers.get("Authorization", "")
            if a != "Basic " + base64.b64encode(b"u:p").decode() or self.auth == "bearer-oauth":
                return self.err(401, "UNAUTHORIZED", "invalid credentials", head=head)
            tok = "tok%d" % len(TOKENS)
            TOKENS.add(tok)
            return self.send(200, json.dumps({"token": tok, "expires_in": 300}).encode(),
                             {"Content-Type": "application/json"}, head)
        if path.startswith("/_blob/"):
            b = BLOBS.get(path[len("/_blob/"):])
            return self.send(200, b, {}, head) if b is not None else self.send(404, b"", {}, head)
        if path == "/v2/" or path == "/v2":
            if not self.authorized(head):
                return
            return self.send(200, b"{}", {"Content-Type": "application/json"}, head)
        parts = path.split("/")
        # /v2/<a>/<b>/(manifests|blobs)/<ref>
        if len(parts) != 6 or parts[1] != "v2":
            return self.err(404, "NAME_UNKNOWN", "repository name not known to registry", head=head)
        repo, kind, ref = parts[2] + "/" + parts[3], parts[4], parts[5]
        if not self.authorized(head):
            return
        if kind == "manifests":
            d = TAGS.get((repo, ref), ref)
            if d not in MANIFESTS or (repo, "1") not in TAGS:
                return self.err(404, "MANIFEST_UNKNOWN", "manifest unknown", head=head)
            mt, body = MANIFESTS[d]
            return self.send(200, body, {"Content-Type": mt, "Docker-Content-Digest": d}, head)
        if kind == "blobs":
            b = BLOBS.get(ref)
            if b is None:
                return self.err(404, "BLOB_UNKNOWN", "blob unknown to registry", head=head)
            if repo == "test/redirect":
                return self.send(307, b"", {"Location": "/_blob/" + ref}, head)
            if repo == "test/bad" and len(b) > 1000:
                b = b[:-1] + bytes([b[-1] ^ 1])
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
                if start >= len(b):
                    return self.send(416, b"", {}, head)
                body = b[start:]
                h = {"Content-Range": "bytes %d-%d/%d" % (start, len(b) - 1, len(b)),
                     "Docker-Content-Digest": ref}
                return self.send(206, body, h, head)
            if repo == "test/flaky" and len(b) > 1000:
                with LOCK:
                    first = ref not in FLAKY_SEEN
                    FLAKY_SEEN.add(ref)
                if first and not head:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(b)))
                    self.send_header("Docker-Content-Digest", ref)
                    self.end_headers()
                    self.wfile.write(b[: len(b) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
            return self.send(200, b, {"Docker-Content-Digest": ref}, head)
        self.err(404, "UNSUPPORTED", "unsupported", head=head)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--auth", default="none")
    a = ap.parse_args()
    info = build()
    H.auth = a.auth
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    info["port"] = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
