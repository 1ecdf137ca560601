"""A generated stream of hostile requests for the operations-log oracle (tests/security/test_oracle.py).

Each request is built as an attacker would: a key that may (or may not) touch the bucket it names,
an operation, and then variations on top: the bucket or key spelled another way in the path
(``%2F`` between the segments, ``%2f``, double encoding, dot segments, ``//``, upper case, Unicode,
the internal bucket in every encoding, virtual-hosted names), header names an S3 server could read
as others (``x_amz_copy_source``, ``X-Amz-Copy-Source``, spaces), duplicate headers, copy sources in
every form, subresources spelled with escapes (``?%75ploads``), presigned URLs with unsigned headers
added, several requests pipelined in one write, and broken framing (Content-Length with
Transfer-Encoding, bad chunk sizes, smuggled requests inside a body).

Deterministic for a seed; the raw bytes are what is sent (signed with botocore, an implementation of
SigV4 independent of the gateway's).
"""
from __future__ import annotations

import base64
import hashlib
import random
from urllib.parse import quote, urlsplit

from tests import s3raw

from .conftest import INTERNAL, VHOST_DOMAIN, World, secret_of
from .rawhttp import Raw

ACTORS = ("rw-alpha", "ro-beta", "admin")
VAULT = "vault.txt"     # beta's secret: a copy source and a read, never a write target
KEYS = ("k1", "dir/k2", "secret.txt", "mine.txt", "ü-ß.txt", "./dot", "sp ace", "a%2Fb", "q?x", "x")
LOOKALIKES = ("x_amz_copy_source", "x_amz_acl", "x_amz_meta_a", "content_type", "x-amz_meta-foo",
              "x_amz_metadata_directive", "X_AMZ_STORAGE_CLASS", "if_match")


