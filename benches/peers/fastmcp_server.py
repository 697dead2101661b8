"""A FastMCP peer of mcpgate's /mcp: a `whoami` tool behind JWT bearer auth.

usage: fastmcp_server.py PORT MCPGATE_PORT

Verifies mcpgate's own access tokens (EdDSA / Ed25519, RFC 9068) with
FastMCP's JWTVerifier, keys from mcpgate's JWKS over loopback, and the same
issuer and audience checks mcpgate makes. Served the way FastMCP documents
for production HTTP: one uvicorn worker, Streamable HTTP at /mcp, stateless
with JSON responses (so one POST of tools/call works without initialize, as
with mcpgate).
"""
import sys

import httpx2
import uvicorn
from fastmcp import FastMCP
from fastmcp.server.auth.providers.jwt import JWTVerifier
from fastmcp.server.dependencies import get_access_token

port, mcpgate_port = int(sys.argv[1]), int(sys.argv[2])
ISSUER = "https://mcp.internal.example"

verifier = JWTVerifier(
    # mcpgate answers only its configured hosts (others get 421), so the JWKS
    # fetch goes to loopback with the issuer's Host header.
    jwks_uri=f"http://127.0.0.1:{mcpgate_port}/.well-known/jwks.json",
    http_client=httpx2.AsyncClient(headers={"Host": "mcp.internal.example"}, timeout=10.0),
    issuer=ISSUER,
    audience=ISSUER + "/mcp",
    algorithm="EdDSA",  # the JWS header's alg; Ed25519 keys (OKP) in the JWKS
    required_scopes=["mcp"],
)
mcp = FastMCP("fastmcp-peer", auth=verifier)


@mcp.tool
def whoami() -> dict:
    """The caller's token claims, like mcpgate's whoami."""
    c = get_access_token().claims
    return {k: c.get(k) for k in ("sub", "email", "client_id", "scope", "exp")}


app = mcp.http_app(path="/mcp", stateless_http=True, json_response=True)
if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False)
