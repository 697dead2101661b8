-- Mint authorization codes or access tokens at mcpgate's real endpoints, with
-- wrk as a fast client (Python's http.client managed ~3 k tokens/s, too slow
-- to mint the ~200 k distinct tokens a run needs in reasonable time).
--   -- codes CLIENT_ID N THREADS OUT  GET /oauth/authorize as user<k>-<i>@example.com
--        (X-Forwarded-Email from 127.0.0.1, consent = "never", PKCE S256); each
--        302's code goes to OUT.<k>
--   -- tokens CLIENT_ID N THREADS OUT CODES  exchange codes of CODES (a few more
--        than N) once each at /oauth/token; each access token goes to OUT.<k>
-- Thread k writes OUT.<k>.part, and renames it OUT.<k> after N/THREADS good
-- answers (a request lost to a socket error is made up by the next one).
-- wrk runs out its -d even when every thread has stopped, so run.sh kills it
-- once all OUT.<k> are there.
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  -- RFC 7636 Appendix B
local CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  -- its S256
local REDIRECT = "http%3A%2F%2F127.0.0.1%3A33418%2Fcallback"
local function enc(s) return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end)) end
local mode, client, codes, quota, sent, got, path, out, finished

function init(args)
  mode, client = args[1], enc(args[2])
  local nthreads = tonumber(args[4])
  quota = math.floor(tonumber(args[3]) / nthreads)
  if mode == "tokens" then
    local all = {}
    for line in io.lines(args[6]) do all[#all + 1] = line end
    local per = math.floor(#all / nthreads)
    codes = {}
    for i = 1, per do codes[i] = all[id * per + i] end
  end
  sent, got = 0, 0
  path = args[5] .. "." .. id
  out = io.open(path .. ".part", "w")
end

function request()
  sent = sent + 1
  if finished or (codes and sent > #codes) then  -- never counted
    return wrk.format("GET", "/healthz")
  end
  if mode == "codes" then
    return wrk.format("GET", "/oauth/authorize?response_type=code&client_id=" .. client ..
      "&redirect_uri=" .. REDIRECT .. "&code_challenge=" .. CHALLENGE ..
      "&code_challenge_method=S256&state=s", {
        ["Host"] = "mcp.internal.example",
        ["X-Forwarded-Email"] = "user" .. id .. "-" .. sent .. "@example.com",
      })
  end
  return wrk.format("POST", "/oauth/token", {
    ["Host"] = "mcp.internal.example",
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, "grant_type=authorization_code&code=" .. enc(codes[sent]) .. "&client_id=" .. client ..
     "&redirect_uri=" .. REDIRECT .. "&code_verifier=" .. VERIFIER)
end

function response(status, headers, body)
  if finished then return end
  local v
  if mode == "codes" and status == 302 then
    v = (headers["location"] or headers["Location"] or ""):match("[?&]code=([^&]+)")
  elseif mode == "tokens" and status == 200 then
    v = body:match('"access_token":"([^"]+)"')
  end
  if not v then return end  -- not counted: run.sh finds the file short
  if mode == "codes" then v = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end) end
  out:write(v, "\n")
  got = got + 1
  if got == quota then
    finished = true
    out:close()
    os.rename(path .. ".part", path)
    wrk.thread:stop()
  end
end