class HostileStream:
    def __init__(self, world: World, seed: int, uploads: dict[str, str]) -> None:
        self.w = world
        self.rng = random.Random(seed)
        self.uploads = uploads   # bucket -> an open multipart upload id
        self.buckets = (world.alpha, world.beta, INTERNAL, "nonexistent-" + world.alpha[-8:])
        self.weights = (40, 35, 15, 10)

    def _pick_bucket(self) -> str:
        return self.rng.choices(self.buckets, self.weights)[0]

    # -- pieces ----------------------------------------------------------------------------------
    def _bucket_spelling(self, bucket: str) -> tuple[str, str | None]:
        """(path prefix for the bucket, Host header or None)."""
        r = self.rng.random()
        if r < 0.7:
            return "/" + bucket, None
        if r < 0.74:
            return "/" + "".join(f"%{ord(c):02X}" if self.rng.random() < 0.3 else c for c in bucket), None
        if r < 0.77:
            return "/" + bucket.upper(), None
        if r < 0.8:
            return "/./" + bucket, None
        if r < 0.83:
            return "/" + bucket + "%00", None
        return "", f"{bucket}.{VHOST_DOMAIN}" if self.rng.random() < 0.8 else f"{bucket.upper()}.{VHOST_DOMAIN}"

    def _target(self, bucket: str, key: str | None) -> tuple[str, str | None]:
        prefix, host = self._bucket_spelling(bucket)
        if key is None:
            return (prefix or "/"), host
        enc = quote(key, safe="/")
        r = self.rng.random()
        if host is None and r < 0.08:
            sep = self.rng.choice(["%2F", "%2f", "%252F"])
            return prefix + sep + enc, host
        if r < 0.16:
            other = self._pick_bucket()
            return f"{prefix}/../{other}/{enc}", host
        if r < 0.2:
            return f"{prefix}//{enc}", host
        return f"{prefix}/{enc}", host

    def _copy_source(self) -> str:
        bucket = self._pick_bucket()
        key = self.rng.choice(KEYS + (VAULT, VAULT))
        forms = [f"/{bucket}/{quote(key)}", f"{bucket}/{quote(key)}", quote(f"{bucket}/{key}", safe=""),
                 f"/{bucket}/{quote(key)}?versionId=null", f"{bucket.upper()}/{quote(key)}",
                 quote(quote(f"/{bucket}/{key}", safe=""), safe=""), f"/{bucket}%2F{quote(key)}",
                 f"/%{ord(bucket[0]):02x}{bucket[1:]}/{quote(key)}"]
        return self.rng.choice(forms)

    def _delete_xml(self) -> bytes:
        keys = self.rng.sample(KEYS, 2)
        inner = "".join(f"<Object><Key>{k.replace('&', '&amp;')}</Key></Object>" for k in keys)
        return f"<Delete>{inner}</Delete>".encode()

    def _operation(self, bucket: str) -> tuple[str, str | None, str, dict[str, str], bytes]:
        """(method, key or None, query, headers to sign, body)."""
        key = self.rng.choice(KEYS)
        r = self.rng.randrange(15)
        if r == 0:
            return "GET", key, "", {}, b""
        if r == 1:
            return "HEAD", key, "", {}, b""
        if r == 2:
            return "PUT", key, "", {"Content-Length": "5"}, b"hello"
        if r == 3:
            return "DELETE", key, "", {}, b""
        if r == 4:
            return "PUT", key, "", {"x-amz-copy-source": self._copy_source(), "Content-Length": "0"}, b""
        if r == 5:
            q = self.rng.choice(["uploads", "%75ploads", "uploads&uploads", "uploads="])
            return "POST", key, q, {"Content-Length": "0"}, b""
        if r == 6:
            up = quote(self.uploads.get(bucket, "nosuchupload"), safe="")
            h = {"Content-Length": "4"}
            body = b"part"
            if self.rng.random() < 0.5:
                h = {"x-amz-copy-source": self._copy_source(), "Content-Length": "0"}
                body = b""
            return "PUT", "upload.bin", f"partNumber=1&uploadId={up}", h, body
        if r == 7:
            xml = self._delete_xml()
            md5 = base64.b64encode(hashlib.md5(xml).digest()).decode()
            q = self.rng.choice(["delete", "%64elete", "delete="])
            return "POST", None, q, {"Content-Length": str(len(xml)), "Content-MD5": md5}, xml
        if r == 8:
            return "GET", None, self.rng.choice(["list-type=2", "", "list-type=2&prefix=d", "uploads"]), {}, b""
        if r == 9:
            return "GET", key, self.rng.choice(["acl", "%61cl", "tagging"]), {}, b""
        if r == 10:
            return "PUT", key, "acl", {"x-amz-acl": self.rng.choice(["private", "public-read"]),
                                       "Content-Length": "0"}, b""
        if r == 11:
            return "DELETE", None, "", {}, b""
        if r == 12:
            return "GET", key, "", {"Range": self.rng.choice(["items=0-1", "bytes=garbage", "bytes=0-1,3-4",
                                                              "bytes=0-1"])}, b""
        if r == 13:
            return "HEAD", None, "", {}, b""
        return "PUT", key, "", {"x-amz-meta-a_b": "1", "X-Amz-Storage-Class": "STANDARD",
                                "Content-Length": "2"}, b"hi"

    # -- one request -----------------------------------------------------------------------------
    def request(self) -> Raw:
        rng = self.rng
        ak = rng.choice(ACTORS)
        r = rng.random()
        if r < 0.03:
            target, host = "/", None
            method, query, sign_h, body = "GET", "", {}, b""
            label = "ListBuckets"
        elif r < 0.05:   # the upstream's other APIs behind S3-looking paths (RGW: admin, Swift)
            target, query = rng.choice([("/admin/user", "uid=r2gw-test&format=json"), ("/admin/bucket", "stats"),
                                        ("/admin/usage", ""), ("/swift/v1", ""), ("/auth/1.0", ""),
                                        ("/admin/log", "type=metadata")])
            method, host, sign_h, body = "GET", None, {}, b""
            label = f"GET {target} ?{query}"
        else:
            bucket = self._pick_bucket()
            method, key, query, sign_h, body = self._operation(bucket)
            target, host = self._target(bucket, key)
            label = f"{method} {bucket} {key} ?{query}"
        if host is not None:
            sign_h["Host"] = host
        path_q = target + ("?" + query if query else "")
        if rng.random() < 0.1 and method in ("GET", "PUT", "HEAD", "DELETE"):
            return self._presigned(ak, method, target, query, host, sign_h, body, label)
        url_host = host or f"127.0.0.1:{self.w.gw.port}"
        signed = s3raw.sign(method, f"http://{url_host}{path_q}", sign_h, "UNSIGNED-PAYLOAD", ak, secret_of(ak))
        headers = list(signed.items())
        if host is None:
            headers.insert(0, ("Host", url_host))
        self._vary_headers(headers)
        return Raw(method, path_q, headers, body, label)

    def _presigned(self, ak, method, target, query, host, sign_h, body, label) -> Raw:
        url_host = host or f"127.0.0.1:{self.w.gw.port}"
        url = s3raw.presign(method, f"http://{url_host}{target}" + ("?" + query if query else ""),
                            ak, secret_of(ak))
        u = urlsplit(url)
        headers = [("Host", url_host)] + [(k, v) for k, v in sign_h.items() if k.lower() != "host"]
        extra = self.rng.choice([("x_amz_copy_source", f"/{self.w.beta}/{VAULT}"), ("x-amz-meta-z", "1"),
                                 ("x_amz_acl", "public-read"), ("Range", "bytes=0-1"),
                                 ("x-amz-copy-source", f"/{self.w.beta}/{VAULT}")])
        headers.append(extra)
        return Raw(method, f"{u.path}?{u.query}", headers, body, "presigned " + label)

    def _vary_headers(self, headers: list[tuple[str, str]]) -> None:
        r = self.rng.random()
        if r < 0.12:
            headers.append((self.rng.choice(LOOKALIKES), self.rng.choice(
                [f"/{self.w.beta}/{VAULT}", "public-read", "v" * 300, "REPLACE"])))
        elif r < 0.16:
            headers.append(("x-amz-copy-source", f"/{self.w.beta}/{VAULT}"))   # unsigned, duplicate or new
        elif r < 0.19:
            headers.append(("Host", f"{INTERNAL}.{VHOST_DOMAIN}"))            # a second Host
        elif r < 0.23:
            headers.append(("Content-Type", "text/plain"))
            headers.append(("content-type", "application/x-evil"))
        elif r < 0.27:
            headers.append(("x-custom_header", "1"))

    # -- broken framing --------------------------------------------------------------------------
    def malformed(self) -> bytes:
        """Bytes for one connection: a signed request with broken framing, often followed by a
        second request smuggled where a body or a chunk should be."""
        rng = self.rng
        ak = rng.choice(ACTORS)
        victim = f"/{self.w.beta}/{VAULT}"
        smuggled = self.request().encode()
        path = f"/{self.w.alpha}/framing.txt"
        signed = s3raw.sign("PUT", f"http://127.0.0.1:{self.w.gw.port}{path}", {}, "UNSIGNED-PAYLOAD", ak,
                            secret_of(ak))
        head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.w.gw.port}\r\n" + \
            "".join(f"{k}: {v}\r\n" for k, v in signed.items())
        choice = rng.randrange(7)
        if choice == 0:   # CL and TE both: the smuggled request is either body or a request
            return (head + f"Content-Length: {len(smuggled) + 5}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                    ).encode() + smuggled
        if choice == 1:   # a chunk size that is not hex
            return (head + "Transfer-Encoding: chunked\r\n\r\n1_0\r\n" + "x" * 16 + "\r\n0\r\n\r\n").encode() + smuggled
        if choice == 2:   # two Content-Lengths
            return (head + "Content-Length: 0\r\nContent-Length: 7\r\n\r\n").encode() + smuggled
        if choice == 3:   # Transfer-Encoding that is not chunked last
            return (head + "Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode() + smuggled
        if choice == 4:   # a space in the target and obs-fold
            return (f"GET {victim} x HTTP/1.1\r\nHost: h\r\nx-amz-acl: private\r\n public-read\r\n\r\n").encode()
        if choice == 5:   # a non-ASCII digit in Content-Length
            return (head + "Content-Length: ²\r\n\r\n").encode("utf-8") + smuggled
        return (head + "Content-Length: 3\r\n\r\nabc").encode() + smuggled   # a well-framed pipeline
