-- POST tools/call whoami to /mcp (args[3]: wrk's -t, to split FILE among threads).
--   wrk ... -s mcp.lua URL -- hot FILE       every request the first token of FILE
--   wrk ... -s mcp.lua URL -- distinct FILE  every request the next unused token of FILE:
--     thread k walks its own slice of the list; past its end it sends no token
--     (a 401, so run.sh fails loudly: mint more tokens or run shorter).
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
local headers = {
  ["Host"] = "mcp.internal.example",
  ["Content-Type"] = "application/json",
  ["Accept"] = "application/json, text/event-stream",
  ["MCP-Protocol-Version"] = "2025-06-18",
}
local mode, tokens, first, last, n

function init(args)
  mode = args[1]
  tokens = {}
  for line in io.lines(args[2]) do tokens[#tokens + 1] = line end
  local per = math.floor(#tokens / tonumber(args[3]))  -- args[3]: wrk's -t
  first, last, n = id * per + 1, (id + 1) * per, id * per
  if mode == "hot" then
    headers["Authorization"] = "Bearer " .. tokens[1]
    req = wrk.format("POST", nil, headers, body)
  end
end

function request()
  if mode == "hot" then return req end
  n = n + 1
  headers["Authorization"] = n <= last and ("Bearer " .. tokens[n]) or nil
  return wrk.format("POST", nil, headers, body)
end
