"""Mint authorization codes from oidc_provider.mjs through its real flow.

usage: oidc_codes.py PORT N OUT    (OUT: one code a line)

For each i, a fresh browser (no cookies) for user{i}@example.com:
GET /auth -> /interaction/<uid> (answered at once by oidc_provider.mjs)
-> /auth/<uid> -> 303 to the redirect URI with the code. PKCE S256 with
the same verifier as mint.lua (RFC 7636 Appendix B).
"""
import base64, hashlib, http.client, sys, urllib.parse

port, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
REDIRECT = "http://127.0.0.1:33418/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
conn = http.client.HTTPConnection("127.0.0.1", port)

with open(out, "w") as f:
    for i in range(n):
        jar = {}  # name -> value; paths ignored (all on one host)
        url = "/auth?" + urllib.parse.urlencode(dict(
            response_type="code", client_id="bench", redirect_uri=REDIRECT, scope="mcp", state="s",
            code_challenge=CHALLENGE, code_challenge_method="S256", login_hint=f"user{i}@example.com"))
        for _ in range(5):
            cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
            conn.request("GET", url, headers={"Cookie": cookie} if cookie else {})
            r = conn.getresponse(); body = r.read()
            for name, value in r.getheaders():
                if name.lower() == "set-cookie":
                    k, _, v = value.split(";", 1)[0].partition("=")
                    jar[k] = v
            loc = r.getheader("Location")
            if r.status not in (302, 303) or not loc:
                sys.exit(f"oidc_codes.py: GET {url} -> {r.status}: {body[:300]!r}")
            u = urllib.parse.urlparse(loc)
            if loc.startswith(REDIRECT):
                q = urllib.parse.parse_qs(u.query)
                if "code" not in q:
                    sys.exit(f"oidc_codes.py: no code in {loc}")
                f.write(q["code"][0] + "\n")
                break
            url = u.path + ("?" + u.query if u.query else "")
        else:
            sys.exit("oidc_codes.py: too many redirects")
