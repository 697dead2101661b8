-- POST /oauth/token (mcpgate) or /token (oidc-provider); args[3]: wrk's -t.
--   -- mcpgate-code FILE N  FILE: client_id, then codes; public client + PKCE
--   -- oidc-code FILE N     FILE: codes; confidential client `bench` + PKCE
--   -- oidc-cc CLIENT N     client_credentials for CLIENT (bench: JWT, bench-opaque: opaque)
-- Each code is exchanged once: thread k walks its own slice of FILE; past
-- its end it sends an empty code (a 400, so run.sh fails loudly).
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local SECRET = "bench-secret-bench-secret-bench-secret"
local VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
local REDIRECT = "http%3A%2F%2F127.0.0.1%3A33418%2Fcallback"
local headers = { ["Host"] = "mcp.internal.example", ["Content-Type"] = "application/x-www-form-urlencoded" }
local function enc(s) return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end)) end
local codes, fixed, n, last, req

function init(args)
  local kind = args[1]
  if kind == "oidc-cc" then
    headers["Host"] = nil
    req = wrk.format("POST", nil, headers,
      "grant_type=client_credentials&scope=mcp&client_id=" .. args[2] .. "&client_secret=" .. SECRET)
    return
  end
  codes = {}
  for line in io.lines(args[2]) do codes[#codes + 1] = line end
  local client = "client_id=bench&client_secret=" .. SECRET
  if kind == "mcpgate-code" then
    client = "client_id=" .. enc(table.remove(codes, 1))
  else
    headers["Host"] = nil
  end
  fixed = "&" .. client .. "&redirect_uri=" .. REDIRECT .. "&code_verifier=" .. VERIFIER
  local per = math.floor(#codes / tonumber(args[3]))
  n, last = id * per, (id + 1) * per
end

function request()
  if req then return req end
  n = n + 1
  local code = n <= last and enc(codes[n]) or ""
  return wrk.format("POST", nil, headers, "grant_type=authorization_code&code=" .. code .. fixed)
end
