"""An existing MCP server behind mcpgate: FastMCP over Streamable HTTP,
trusting nothing but the identity JWT mcpgate sends, checked against
mcpgate's JWKS exactly as the README shows. Its one tool answers the
verified claims; a missing or bad JWT makes the call fail.

Environment: PORT (where to listen), UPSTREAM_URL (this server's `url` in
mcpgate's config: the JWT's audience), MCPGATE_JWKS (mcpgate's JWKS URL),
MCPGATE_HOST (the Host that URL is fetched with: mcpgate serves only its
configured hosts), MCPGATE_ISSUERS (comma-separated).
"""

import os

import jwt  # PyJWT
from fastmcp import FastMCP
from fastmcp.server.dependencies import get_http_headers

jwks = jwt.PyJWKClient(os.environ["MCPGATE_JWKS"], headers={"Host": os.environ["MCPGATE_HOST"]})


def caller(authorization: str) -> dict:
    token = authorization.removeprefix("Bearer ")
    return jwt.decode(
        token,
        jwks.get_signing_key_from_jwt(token).key,
        algorithms=["EdDSA", "ES256"],
        audience=os.environ["UPSTREAM_URL"],
        issuer=os.environ["MCPGATE_ISSUERS"].split(","),
        options={"require": ["exp", "iat", "sub", "email"]},
    )


mcp = FastMCP("identity-check")


@mcp.tool
def whoami() -> dict:
    """The caller, as mcpgate's verified identity JWT says."""
    headers = get_http_headers(include_all=True)
    claims = caller(headers.get("authorization", ""))
    leaked = [h for h in ("cookie", "x-forwarded-email") if h in headers]
    return {"claims": claims, "leaked_headers": leaked}


if __name__ == "__main__":
    mcp.run(transport="http", host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
